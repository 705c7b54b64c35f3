"""list_jobs through the MCP client: the local ledger, newest first, no network."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from scenario_upscale_mcp.app import create_server
from scenario_upscale_mcp.config import Settings
from scenario_upscale_mcp.sandbox.app import Sandbox
from tests.conftest import RecordingTransport
from tests.fake_clock import FakeClock
from tests.images import png_bytes

pytestmark = pytest.mark.anyio


async def test_lists_submitted_jobs_newest_first_with_a_status_filter(
    client: Client, sandbox: Sandbox, api: RecordingTransport
) -> None:
    ids = []
    for seed in (1, 2, 3):
        asset = sandbox.add_asset(png_bytes(), f"{seed}.png")
        result = await client.call_tool("upscale_texture", {"image": asset, "seed": seed, "wait": 0})
        assert result.structured_content is not None
        ids.append(result.structured_content["jobId"])
    await client.call_tool("wait_for_jobs", {"jobIds": ids[:1], "timeout": 20})
    requests_before = len(api.requests)

    everything = await client.call_tool("list_jobs", {})
    done = await client.call_tool("list_jobs", {"status": "success", "limit": 5})

    assert everything.structured_content is not None and done.structured_content is not None
    listed = everything.structured_content["jobs"]
    assert [job["jobId"] for job in listed] == ids[::-1]
    assert all(job["model"] == "model_sc-upscale-flux-texture" for job in listed)
    [finished] = done.structured_content["jobs"]
    assert finished["jobId"] == ids[0] and finished["outputs"][0]["path"]
    assert everything.content[0].text.startswith("The 3 most recent jobs (")  # type: ignore[union-attr]
    assert done.content[0].text.startswith("The most recent job (statuses as last seen")  # type: ignore[union-attr]
    assert len(api.requests) == requests_before  # the ledger alone answers


async def test_works_without_credentials(
    mode: str, tmp_path: Path, api: RecordingTransport, clock: FakeClock
) -> None:
    settings = Settings(output_dir=tmp_path, allowed_dirs=[tmp_path], state_dir=tmp_path)
    async with Client(create_server(settings, transport=api, clock=clock), mode=mode) as client:
        result = await client.call_tool("list_jobs", {"limit": 3})
    assert not result.is_error
    assert result.structured_content == {"jobs": []}
    assert api.requests == []
