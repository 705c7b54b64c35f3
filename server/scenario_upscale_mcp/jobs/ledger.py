"""The job ledger: what was submitted, uploaded and saved, kept in one SQLite file in the state folder.

It exists so that money is never spent twice and work is never lost: an identical request repeated
soon finds the job already running, a submission whose answer never arrived is remembered before
the request leaves, and a local file is uploaded once. It must stay correct with two server
processes on the same file (one per host app) and with worker threads inside each, so every write
is one short `BEGIN IMMEDIATE` transaction made of single statements (upserts), never a read then a
write. Only the standard library is imported: the ledger is part of start-up.

This module holds the `Ledger` and its job and attempt operations; beside it, `ledger_uploads` its
upload and download records, `ledger_file` the connection (opening, migrating, transactions; and
`LedgerError`), `ledger_schema` the SQL, and `ledger_rows` the records read back (and
`DamagedRecordError`). Their public names are importable from here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scenario_upscale_mcp.api.statuses import TERMINAL_STATUSES
from scenario_upscale_mcp.jobs.ledger_file import FILE_NAME, LedgerError
from scenario_upscale_mcp.jobs.ledger_rows import (
    Attempt,
    DamagedRecordError,
    JobRecord,
    attempt_from_row,
    job_from_row,
    jobs_from_rows,
    spending_from_rows,
)
from scenario_upscale_mcp.jobs.ledger_schema import (
    ADD_TO_BATCH,
    ATTEMPT_OUTCOMES,
    FIND_REUSABLE,
    JOBS_IN_BATCH,
    JOBS_IN_FLIGHT,
    OBSERVE_JOB,
    RECORD_SUBMISSION,
    SCHEMA_VERSION,
    SELECT_ATTEMPT,
    SELECT_JOB,
    SPENDING_SINCE,
)
from scenario_upscale_mcp.jobs.ledger_uploads import UploadRecords

__all__ = [
    "FILE_NAME",
    "SCHEMA_VERSION",
    "STALE_SENDING_SECONDS",
    "UNKNOWN_MODEL",
    "Attempt",
    "DamagedRecordError",
    "JobRecord",
    "Ledger",
    "LedgerError",
]

# A billed request answers within this long or fails; an attempt still "sending" after it belongs to a
# process that died mid-request, so whether the API accepted it is unknown.
STALE_SENDING_SECONDS = 120.0
UNKNOWN_MODEL = "unknown"


class Ledger(UploadRecords):
    """The ledger file, opened once per process and shared by its threads."""

    @classmethod
    def in_folder(cls, folder: Path, *, clock: Callable[[], float] = time.time) -> Ledger:
        return cls(folder / FILE_NAME, clock=clock)

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- jobs ---------------------------------------------------------------------------------------

    def record_submission(
        self,
        *,
        job_id: str,
        model: str,
        parameters: dict[str, Any],
        inputs: dict[str, Any],
        request_key: str | None,
        source_stem: str | None,
        upscale_factor: float | None,
        status: str,
        progress: float,
        cost: float | None,
        output_dir: str | None = None,
        batch_id: str | None = None,
    ) -> JobRecord:
        """Record a job the API just accepted; if another process already knows it, complete its row.

        `output_dir` is the absolute folder the call asked for (None: the output folder), where a later
        wait_for_jobs or download_assets saves the job's outputs unless told otherwise; the first one
        recorded is kept. `batch_id` is the batch the job was submitted in (None: a single upscale): the
        job joins it in the same transaction, and stays in any batch it joined before (`add_to_batch`).
        """
        now = self._clock()
        with self._writing() as db:
            db.execute(
                RECORD_SUBMISSION,
                {
                    "job_id": job_id,
                    "model": model,
                    "parameters": _dump(parameters),
                    "inputs": _dump(inputs),
                    "request_key": request_key,
                    "source_stem": source_stem,
                    "upscale_factor": upscale_factor,
                    "output_dir": output_dir,
                    "status": status,
                    "progress": progress,
                    "cost": cost,
                    "now": now,
                    "finished_at": now if status in TERMINAL_STATUSES else None,
                },
            )
            if batch_id is not None:
                db.execute(ADD_TO_BATCH, (batch_id, job_id, now))
            return job_from_row(db.execute(SELECT_JOB, (job_id,)).fetchone())

    def add_to_batch(self, batch_id: str, job_id: str) -> None:
        """Count a job in a batch, once: one made earlier for an identical request answers an image of the
        batch instead of a new submission. The job may belong to other batches too.

        A job the ledger has not recorded yet is listed by `jobs_in_batch` once it is.
        """
        with self._writing() as db:
            db.execute(ADD_TO_BATCH, (batch_id, job_id, self._clock()))

    def observe_job(
        self,
        job_id: str,
        *,
        status: str,
        progress: float,
        cost: float | None = None,
        error: str | None = None,
        hint: str | None = None,
        model: str | None = None,
    ) -> JobRecord:
        """Record what the API just said about a job, known or not; a terminal status is never undone."""
        now = self._clock()
        with self._writing() as db:
            db.execute(
                OBSERVE_JOB,
                {
                    "job_id": job_id,
                    "model": model or UNKNOWN_MODEL,
                    "status": status,
                    "progress": progress,
                    "cost": cost,
                    "error": error,
                    "hint": hint,
                    "now": now,
                    "finished_at": now if status in TERMINAL_STATUSES else None,
                },
            )
            return job_from_row(db.execute(SELECT_JOB, (job_id,)).fetchone())

    def record_outputs(self, job_id: str, outputs: list[dict[str, Any]]) -> JobRecord:
        """Replace the job's list of saved outputs. Raises KeyError for a job the ledger has never seen."""
        with self._writing() as db:
            updated = db.execute(
                "UPDATE jobs SET outputs = ?, updated_at = ? WHERE job_id = ?",
                (_dump(outputs), self._clock(), job_id),
            )
            if updated.rowcount == 0:
                raise KeyError(job_id)
            return job_from_row(db.execute(SELECT_JOB, (job_id,)).fetchone())

    def get_job(self, job_id: str) -> JobRecord | None:
        with self._reading() as db:
            row = db.execute(SELECT_JOB, (job_id,)).fetchone()
        return None if row is None else job_from_row(row)

    def list_jobs(self, *, limit: int = 20, status: str | None = None) -> list[JobRecord]:
        """Newest first (created_at, then job_id, both descending)."""
        if limit < 0:
            raise ValueError(f"limit must be 0 or more, not {limit}")
        with self._reading() as db:
            if status is None:
                rows = db.execute(
                    "SELECT * FROM jobs ORDER BY created_at DESC, job_id DESC LIMIT ?",
                    (limit,),
                ).fetchall()
            else:
                rows = db.execute(
                    "SELECT * FROM jobs WHERE status = ? ORDER BY created_at DESC, job_id DESC LIMIT ?",
                    (status, limit),
                ).fetchall()
        return jobs_from_rows(rows)

    def find_reusable(self, request_key: str, *, success_window: float = 600.0) -> JobRecord | None:
        """The newest job for an identical request that is still running or succeeded recently.

        A failed or canceled job is never reused: asking again is how the caller retries it.
        """
        with self._reading() as db:
            row = db.execute(FIND_REUSABLE, (request_key, self._clock() - success_window)).fetchone()
        return None if row is None else job_from_row(row)

    def jobs_in_flight(self) -> list[JobRecord]:
        """Jobs not yet terminal, newest first: what a restarted server may still want to watch."""
        with self._reading() as db:
            rows = db.execute(JOBS_IN_FLIGHT).fetchall()
        return jobs_from_rows(rows)

    def jobs_in_batch(self, batch_id: str) -> list[JobRecord]:
        """The jobs of one batch, submitted in it or added to it, oldest first (created_at, then job_id)."""
        with self._reading() as db:
            rows = db.execute(JOBS_IN_BATCH, (batch_id,)).fetchall()
        return jobs_from_rows(rows)

    def spending_since(self, since: float) -> list[tuple[float, float]]:
        """(created_at, cost) of every job this server submitted at or after `since` (wall-clock seconds,
        as the ledger's timestamps are) whose cost is known, oldest first.

        Every status counts, running, failed and canceled ones too: Scenario bills a job when it is
        submitted, so a job still in flight is money already spent; the cost is the one the API stated
        (in its answer to the submission, then in the job's billing once seen). A job only looked up by its id
        (submitted elsewhere) is not counted, and neither is one whose cost was never stated (a lost
        answer's job, until it is seen again).
        """
        with self._reading() as db:
            rows = db.execute(SPENDING_SINCE, (since,)).fetchall()
        return spending_from_rows(rows)

    # --- submission attempts ----------------------------------------------------------------------

    def begin_attempt(self, *, request_key: str, model: str, inputs: dict[str, Any]) -> Attempt:
        """Write down a billed request before it is sent (outcome "sending")."""
        with self._writing() as db:
            cursor = db.execute(
                "INSERT INTO attempts (request_key, model, inputs, sent_at, outcome) "
                "VALUES (?, ?, ?, ?, 'sending')",
                (request_key, model, _dump(inputs), self._clock()),
            )
            return attempt_from_row(db.execute(SELECT_ATTEMPT, (cursor.lastrowid,)).fetchone())

    def claim_attempt(
        self,
        *,
        request_key: str,
        model: str,
        inputs: dict[str, Any],
        success_window: float = 600.0,
        skip_jobs: frozenset[str] = frozenset(),
    ) -> tuple[Attempt | None, bool]:
        """Write down a billed request before it is sent, unless an identical one is being sent now or
        has just made a job.

        Returns (the new attempt, True) when this caller may send; (the attempt in flight, False) when a
        young "sending" attempt for the same request exists, in this process or another; or (None,
        False) when a job for the same request that may be reused exists now (`find_reusable`'s rule,
        less the `skip_jobs` the caller already judged not reusable): it appeared after the caller
        looked, so the caller must look again. One transaction: two callers can never both claim the
        same request, and none claims one that another has just completed.
        """
        now = self._clock()
        with self._writing() as db:
            row = db.execute(
                "SELECT * FROM attempts WHERE request_key = ? AND outcome = 'sending' AND sent_at >= ? "
                "ORDER BY sent_at DESC, attempt_id DESC LIMIT 1",
                (request_key, now - STALE_SENDING_SECONDS),
            ).fetchone()
            if row is not None:
                return attempt_from_row(row), False
            reusable = db.execute(FIND_REUSABLE, (request_key, now - success_window)).fetchone()
            if reusable is not None and reusable["job_id"] not in skip_jobs:
                return None, False
            cursor = db.execute(
                "INSERT INTO attempts (request_key, model, inputs, sent_at, outcome) "
                "VALUES (?, ?, ?, ?, 'sending')",
                (request_key, model, _dump(inputs), now),
            )
            return attempt_from_row(db.execute(SELECT_ATTEMPT, (cursor.lastrowid,)).fetchone()), True

    def mark_sending(self, attempt_id: int, *, inputs: dict[str, Any]) -> None:
        """The request is about to leave: record exactly what is sent, and start its answer clock.

        An attempt is claimed before its images are uploaded (the request's identity is its content,
        known before any upload); what is sent names the uploaded assets, and that is what a lost
        answer's job is looked for by.
        """
        with self._writing() as db:
            db.execute(
                "UPDATE attempts SET inputs = ?, sent_at = ? WHERE attempt_id = ?",
                (_dump(inputs), self._clock(), attempt_id),
            )

    def get_attempt(self, attempt_id: int) -> Attempt | None:
        with self._reading() as db:
            row = db.execute(SELECT_ATTEMPT, (attempt_id,)).fetchone()
        return None if row is None else attempt_from_row(row)

    def finish_attempt(self, attempt_id: int, *, outcome: str, job_id: str | None = None) -> Attempt:
        """Settle an attempt: accepted (with its job), rejected (surely not billed) or uncertain.

        An uncertain attempt may be settled again later, once the job it made has been found.
        Raises ValueError for another outcome, KeyError for an unknown attempt.
        """
        if outcome not in ATTEMPT_OUTCOMES - {"sending"}:
            raise ValueError(f"outcome must be accepted, rejected or uncertain, not {outcome!r}")
        with self._writing() as db:
            updated = db.execute(
                "UPDATE attempts SET outcome = ?, job_id = COALESCE(?, job_id) WHERE attempt_id = ?",
                (outcome, job_id, attempt_id),
            )
            if updated.rowcount == 0:
                raise KeyError(attempt_id)
            return attempt_from_row(db.execute(SELECT_ATTEMPT, (attempt_id,)).fetchone())

    def open_uncertain_attempt(self, request_key: str, *, within: float = 600.0) -> Attempt | None:
        """The newest recent attempt for this request that may have been billed without an answer.

        That is one marked uncertain, or one still "sending" long after any answer would have come
        (its process died mid-request). A young "sending" one is a request in progress, not returned.
        """
        now = self._clock()
        with self._reading() as db:
            row = db.execute(
                "SELECT * FROM attempts WHERE request_key = ? AND sent_at >= ? "
                "AND (outcome = 'uncertain' OR (outcome = 'sending' AND sent_at < ?)) "
                "ORDER BY sent_at DESC, attempt_id DESC LIMIT 1",
                (request_key, now - within, now - STALE_SENDING_SECONDS),
            ).fetchone()
        return None if row is None else attempt_from_row(row)


def _dump(value: dict[str, Any] | list[dict[str, Any]]) -> str:
    return json.dumps(value, sort_keys=True)
