"""A submission's batch reaches the ledger with its job, whichever way the job is recorded: answered at
once, or found again after its answer was lost. Called alone (tests/test_layers_alone.py's way): an API
client on the simulator, a ledger in a temporary folder, the real clock."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from scenario_upscale_mcp.api.client import ScenarioClient
from scenario_upscale_mcp.clock import AnyioClock
from scenario_upscale_mcp.config import Settings
from scenario_upscale_mcp.jobs.async_ledger import AsyncLedger
from scenario_upscale_mcp.jobs.ledger import FILE_NAME, Ledger
from scenario_upscale_mcp.jobs.submission import Submission, Submitter, submit
from scenario_upscale_mcp.sandbox.app import Sandbox
from tests.conftest import SANDBOX_URL, RecordingTransport
from tests.images import png_bytes

pytestmark = pytest.mark.anyio


@pytest.fixture
def sandbox() -> Sandbox:
    return Sandbox(job_seconds=30)


@pytest.fixture
async def submitter(tmp_path: Path, sandbox: Sandbox) -> AsyncIterator[Submitter]:
    api = RecordingTransport(httpx.ASGITransport(app=sandbox.app))
    settings = Settings(api_key="k", api_secret="s", base_url=SANDBOX_URL, state_dir=tmp_path)
    ledger = AsyncLedger(lambda: Ledger.in_folder(tmp_path))
    async with ScenarioClient(settings, transport=api) as client:
        yield Submitter(client=client, ledger=ledger, clock=AnyioClock(), unrecorded={})
    ledger.close()


def image_submission(sandbox: Sandbox, name: str, batch_id: str | None) -> Submission:
    asset = sandbox.add_asset(png_bytes(), name)

    async def body() -> dict[str, Any]:
        return {"image": asset}

    return Submission(
        model_id="model_upscale-v3",
        identity={"image": asset},
        make_body=body,
        parameters={"image": asset},
        source_stem=name.removesuffix(".png"),
        upscale_factor=2.0,
        batch_id=batch_id,
    )


def batches_of(state_dir: Path, job_id: str) -> list[str]:
    """The batches the ledger file counts the job in, read from the file itself."""
    with closing(sqlite3.connect(state_dir / FILE_NAME)) as db:
        rows = db.execute("SELECT batch_id FROM batch_jobs WHERE job_id = ? ORDER BY batch_id", (job_id,))
        return [batch_id for (batch_id,) in rows]


async def test_a_batchs_jobs_are_recorded_in_it_and_found_by_its_id(
    submitter: Submitter, sandbox: Sandbox, tmp_path: Path
) -> None:
    first = await submit(
        submitter, image_submission(sandbox, "a.png", "batch_1"), allow_duplicate=False, wait_budget=0
    )
    second = await submit(
        submitter, image_submission(sandbox, "b.png", "batch_1"), allow_duplicate=False, wait_budget=0
    )
    alone = await submit(
        submitter, image_submission(sandbox, "c.png", None), allow_duplicate=False, wait_budget=0
    )

    in_batch = await submitter.ledger(lambda db: db.jobs_in_batch("batch_1"))
    single = await submitter.ledger(lambda db: db.get_job(alone.job.job_id))

    assert [job.job_id for job in in_batch] == [first.job.job_id, second.job.job_id]
    assert single is not None and batches_of(tmp_path, single.job_id) == []
    assert batches_of(tmp_path, first.job.job_id) == ["batch_1"]
    spent = await submitter.ledger(lambda db: db.spending_since(0))
    assert [cost for _, cost in spent] == [first.cost, second.cost, alone.cost]


async def test_a_job_found_after_its_answer_was_lost_is_recorded_in_its_batch(
    submitter: Submitter, sandbox: Sandbox, tmp_path: Path
) -> None:
    sandbox.faults.accept_then_500 = 1  # the API takes the job, then answers 500

    found = await submit(
        submitter, image_submission(sandbox, "a.png", "batch_1"), allow_duplicate=False, wait_budget=0
    )

    assert found.notice is not None and "was found" in found.notice
    assert list(sandbox.jobs) == [found.job.job_id]
    [recorded] = await submitter.ledger(lambda db: db.jobs_in_batch("batch_1"))
    assert recorded.job_id == found.job.job_id
    assert batches_of(tmp_path, found.job.job_id) == ["batch_1"]
