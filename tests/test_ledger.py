"""The job ledger: migrations, restarts, never undoing a finished job, reuse rules, and concurrent writers."""

from __future__ import annotations

import multiprocessing
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pytest

from scenario_upscale_mcp.api.errors import ScenarioError
from scenario_upscale_mcp.jobs.ledger import (
    FILE_NAME,
    SCHEMA_VERSION,
    STALE_SENDING_SECONDS,
    DamagedRecordError,
    JobRecord,
    Ledger,
    LedgerError,
)
from scenario_upscale_mcp.jobs.ledger_schema import ATTEMPT_OUTCOMES, MIGRATIONS

START = 1_700_000_000.0
PROCESS_TIMEOUT = 30.0


class FakeClock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ledger(tmp_path: Path, clock: FakeClock) -> Iterator[Ledger]:
    with Ledger.in_folder(tmp_path / "state", clock=clock) as opened:
        yield opened


def submit(
    ledger: Ledger,
    job_id: str,
    *,
    request_key: str | None = "key-a",
    status: str = "queued",
    cost: float | None = None,
    batch_id: str | None = None,
) -> JobRecord:
    return ledger.record_submission(
        job_id=job_id,
        model="model_upscale-v3",
        parameters={"image": "castle.png", "scale": 4},
        inputs={"image": "asset_castle", "scalingFactor": 4},
        request_key=request_key,
        source_stem="castle",
        upscale_factor=4.0,
        status=status,
        progress=0.0,
        cost=cost,
        batch_id=batch_id,
    )


def sqlite_value(path: Path, sql: str) -> Any:
    with closing(sqlite3.connect(path)) as db:
        return db.execute(sql).fetchone()[0]


# --- opening, migrations, restarts -------------------------------------------------------------------


def test_an_empty_file_is_migrated_to_the_current_schema(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "state" / FILE_NAME
    path.parent.mkdir(parents=True)
    path.touch()

    with Ledger(path):
        pass

    assert sqlite_value(path, "PRAGMA user_version") == SCHEMA_VERSION
    assert sqlite_value(path, "PRAGMA journal_mode") == "wal"
    with closing(sqlite3.connect(path)) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"jobs", "attempts", "uploads", "downloads"} <= tables


def test_the_state_folder_is_made_with_its_parents(tmp_path: Path) -> None:
    folder = tmp_path / "not" / "there" / "yet"
    with Ledger.in_folder(folder) as ledger:
        assert ledger.path == folder / FILE_NAME
    assert (folder / FILE_NAME).is_file()


def test_the_connection_is_set_up_for_sharing(ledger: Ledger) -> None:
    db = ledger._connection
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_a_ledger_from_a_newer_version_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    with closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")

    with pytest.raises(LedgerError, match="newer scenario-upscale-mcp"):
        Ledger(path)
    assert sqlite_value(path, "PRAGMA user_version") == SCHEMA_VERSION + 1
    assert sqlite_value(path, "PRAGMA journal_mode") == "delete"


