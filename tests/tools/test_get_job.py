"""get_job through the MCP client."""

from __future__ import annotations

import anyio
import pytest
from mcp import Client

from scenario_upscale_mcp.sandbox.app import Sandbox
from tests.conftest import RecordingTransport
from tests.fake_clock import FakeClock
from tests.images import png_bytes

pytestmark = pytest.mark.anyio


async def test_follows_a_job_from_submission_to_success(
    client: Client, sandbox: Sandbox, clock: FakeClock
) -> None:
    asset = sandbox.add_asset(png_bytes(), "a.png")
    submitted = await client.call_tool("upscale_v3", {"image": asset, "wait": 0})
    assert submitted.structured_content is not None
    job_id = submitted.structured_content["jobId"]

    seen: list[str] = []
    with anyio.fail_after(10):
        while True:
            result = await client.call_tool("get_job", {"jobId": job_id})
            assert not result.is_error, result.content
            job = result.structured_content
            assert job is not None
            seen.append(job["status"])
            if job["status"] == "success":
                break
            await clock.sleep(0.05)

    assert job["jobId"] == job_id and job["progress"] == 1.0
    assert job["creativeUnitsCost"] is not None
    [output] = job["outputs"]
    assert output["assetId"] in sandbox.assets and output["path"] is None  # get_job never downloads
    assert set(seen) <= {"pending", "queued", "warming-up", "in-progress", "finalizing", "success"}


async def test_reports_a_failed_job_with_error_and_hint(client: Client, sandbox: Sandbox) -> None:
    sandbox.faults.fail_next_jobs = 1
    sandbox.job_seconds = 0.0
    asset = sandbox.add_asset(png_bytes(), "a.png")
    submitted = await client.call_tool("upscale_v3", {"image": asset, "wait": 0})
    assert submitted.structured_content is not None

    result = await client.call_tool("get_job", {"jobId": submitted.structured_content["jobId"]})
    job = result.structured_content
    assert job is not None and job["status"] == "failure"
    assert job["error"] and job["hint"]


async def test_an_unknown_job_id_is_a_clear_error(client: Client, api: RecordingTransport) -> None:
    result = await client.call_tool("get_job", {"jobId": "job_does_not_exist"})
    assert result.is_error
    assert "Job not found" in result.content[0].text  # type: ignore[union-attr]
    assert len(api.requests) == 1  # a 404 is not retried


async def test_a_finished_job_reads_as_succeeded(client: Client, sandbox: Sandbox) -> None:
    asset = sandbox.add_asset(png_bytes(40, 30), "tile.png")
    submitted = await client.call_tool("upscale_v3", {"image": asset, "wait": 20})
    assert submitted.structured_content is not None
    job_id = submitted.structured_content["jobId"]

    result = await client.call_tool("get_job", {"jobId": job_id})

    text = result.content[0].text  # type: ignore[union-attr]
    assert text.startswith(f"Job {job_id} (model_upscale-v3) succeeded"), text
    assert "is success" not in text
