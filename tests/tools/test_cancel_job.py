"""cancel_job through the MCP client: best effort, and plain about a refusal."""

from __future__ import annotations

import pytest
from mcp import Client

from scenario_upscale_mcp.sandbox.app import Sandbox
from tests.images import png_bytes

pytestmark = pytest.mark.anyio


async def running_job(client: Client, sandbox: Sandbox) -> str:
    sandbox.job_seconds = 60
    asset = sandbox.add_asset(png_bytes(), "a.png")
    result = await client.call_tool("upscale_v3", {"image": asset, "wait": 0})
    assert result.structured_content is not None
    job_id: str = result.structured_content["jobId"]
    return job_id


async def test_a_refused_cancel_says_the_job_keeps_running_and_is_billed(
    client: Client, sandbox: Sandbox
) -> None:
    job_id = await running_job(client, sandbox)
    result = await client.call_tool("cancel_job", {"jobId": job_id})

    assert not result.is_error, result.content
    text = result.content[0].text  # type: ignore[union-attr]
    assert "Cannot cancel this type of job" in text
    assert "keeps running and will be billed" in text
    assert result.structured_content is not None
    assert result.structured_content["status"] not in ("canceled", "failure", "success")


async def test_an_accepted_cancel_reports_the_canceled_job(client: Client, sandbox: Sandbox) -> None:
    sandbox.faults.cancel_refused = False
    job_id = await running_job(client, sandbox)
    result = await client.call_tool("cancel_job", {"jobId": job_id})

    assert result.structured_content is not None
    assert result.structured_content["status"] == "canceled"
    listed = await client.call_tool("list_jobs", {})
    assert listed.structured_content is not None
    assert listed.structured_content["jobs"][0]["status"] == "canceled"  # the ledger learned it


async def test_cancelling_an_unknown_job_is_a_clear_error(client: Client) -> None:
    result = await client.call_tool("cancel_job", {"jobId": "job_missing"})
    assert result.is_error
    assert "not found" in result.content[0].text.lower()  # type: ignore[union-attr]
