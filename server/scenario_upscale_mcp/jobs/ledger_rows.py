"""The ledger's records, and reading them from rows column by column (`DamagedRecordError`).

The file is the user's, and a row edited by hand (or damaged) must give a sentence naming it, not a
crash somewhere further on. A damaged row read alone is a DamagedRecordError; in a list it is left
out with a warning, so the others stay usable. Only the standard library is imported: the ledger is
part of start-up.
"""

from __future__ import annotations

import json
import logging
import math
import re
import sqlite3
from dataclasses import dataclass
from typing import Any

from scenario_upscale_mcp.api.statuses import JOB_STATUSES, TERMINAL_STATUSES
from scenario_upscale_mcp.jobs.ledger_file import FILE_NAME, LedgerError
from scenario_upscale_mcp.jobs.ledger_schema import ATTEMPT_OUTCOMES

logger = logging.getLogger(__name__)


class DamagedRecordError(LedgerError):
    """One row holds what this server never writes (edited by hand, or damaged): which row, which column."""


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    model: str
    parameters: dict[str, Any]
    inputs: dict[str, Any]
    request_key: str | None
    source_stem: str | None
    upscale_factor: float | None
    output_dir: str | None  # the absolute folder the submitting call asked for; None: the output folder
    status: str
    progress: float
    cost: float | None
    error: str | None
    hint: str | None
    outputs: list[dict[str, Any]]
    created_at: float
    updated_at: float
    finished_at: float | None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


@dataclass(frozen=True)
class Attempt:
    """One billed submission, written before the request leaves so an unanswered one is never forgotten."""

    attempt_id: int
    request_key: str
    model: str
    inputs: dict[str, Any]
    sent_at: float
    outcome: str
    job_id: str | None


# What an API status looks like. One of this shape that is not known is kept, and treated as running,
# as `api.answers.Job` does: the API may add statuses. Anything else was not written by this server.
_STATUS_SHAPE = re.compile(r"[a-z][a-z-]{0,39}")
# An entry of `jobs.outputs`, as `record_outputs` is given it (the tools' OutputFile): key -> type.
_OUTPUT_KEYS: dict[str, type] = {
    "assetId": str,
    "path": str,
    "mimeType": str,
    "width": int,
    "height": int,
    "bytes": int,
}
_unknown_statuses_seen: set[tuple[str, str]] = set()


def job_from_row(row: sqlite3.Row) -> JobRecord:
    """The row as a record; a DamagedRecordError naming the job and the column if it cannot be one."""
    try:
        job_id = _text(row, "job_id")
    except _BadColumn as exc:
        raise _damaged(f"job {_shown(row['job_id'])}", exc) from None
    try:
        return JobRecord(
            job_id=job_id,
            model=_text(row, "model"),
            parameters=_json(row, "parameters", dict),
            inputs=_json(row, "inputs", dict),
            request_key=_text_or_none(row, "request_key"),
            source_stem=_text_or_none(row, "source_stem"),
            upscale_factor=_number_or_none(row, "upscale_factor"),
            output_dir=_text_or_none(row, "output_dir"),
            status=_status(row, job_id),
            progress=_number(row, "progress"),
            cost=_number_or_none(row, "cost"),
            error=_text_or_none(row, "error"),
            hint=_text_or_none(row, "hint"),
            outputs=_outputs(row),
            created_at=_number(row, "created_at"),
            updated_at=_number(row, "updated_at"),
            finished_at=_number_or_none(row, "finished_at"),
        )
    except _BadColumn as exc:
        raise _damaged(f"job {job_id!r}", exc) from None


def jobs_from_rows(rows: list[sqlite3.Row]) -> list[JobRecord]:
    """Every row that reads as a job; a damaged one is left out, with a warning naming it."""
    records: list[JobRecord] = []
    for row in rows:
        try:
            records.append(job_from_row(row))
        except DamagedRecordError as exc:
            logger.warning("%s It is left out of the list.", exc)
    return records


def spending_from_rows(rows: list[sqlite3.Row]) -> list[tuple[float, float]]:
    """(created_at, cost) of each row (job_id, created_at, cost); a damaged one is left out, with a warning."""
    spending: list[tuple[float, float]] = []
    for row in rows:
        try:
            spending.append((_number(row, "created_at"), _number(row, "cost")))
        except _BadColumn as exc:
            logger.warning(
                "%s It is left out of the spending.", _damaged(f"job {_shown(row['job_id'])}", exc)
            )
    return spending