def test_a_damaged_file_is_refused_with_advice(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    path.write_bytes(b"this is not a database, just some bytes " * 200)

    with pytest.raises(LedgerError, match="Move it aside"):
        Ledger(path)


def test_the_released_migration_allows_exactly_the_attempt_outcomes() -> None:
    # A released migration never changes; the constant the code checks outcomes with must match it.
    [spelled] = re.findall(r"outcome IN \(([^)]*)\)", MIGRATIONS[0])
    assert spelled == "'sending', 'accepted', 'rejected', 'uncertain'"
    assert {value.strip(" '") for value in spelled.split(",")} == ATTEMPT_OUTCOMES


def test_the_ledgers_errors_are_scenario_errors_said_to_the_assistant() -> None:
    assert issubclass(DamagedRecordError, LedgerError)
    assert issubclass(LedgerError, ScenarioError)


def test_everything_survives_a_restart(tmp_path: Path, clock: FakeClock) -> None:
    with Ledger.in_folder(tmp_path, clock=clock) as first:
        submit(first, "job_1")
        first.observe_job("job_1", status="success", progress=1.0, cost=2.5)
        first.record_outputs("job_1", [{"assetId": "asset_out", "path": "/out/castle_x4.png"}])
        attempt = first.begin_attempt(request_key="key-a", model="model_upscale-v3", inputs={"a": 1})
        first.finish_attempt(attempt.attempt_id, outcome="uncertain")
        first.record_upload(content_hash="sha-1", asset_id="asset_castle", name="castle.png", size=10)
        first.record_download(asset_id="asset_out", path="/out/castle_x4.png", job_id="job_1")
        before = first.get_job("job_1")

    with Ledger.in_folder(tmp_path, clock=clock) as second:
        assert second.get_job("job_1") == before
        assert second.open_uncertain_attempt("key-a") == attempt.__class__(
            attempt_id=attempt.attempt_id,
            request_key="key-a",
            model="model_upscale-v3",
            inputs={"a": 1},
            sent_at=START,
            outcome="uncertain",
            job_id=None,
        )
        assert second.asset_for_content("sha-1") == "asset_castle"
        assert second.downloads_of("asset_out") == ["/out/castle_x4.png"]
    assert sqlite_value(tmp_path / FILE_NAME, "PRAGMA user_version") == SCHEMA_VERSION


# --- jobs --------------------------------------------------------------------------------------------


def test_a_submission_is_stored_as_given(ledger: Ledger, tmp_path: Path) -> None:
    job = submit(ledger, "job_1")

    assert job == JobRecord(
        job_id="job_1",
        model="model_upscale-v3",
        parameters={"image": "castle.png", "scale": 4},
        inputs={"image": "asset_castle", "scalingFactor": 4},
        request_key="key-a",
        source_stem="castle",
        upscale_factor=4.0,
        output_dir=None,
        status="queued",
        progress=0.0,
        cost=None,
        error=None,
        hint=None,
        outputs=[],
        created_at=START,
        updated_at=START,
        finished_at=None,
    )
    assert not job.is_terminal
    assert ledger.get_job("job_1") == job
    assert ledger.get_job("job_other") is None
    stored = sqlite_value(tmp_path / "state" / FILE_NAME, "SELECT parameters FROM jobs")
    assert stored == '{"image": "castle.png", "scale": 4}'  # sorted keys


def test_a_submission_completes_a_job_another_process_saw_first(ledger: Ledger, clock: FakeClock) -> None:
    ledger.observe_job("job_1", status="in-progress", progress=0.4)
    clock.advance(1)

    job = submit(ledger, "job_1", status="queued")

    assert job.model == "model_upscale-v3"
    assert job.parameters == {"image": "castle.png", "scale": 4}
    assert job.inputs == {"image": "asset_castle", "scalingFactor": 4}
    assert (job.request_key, job.source_stem, job.upscale_factor) == ("key-a", "castle", 4.0)
    assert (job.status, job.progress) == ("in-progress", 0.4)  # what the API said later is kept
    assert (job.created_at, job.updated_at) == (START, START + 1)


def test_a_second_submission_record_keeps_the_first(ledger: Ledger) -> None:
    submit(ledger, "job_1", request_key="key-a")
    again = ledger.record_submission(
        job_id="job_1",
        model="model_other",
        parameters={"other": True},
        inputs={"other": True},
        request_key="key-b",
        source_stem="other",
        upscale_factor=2.0,
        status="queued",
        progress=0.0,
        cost=3.0,
    )
    assert again.model == "model_upscale-v3"
    assert again.parameters == {"image": "castle.png", "scale": 4}
    assert (again.request_key, again.source_stem, again.upscale_factor) == ("key-a", "castle", 4.0)
    assert again.cost == 3.0  # it was missing


def test_the_folder_a_call_asked_for_is_remembered_and_the_first_one_kept(ledger: Ledger) -> None:
    ledger.observe_job("job_1", status="queued", progress=0.0)  # another process saw it first

    def record(job_id: str, output_dir: str | None) -> JobRecord:
        return ledger.record_submission(
            job_id=job_id,
            model="model_upscale-v3",
            parameters={},
            inputs={},
            request_key=None,
            source_stem="castle",
            upscale_factor=2.0,
            status="queued",
            progress=0.0,
            cost=None,
            output_dir=output_dir,
        )

    assert record("job_1", "/pictures/sub1").output_dir == "/pictures/sub1"
    assert record("job_1", "/pictures/other").output_dir == "/pictures/sub1"
    assert record("job_2", None).output_dir is None
    assert ledger.get_job("job_1") == ledger.list_jobs()[-1]


def test_a_version_2_ledger_gains_the_output_folder_and_keeps_its_jobs(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    with closing(sqlite3.connect(path)) as db:
        for script in MIGRATIONS[:2]:
            db.executescript(script)
        db.execute(
            "INSERT INTO jobs (job_id, model, status, created_at, updated_at) "
            "VALUES ('job_old', 'model_upscale-v3', 'queued', 1, 1)"
        )
        db.execute("PRAGMA user_version = 2")
        db.commit()

    with Ledger(path) as ledger:
        old = ledger.get_job("job_old")

    assert old is not None and old.output_dir is None
    assert sqlite_value(path, "PRAGMA user_version") == SCHEMA_VERSION


def test_a_version_3_ledger_gains_the_batch_table_and_keeps_its_jobs(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    with closing(sqlite3.connect(path)) as db:
        for script in MIGRATIONS[:3]:
            db.executescript(script)
        db.execute(
            "INSERT INTO jobs (job_id, model, request_key, status, cost, output_dir, created_at, updated_at) "
            "VALUES ('job_old', 'model_upscale-v3', 'key-old', 'success', 4, '/pictures/sub', 10, 10)"
        )
        db.execute("PRAGMA user_version = 3")
        db.commit()

    with Ledger(path, clock=FakeClock(20.0)) as ledger:
        old = ledger.get_job("job_old")
        assert ledger.jobs_in_batch("batch_1") == []
        submit(ledger, "job_new", batch_id="batch_1")
        ledger.add_to_batch("batch_1", "job_old")  # a job from before batches can join one
        in_batch = ledger.jobs_in_batch("batch_1")
        spent = ledger.spending_since(0)

    assert old is not None
    assert (old.request_key, old.output_dir, old.status, old.cost) == (
        "key-old",
        "/pictures/sub",
        "success",
        4,
    )
    assert [job.job_id for job in in_batch] == ["job_old", "job_new"]
    assert in_batch[0] == old
    assert spent == [(10, 4)]
    assert sqlite_value(path, "PRAGMA user_version") == SCHEMA_VERSION == 4
    with closing(sqlite3.connect(path)) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        job_columns = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
        batch_columns = [row[1] for row in db.execute("PRAGMA table_info(batch_jobs)")]
    assert "batch_jobs" in tables
    assert batch_columns == ["batch_id", "job_id", "added_at"]
    assert "batch_id" not in job_columns  # membership is the table's, not a column of the job


def test_a_job_in_two_batches_is_listed_in_both(ledger: Ledger, clock: FakeClock) -> None:
    ledger.observe_job("job_x", status="queued", progress=0.0)  # another process saw it first
    submit(ledger, "job_x", batch_id="batch_a")
    submit(ledger, "job_y", request_key="key-y", batch_id="batch_a")
    clock.advance(1)
    submit(ledger, "job_x", batch_id="batch_b")  # recorded again, by another batch
    submit(ledger, "job_z", request_key="key-z", batch_id="batch_b")
    submit(ledger, "job_single", request_key="key-single")

    assert [job.job_id for job in ledger.jobs_in_batch("batch_a")] == ["job_x", "job_y"]
    assert [job.job_id for job in ledger.jobs_in_batch("batch_b")] == ["job_x", "job_z"]
    x = ledger.observe_job("job_x", status="success", progress=1.0)
    assert ledger.jobs_in_batch("batch_a")[0] == x == ledger.jobs_in_batch("batch_b")[0]
    assert sqlite_value(ledger.path, "SELECT count(*) FROM batch_jobs WHERE job_id = 'job_single'") == 0


def test_a_job_added_to_a_batch_is_listed_once_however_often_it_is_added(
    ledger: Ledger, clock: FakeClock
) -> None:
    submit(ledger, "job_x", batch_id="batch_a")
    clock.advance(5)
    submit(ledger, "job_z", request_key="key-z", batch_id="batch_b")
    clock.advance(5)

    ledger.add_to_batch("batch_b", "job_x")  # the duplicate guard answered an image of batch_b with job_x
    ledger.add_to_batch("batch_b", "job_x")
    clock.advance(5)
    ledger.add_to_batch("batch_a", "job_x")  # already in it: submitted there
    submit(ledger, "job_x", batch_id="batch_b")  # and recorded again there

    assert [job.job_id for job in ledger.jobs_in_batch("batch_a")] == ["job_x"]
    assert [job.job_id for job in ledger.jobs_in_batch("batch_b")] == ["job_x", "job_z"]  # by created_at
    with closing(sqlite3.connect(ledger.path)) as db:
        added = dict(db.execute("SELECT batch_id, added_at FROM batch_jobs WHERE job_id = 'job_x'"))
    assert added == {"batch_a": START, "batch_b": START + 10}  # the first time is kept


def test_a_job_added_before_it_is_recorded_is_listed_once_it_is(ledger: Ledger) -> None:
    ledger.add_to_batch("batch_a", "job_later")  # another process is still recording it

    assert ledger.jobs_in_batch("batch_a") == []
    submit(ledger, "job_later")
    assert [job.job_id for job in ledger.jobs_in_batch("batch_a")] == ["job_later"]


def test_a_batchs_jobs_are_listed_oldest_first(ledger: Ledger, clock: FakeClock) -> None:
    submit(ledger, "job_b", batch_id="batch_1")
    submit(ledger, "job_a", batch_id="batch_1")  # same instant: by job id
    submit(ledger, "job_other", batch_id="batch_2")
    submit(ledger, "job_single")
    clock.advance(1)
    submit(ledger, "job_0", batch_id="batch_1")
    ledger.observe_job("job_a", status="failure", progress=0.0, error="boom")

    listed = ledger.jobs_in_batch("batch_1")

    assert [job.job_id for job in listed] == ["job_a", "job_b", "job_0"]
    assert listed[0].status == "failure" and listed[0].error == "boom"
    assert [job.job_id for job in ledger.jobs_in_batch("batch_2")] == ["job_other"]
    assert ledger.jobs_in_batch("batch_unknown") == []


def test_spending_counts_every_submitted_job_with_a_cost_oldest_first(
    ledger: Ledger, clock: FakeClock
) -> None:
    submit(ledger, "job_before", cost=100.0)
    clock.advance(10)
    since = clock.now
    submit(ledger, "job_running", cost=4.0)  # exactly at `since`: counted
    clock.advance(1)
    submit(ledger, "job_failed", cost=2.5)
    ledger.observe_job("job_failed", status="failure", progress=0.0)
    submit(ledger, "job_canceled", cost=1.0)
    ledger.observe_job("job_canceled", status="canceled", progress=0.0)
    submit(ledger, "job_no_cost", cost=None)  # a lost answer's job: its cost was never stated
    ledger.observe_job("job_elsewhere", status="success", progress=1.0, cost=50.0)  # only looked up by id
    clock.advance(1)
    submit(ledger, "job_billed", cost=8.0)
    ledger.observe_job("job_billed", status="success", progress=1.0, cost=6.0)  # the billing replaces it

    assert ledger.spending_since(since) == [
        (since, 4.0),
        (since + 1, 1.0),  # the same instant: by job id (job_canceled, job_failed)
        (since + 1, 2.5),
        (since + 2, 6.0),
    ]
    assert ledger.spending_since(since + 2) == [(since + 2, 6.0)]
    assert ledger.spending_since(since + 3) == []
    assert len(ledger.spending_since(0)) == 5


def test_a_damaged_cost_is_left_out_of_the_spending_with_a_warning(
    ledger: Ledger, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    submit(ledger, "job_good", cost=3.0)
    submit(ledger, "job_bad", cost=5.0)
    with closing(sqlite3.connect(tmp_path / "state" / FILE_NAME)) as db:
        db.execute("UPDATE jobs SET cost = 'five' WHERE job_id = 'job_bad'")
        db.commit()

    assert ledger.spending_since(0) == [(START, 3.0)]
    assert "'job_bad'" in caplog.text and "cost should be a finite number" in caplog.text


def test_observing_an_unknown_job_records_it(ledger: Ledger) -> None:
    job = ledger.observe_job("job_seen", status="queued", progress=0.0)
    assert (job.model, job.parameters, job.inputs, job.outputs) == ("unknown", {}, {}, [])
    assert (job.request_key, job.source_stem, job.upscale_factor) == (None, None, None)
    assert job.created_at == START

    named = ledger.observe_job("job_named", status="queued", progress=0.0, model="model_texture")
    assert named.model == "model_texture"
    assert ledger.observe_job("job_seen", status="queued", progress=0.1, model="model_x").model == "model_x"
    assert (
        ledger.observe_job("job_named", status="queued", progress=0.1, model="model_y").model
        == "model_texture"
    )


def test_a_terminal_status_is_never_undone_and_finished_at_is_set_once(
    ledger: Ledger, clock: FakeClock
) -> None:
    submit(ledger, "job_1")
    clock.advance(5)
    running = ledger.observe_job("job_1", status="in-progress", progress=0.5)
    assert (running.status, running.finished_at, running.updated_at) == ("in-progress", None, START + 5)

    clock.advance(5)
    done = ledger.observe_job("job_1", status="success", progress=1.0, cost=4.0)
    assert done.is_terminal
    assert (done.status, done.progress, done.finished_at) == ("success", 1.0, START + 10)

    clock.advance(5)
    late = ledger.observe_job("job_1", status="in-progress", progress=0.7, error="stale")
    assert (late.status, late.progress, late.error, late.finished_at) == ("success", 1.0, None, START + 10)
    other_terminal = ledger.observe_job("job_1", status="failure", progress=0.0, error="stale")
    assert (other_terminal.status, other_terminal.error) == ("success", None)

    clock.advance(5)
    again = ledger.observe_job("job_1", status="success", progress=1.0, cost=4.5)
    assert (again.cost, again.finished_at, again.updated_at) == (4.5, START + 10, START + 20)


def test_a_submission_that_is_already_finished_is_recorded_finished(ledger: Ledger) -> None:
    job = submit(ledger, "job_1", status="failure")
    assert (job.is_terminal, job.finished_at) == (True, START)


def test_cost_error_and_hint_are_only_replaced_by_values(ledger: Ledger) -> None:
    ledger.observe_job("job_1", status="in-progress", progress=0.2, cost=1.5, error="slow", hint="wait")
    kept = ledger.observe_job("job_1", status="in-progress", progress=0.3)
    assert (kept.cost, kept.error, kept.hint, kept.progress) == (1.5, "slow", "wait", 0.3)

    failed = ledger.observe_job("job_1", status="failure", progress=0.3, error="GPU lost", hint="Try again.")
    assert (failed.status, failed.error, failed.hint, failed.cost) == (
        "failure",
        "GPU lost",
        "Try again.",
        1.5,
    )


def test_non_terminal_answers_simply_replace_each_other(ledger: Ledger) -> None:
    ledger.observe_job("job_1", status="in-progress", progress=0.6)
    assert ledger.observe_job("job_1", status="queued", progress=0.0).status == "queued"


def test_outputs_are_recorded_on_the_job(ledger: Ledger, clock: FakeClock) -> None:
    submit(ledger, "job_1")
    outputs = [
        {
            "assetId": "asset_a",
            "path": "/o/a.png",
            "mimeType": "image/png",
            "width": 8,
            "height": 6,
            "bytes": 99,
        },
        {
            "assetId": "asset_b",
            "path": "/o/b.png",
            "mimeType": "image/png",
            "width": 8,
            "height": 6,
            "bytes": 98,
        },
    ]
    clock.advance(3)

    job = ledger.record_outputs("job_1", outputs)

    assert job.outputs == outputs
    assert job.updated_at == START + 3
    assert ledger.record_outputs("job_1", outputs[:1]).outputs == outputs[:1]
    with pytest.raises(KeyError):
        ledger.record_outputs("job_missing", outputs)


def test_jobs_are_listed_newest_first(ledger: Ledger, clock: FakeClock) -> None:
    for job_id in ("job_a", "job_b"):
        submit(ledger, job_id)
    clock.advance(1)
    submit(ledger, "job_c")
    clock.advance(1)
    submit(ledger, "job_d")
    ledger.observe_job("job_b", status="success", progress=1.0)

    assert [job.job_id for job in ledger.list_jobs()] == ["job_d", "job_c", "job_b", "job_a"]
    assert [job.job_id for job in ledger.list_jobs(limit=2)] == ["job_d", "job_c"]
    assert [job.job_id for job in ledger.list_jobs(status="success")] == ["job_b"]
    assert [job.job_id for job in ledger.list_jobs(status="queued", limit=1)] == ["job_d"]
    assert ledger.list_jobs(limit=0) == []
    with pytest.raises(ValueError, match="limit"):
        ledger.list_jobs(limit=-1)


def test_jobs_in_flight_are_the_unfinished_ones(ledger: Ledger, clock: FakeClock) -> None:
    for index, status in enumerate(["queued", "success", "warming-up", "failure", "finalizing", "canceled"]):
        clock.advance(1)
        ledger.observe_job(f"job_{index}", status=status, progress=0.0)

    assert [job.job_id for job in ledger.jobs_in_flight()] == ["job_4", "job_2", "job_0"]


# --- reuse --------------------------------------------------------------------------------------------


def test_a_running_job_is_reused(ledger: Ledger, clock: FakeClock) -> None:
    submit(ledger, "job_1")
    ledger.observe_job("job_1", status="in-progress", progress=0.5)
    clock.advance(10_000)  # running is running, however long ago it started

    reused = ledger.find_reusable("key-a")
    assert reused is not None and reused.job_id == "job_1"
    assert ledger.find_reusable("key-other") is None


def test_a_recent_success_is_reused_and_an_old_one_is_not(ledger: Ledger, clock: FakeClock) -> None:
    submit(ledger, "job_1")
    clock.advance(30)
    ledger.observe_job("job_1", status="success", progress=1.0)

    clock.advance(599)
    found = ledger.find_reusable("key-a")
    assert found is not None and found.job_id == "job_1"
    assert ledger.find_reusable("key-a", success_window=100) is None

    clock.advance(2)
    assert ledger.find_reusable("key-a") is None
    assert ledger.find_reusable("key-a", success_window=3600) is not None


@pytest.mark.parametrize("status", ["failure", "canceled"])
def test_a_failed_or_canceled_job_is_never_reused(ledger: Ledger, status: str) -> None:
    submit(ledger, "job_1")
    ledger.observe_job("job_1", status=status, progress=0.0)
    assert ledger.find_reusable("key-a", success_window=1e9) is None


def test_the_newest_reusable_job_wins(ledger: Ledger, clock: FakeClock) -> None:
    submit(ledger, "job_old")
    clock.advance(1)
    submit(ledger, "job_new")
    clock.advance(1)
    submit(ledger, "job_newest_failed")
    ledger.observe_job("job_newest_failed", status="failure", progress=0.0)
    submit(ledger, "job_unkeyed", request_key=None)

    found = ledger.find_reusable("key-a")
    assert found is not None and found.job_id == "job_new"


# --- submission attempts ------------------------------------------------------------------------------


def test_an_attempt_is_written_before_sending_and_settled_after(ledger: Ledger) -> None:
    attempt = ledger.begin_attempt(request_key="key-a", model="model_upscale-v3", inputs={"image": "asset_1"})
    assert (attempt.outcome, attempt.job_id, attempt.sent_at) == ("sending", None, START)
    assert attempt.inputs == {"image": "asset_1"}

    accepted = ledger.finish_attempt(attempt.attempt_id, outcome="accepted", job_id="job_1")
    assert (accepted.outcome, accepted.job_id, accepted.attempt_id) == (
        "accepted",
        "job_1",
        attempt.attempt_id,
    )

    second = ledger.begin_attempt(request_key="key-a", model="model_upscale-v3", inputs={})
    assert second.attempt_id != attempt.attempt_id
    assert ledger.finish_attempt(second.attempt_id, outcome="rejected").outcome == "rejected"


def test_an_attempt_only_settles_to_a_known_outcome(ledger: Ledger) -> None:
    attempt = ledger.begin_attempt(request_key="key-a", model="m", inputs={})
    for outcome in ("sending", "done", ""):
        with pytest.raises(ValueError, match="outcome"):
            ledger.finish_attempt(attempt.attempt_id, outcome=outcome)
    with pytest.raises(KeyError):
        ledger.finish_attempt(attempt.attempt_id + 100, outcome="accepted")


def test_an_uncertain_attempt_can_be_resolved_later(ledger: Ledger) -> None:
    attempt = ledger.begin_attempt(request_key="key-a", model="m", inputs={})
    ledger.finish_attempt(attempt.attempt_id, outcome="uncertain")
    assert ledger.open_uncertain_attempt("key-a") is not None

    resolved = ledger.finish_attempt(attempt.attempt_id, outcome="accepted", job_id="job_found")
    assert resolved.job_id == "job_found"
    assert ledger.open_uncertain_attempt("key-a") is None


def test_open_uncertain_attempts(ledger: Ledger, clock: FakeClock) -> None:
    uncertain = ledger.begin_attempt(request_key="key-a", model="m", inputs={})
    ledger.finish_attempt(uncertain.attempt_id, outcome="uncertain")
    clock.advance(1)
    for outcome in ("accepted", "rejected"):
        settled = ledger.begin_attempt(request_key="key-a", model="m", inputs={})
        ledger.finish_attempt(settled.attempt_id, outcome=outcome, job_id="job_x")
    young = ledger.begin_attempt(request_key="key-a", model="m", inputs={})

    found = ledger.open_uncertain_attempt("key-a")
    assert found is not None and found.attempt_id == uncertain.attempt_id  # not the settled, not the young
    assert ledger.open_uncertain_attempt("key-other") is None
    assert ledger.open_uncertain_attempt("key-a", within=0.5) is None

    clock.advance(STALE_SENDING_SECONDS + 1)  # the process that was sending `young` died
    stale = ledger.open_uncertain_attempt("key-a")
    assert stale is not None and (stale.attempt_id, stale.outcome) == (young.attempt_id, "sending")

    clock.advance(600)
    assert ledger.open_uncertain_attempt("key-a") is None
    assert ledger.open_uncertain_attempt("key-a", within=3600) is not None


# --- uploads and downloads ----------------------------------------------------------------------------


def test_an_upload_is_remembered_by_content(ledger: Ledger) -> None:
    assert ledger.asset_for_content("sha-1") is None

    ledger.record_upload(content_hash="sha-1", asset_id="asset_a", name="castle.png", size=100)
    assert ledger.asset_for_content("sha-1") == "asset_a"
    ledger.record_upload(content_hash="sha-1", asset_id="asset_b", name="castle copy.png", size=100)
    assert ledger.asset_for_content("sha-1") == "asset_b"
    assert ledger.asset_for_content("sha-2") is None

    ledger.forget_upload("sha-1")
    assert ledger.asset_for_content("sha-1") is None
    ledger.forget_upload("sha-never")


def test_forgetting_a_gone_asset_keeps_a_newer_upload(ledger: Ledger) -> None:
    ledger.record_upload(content_hash="sha-1", asset_id="asset_new", name="castle.png", size=100)

    ledger.forget_upload("sha-1", asset_id="asset_old")
    assert ledger.asset_for_content("sha-1") == "asset_new"
    ledger.forget_upload("sha-1", asset_id="asset_new")
    assert ledger.asset_for_content("sha-1") is None


def test_downloads_are_listed_oldest_first_once_each(ledger: Ledger, clock: FakeClock) -> None:
    assert ledger.downloads_of("asset_a") == []
    ledger.record_download(asset_id="asset_a", path="/o/z.png", job_id="job_1")
    clock.advance(1)
    ledger.record_download(asset_id="asset_a", path="/o/a.png", job_id=None)
    ledger.record_download(asset_id="asset_b", path="/o/b.png", job_id=None)
    clock.advance(1)
    ledger.record_download(asset_id="asset_a", path="/o/z.png", job_id=None)

    assert ledger.downloads_of("asset_a") == ["/o/z.png", "/o/a.png"]
    assert ledger.downloads_of("asset_b") == ["/o/b.png"]


# --- concurrency ---------------------------------------------------------------------------------------


def write_many(ledger: Ledger, tag: str, count: int) -> None:
    """The writes one server makes while busy: submissions, polls, uploads, and a job everyone polls."""
    for index in range(count):
        job_id = f"job_{tag}_{index}"
        ledger.record_submission(
            job_id=job_id,
            model="model_upscale-v3",
            parameters={"tag": tag, "index": index},
            inputs={"image": f"asset_{tag}_{index}"},
            request_key=f"key-{tag}-{index}",
            source_stem=tag,
            upscale_factor=2.0,
            status="queued",
            progress=0.0,
            cost=None,
        )
        ledger.observe_job(job_id, status="success", progress=1.0, cost=1.0)
        ledger.record_upload(
            content_hash=f"sha-{tag}-{index}", asset_id=f"asset_{tag}_{index}", name="x", size=index
        )
        ledger.observe_job("job_shared", status="in-progress", progress=index / count)


def write_from_another_process(path: str, tag: str, count: int, barrier: Barrier) -> None:
    """Run in a spawned process: open the ledger when everyone else does, then write."""
    barrier.wait(timeout=PROCESS_TIMEOUT)
    with Ledger(Path(path)) as ledger:
        write_many(ledger, tag, count)


def assert_everything_written(ledger: Ledger, tags: list[str], count: int) -> None:
    jobs = {job.job_id: job for job in ledger.list_jobs(limit=1_000_000)}
    assert len(jobs) == len(tags) * count + 1
    for tag in tags:
        for index in range(count):
            job = jobs[f"job_{tag}_{index}"]
            assert (job.status, job.cost, job.parameters) == ("success", 1.0, {"tag": tag, "index": index})
            assert ledger.asset_for_content(f"sha-{tag}-{index}") == f"asset_{tag}_{index}"
    assert jobs["job_shared"].status == "in-progress"


@pytest.mark.slow
def test_two_processes_and_this_one_write_the_same_file_at_once(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / FILE_NAME  # not there yet: all three also race to create and migrate it
    count = 200
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(3)
    children = [
        context.Process(target=write_from_another_process, args=(str(path), tag, count, barrier))
        for tag in ("first", "second")
    ]
    for child in children:
        child.start()
    try:
        barrier.wait(timeout=PROCESS_TIMEOUT)
        with Ledger(path) as ledger:
            write_many(ledger, "parent", count)
    finally:
        for child in children:
            child.join(timeout=PROCESS_TIMEOUT)
            if child.is_alive():
                child.kill()
                child.join()
    assert [child.exitcode for child in children] == [0, 0]
    for child in children:
        child.close()

    with Ledger(path) as ledger:
        assert_everything_written(ledger, ["first", "second", "parent"], count)
    assert sqlite_value(path, "PRAGMA integrity_check") == "ok"
    assert sqlite_value(path, "PRAGMA user_version") == SCHEMA_VERSION


def test_eight_threads_write_through_one_ledger(ledger: Ledger) -> None:
    tags = [f"thread{number}" for number in range(8)]
    count = 40
    with ThreadPoolExecutor(max_workers=len(tags)) as pool:
        futures = [pool.submit(write_many, ledger, tag, count) for tag in tags]
        for future in futures:
            future.result(timeout=PROCESS_TIMEOUT)

    assert_everything_written(ledger, tags, count)
    assert sqlite_value(ledger.path, "PRAGMA integrity_check") == "ok"


def test_two_ledgers_on_one_file_in_one_process(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    with Ledger(path) as one, Ledger(path) as two, ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(write_many, one, "one", 50), pool.submit(write_many, two, "two", 50)]
        for future in futures:
            future.result(timeout=PROCESS_TIMEOUT)
        assert_everything_written(two, ["one", "two"], 50)


@pytest.mark.slow
def test_importing_the_ledger_stays_light() -> None:
    heavy = ["mcp", "httpx", "pydantic", "pydantic_settings", "PIL", "anyio"]
    script = (
        "import sys\n"
        "import scenario_upscale_mcp.jobs.ledger\n"
        f"loaded = sorted(name for name in {heavy!r} if name in sys.modules)\n"
        "sys.exit(', '.join(loaded) or None)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert (result.returncode, result.stderr) == (0, "")


def test_a_claim_after_an_identical_job_appeared_is_refused_so_the_caller_looks_again(ledger: Ledger) -> None:
    """The race behind a double charge: a caller looks (nothing to reuse), another caller's request
    is sent, answered and recorded, then the first claims. The claim must see the new job."""
    first, mine = ledger.claim_attempt(request_key="key-a", model="m", inputs={})
    assert mine and first is not None
    submit(ledger, "job_1")
    ledger.finish_attempt(first.attempt_id, outcome="accepted", job_id="job_1")

    late, late_mine = ledger.claim_attempt(request_key="key-a", model="m", inputs={})
    assert (late, late_mine) == (None, False)

    judged, judged_mine = ledger.claim_attempt(
        request_key="key-a", model="m", inputs={}, skip_jobs=frozenset({"job_1"})
    )
    assert judged_mine and judged is not None  # a job found not worth reusing does not block
