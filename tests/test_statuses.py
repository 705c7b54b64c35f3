"""Job statuses are written once (`api.statuses`) and derived everywhere else: the API's answers, the
ledger's records and the ledger's SQL agree on every status, and no other server module spells a list
of them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import get_args

import pytest

from scenario_upscale_mcp.api import statuses
from scenario_upscale_mcp.api.answers import Job
from scenario_upscale_mcp.api.statuses import (
    JOB_STATUSES,
    RUNNING_STATUSES,
    SUCCESS,
    TERMINAL_STATUSES,
    UNSUCCESSFUL_STATUSES,
    JobStatus,
)
from scenario_upscale_mcp.jobs import ledger_schema
from scenario_upscale_mcp.jobs.ledger import Ledger

SERVER = Path(statuses.__file__).resolve().parents[1]
SOURCE = Path(statuses.__file__).resolve()
# The simulator is a package of its own that imports nothing of the server: it keeps its own list.
SEPARATE = [SERVER / "sandbox.py", SERVER / "sandbox"]
START = 1_700_000_000.0

_QUOTED = "|".join(re.escape(status) for status in JOB_STATUSES)
# Two quoted statuses in a row, as a list, a set, a tuple or an SQL `IN (...)` spells them.
STATUS_LIST = re.compile(rf"""(['"])(?:{_QUOTED})\1\s*,\s*(['"])(?:{_QUOTED})\2""")


def server_modules() -> Iterator[Path]:
    for path in sorted(SERVER.rglob("*.py")):
        if path != SOURCE and not any(path == other or other in path.parents for other in SEPARATE):
            yield path


def test_the_statuses_are_the_apis_eight() -> None:
    assert get_args(JobStatus) == JOB_STATUSES
    assert len(JOB_STATUSES) == 8
    assert set(JOB_STATUSES) == set(RUNNING_STATUSES) | set(TERMINAL_STATUSES)
    assert not set(RUNNING_STATUSES) & set(TERMINAL_STATUSES)
    assert TERMINAL_STATUSES == ("success", "failure", "canceled")
    assert (SUCCESS, UNSUCCESSFUL_STATUSES) == ("success", ("failure", "canceled"))


@pytest.mark.parametrize(
    "text",
    [
        "TERMINAL = ('success', 'failure', 'canceled')",
        'frozenset({"success", "failure", "canceled"})',
        "WHERE status NOT IN ('success', 'failure', 'canceled')",
        'job.status in ("failure", "canceled")',
        'Literal["pending", "queued"]',
    ],
)
def test_the_search_finds_a_list_of_statuses_however_it_is_spelled(text: str) -> None:
    assert STATUS_LIST.search(text)


def test_the_search_leaves_single_statuses_and_prose_alone() -> None:
    assert not STATUS_LIST.search('if job.status == "success": ... # success, failure or canceled')


def test_no_server_module_but_the_source_spells_a_list_of_statuses() -> None:
    modules = list(server_modules())
    assert SERVER / "jobs" / "ledger.py" in modules and SOURCE not in modules
    spelled = [
        f"{path.relative_to(SERVER)}:{text[: match.start()].count(chr(10)) + 1}: {match.group()}"
        for path in modules
        for text in [path.read_text(encoding="utf-8")]
        for match in STATUS_LIST.finditer(text)
    ]
    assert spelled == [], "derive these from scenario_upscale_mcp.api.statuses"


def test_the_ledgers_sql_spells_the_terminal_statuses_as_it_always_has() -> None:
    # The statements are built from the constant; this is the text they were released with.
    assert ledger_schema.TERMINAL == "('success', 'failure', 'canceled')"
    assert ledger_schema.TERMINAL in ledger_schema.OBSERVE_JOB
    with pytest.raises(ValueError, match="quote"):
        ledger_schema.sql_list(["it's"])


# --- every status, through each place that decides what it means ----------------------------------


@pytest.mark.parametrize("status", JOB_STATUSES)
def test_an_answer_is_terminal_exactly_when_its_status_is(status: str) -> None:
    job = Job.model_validate({"jobId": "job_1", "status": status})
    assert job.is_terminal == (status in TERMINAL_STATUSES)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger.in_folder(tmp_path, clock=lambda: START) as opened:
        yield opened


@pytest.mark.parametrize("status", JOB_STATUSES)
def test_the_ledger_treats_each_status_as_the_source_says(ledger: Ledger, status: str) -> None:
    terminal = status in TERMINAL_STATUSES
    record = ledger.record_submission(
        job_id="job_1",
        model="model_upscale-v3",
        parameters={},
        inputs={},
        request_key="key-a",
        source_stem=None,
        upscale_factor=None,
        status=status,
        progress=0.5,
        cost=None,
    )
    assert record.is_terminal == terminal
    assert (record.finished_at is not None) == terminal
    assert [job.job_id for job in ledger.jobs_in_flight()] == ([] if terminal else ["job_1"])
    reusable = ledger.find_reusable("key-a")
    assert (reusable is not None) == (status not in UNSUCCESSFUL_STATUSES)

    # A late answer saying "running" undoes a terminal status never, a running one always.
    later = ledger.observe_job("job_1", status="in-progress", progress=0.6)
    assert later.status == (status if terminal else "in-progress")