def attempt_from_row(row: sqlite3.Row) -> Attempt:
    """The row as an attempt; a DamagedRecordError naming the attempt and the column if it cannot be one."""
    attempt_id = row["attempt_id"]
    try:
        return Attempt(
            attempt_id=attempt_id,
            request_key=_text(row, "request_key"),
            model=_text(row, "model"),
            inputs=_json(row, "inputs", dict),
            sent_at=_number(row, "sent_at"),
            outcome=_outcome(row),
            job_id=_text_or_none(row, "job_id"),
        )
    except _BadColumn as exc:
        raise _damaged(f"submission attempt {attempt_id}", exc) from None


# --- one column at a time -------------------------------------------------------------------------


class _BadColumn(Exception):
    def __init__(self, column: str, problem: str) -> None:
        super().__init__(f"{column} {problem}")


def _damaged(what: str, exc: _BadColumn) -> DamagedRecordError:
    return DamagedRecordError(
        f"The job ledger's record of {what} is damaged: {exc}. It was probably edited by hand: correct or "
        f"delete that row, or move the ledger file ({FILE_NAME} in the state folder, SCENARIO_STATE_DIR) "
        "aside to start a new history."
    )


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _text(row: sqlite3.Row, column: str) -> str:
    value = row[column]
    if not isinstance(value, str):
        raise _BadColumn(column, f"should be text, not {_shown(value)}")
    return value


def _text_or_none(row: sqlite3.Row, column: str) -> str | None:
    return None if row[column] is None else _text(row, column)


def _number(row: sqlite3.Row, column: str) -> float:
    value = row[column]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _BadColumn(column, f"should be a finite number, not {_shown(value)}")
    return value


def _number_or_none(row: sqlite3.Row, column: str) -> float | None:
    return None if row[column] is None else _number(row, column)


def _json(row: sqlite3.Row, column: str, shape: type[dict[str, Any]] | type[list[Any]]) -> Any:
    text = row[column]
    if not isinstance(text, str):
        raise _BadColumn(column, f"should be JSON text, not {_shown(text)}")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise _BadColumn(column, f"is not JSON ({_shown(text)})") from None
    if not isinstance(value, shape):
        kind = "object" if shape is dict else "array"
        raise _BadColumn(column, f"should hold a JSON {kind}, not {_shown(value)}")
    return value


def _outputs(row: sqlite3.Row) -> list[dict[str, Any]]:
    outputs: list[Any] = _json(row, "outputs", list)
    for index, output in enumerate(outputs):
        if not isinstance(output, dict) or not isinstance(output.get("assetId"), str):
            raise _BadColumn(
                "outputs", f"entry {index} should be an object with an assetId, not {_shown(output)}"
            )
        for key, value in output.items():
            expected = _OUTPUT_KEYS.get(key)
            if expected is None:
                raise _BadColumn("outputs", f"entry {index} has an unknown key {key!r}")
            if value is not None and type(value) is not expected:  # `type`: a bool is no int here
                raise _BadColumn("outputs", f"entry {index} has {key} = {_shown(value)}")
    return outputs


def _status(row: sqlite3.Row, job_id: str) -> str:
    status = _text(row, "status")
    if not _STATUS_SHAPE.fullmatch(status):
        raise _BadColumn(
            "status", f"is {_shown(status)}, not a job status (such as {', '.join(sorted(JOB_STATUSES))})"
        )
    if status not in JOB_STATUSES and (job_id, status) not in _unknown_statuses_seen:
        _unknown_statuses_seen.add((job_id, status))
        logger.warning(
            "job %r has the status %r, which this server does not know; treated as running", job_id, status
        )
    return status


def _outcome(row: sqlite3.Row) -> str:
    outcome = _text(row, "outcome")
    if outcome not in ATTEMPT_OUTCOMES:
        raise _BadColumn("outcome", f"is {_shown(outcome)}, not one of {', '.join(sorted(ATTEMPT_OUTCOMES))}")
    return outcome
