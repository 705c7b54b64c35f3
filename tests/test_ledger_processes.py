"""The ledger as host apps use it: across a server restart, and shared by two servers at once (over stdio)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from scenario_upscale_mcp.sandbox.app import Sandbox
from scenario_upscale_mcp.sandbox.serving import serve_in_thread
from tests.images import png_bytes
from tests.servers import stdio_params, structured

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture
def shared_api() -> Iterator[tuple[Sandbox, str]]:
    """One simulator on loopback that outlives the server processes, as Scenario's API would."""
    sandbox = Sandbox(job_seconds=0.5)
    with serve_in_thread(sandbox) as base_url:
        yield sandbox, base_url


def server_params(base_url: str, tmp_path: Path) -> StdioServerParameters:
    return stdio_params(base_url, tmp_path, SCENARIO_POLL_INITIAL_SECONDS="0.1")


async def call(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return structured(await client.call_tool(tool, arguments))


async def test_the_ledger_survives_a_restart(shared_api: tuple[Sandbox, str], tmp_path: Path) -> None:
    sandbox, base_url = shared_api
    (tmp_path / "images").mkdir()
    image = tmp_path / "images" / "hero.png"
    image.write_bytes(png_bytes(50, 40))
    params = server_params(base_url, tmp_path)

    async with Client(params, mode="legacy", read_timeout_seconds=60) as first_run:
        submitted = await call(first_run, "upscale_v3", {"image": str(image), "upscaleFactor": 3, "wait": 0})

    async with Client(params, read_timeout_seconds=60) as second_run:
        listed = await call(second_run, "list_jobs", {})
        again = await call(second_run, "upscale_v3", {"image": str(image), "upscaleFactor": 3, "wait": 0})
        waited = await call(second_run, "wait_for_jobs", {"jobIds": [submitted["jobId"]], "timeout": 30})

    assert [job["jobId"] for job in listed["jobs"]] == [submitted["jobId"]]
    assert listed["jobs"][0]["model"] == "model_upscale-v3"
    assert again["jobId"] == submitted["jobId"]  # the restarted server still refuses to pay twice
    assert len(sandbox.jobs) == 1
    assert sandbox.route_counts.get("POST /v1/assets") == 1  # nor to upload the same file twice
    [output] = waited["jobs"][0]["outputs"]
    assert Path(output["path"]).name.startswith("hero_upscale-v3_x3_")  # named from the ledger's record


async def test_two_servers_share_one_ledger_at_once(shared_api: tuple[Sandbox, str], tmp_path: Path) -> None:
    sandbox, base_url = shared_api
    (tmp_path / "images").mkdir()
    params = server_params(base_url, tmp_path)
    assets = [sandbox.add_asset(png_bytes(20 + i, 20), f"{i}.png") for i in range(12)]
    submitted: dict[str, list[str]] = {"a": [], "b": []}

    async def host(name: str, mine: list[str]) -> None:
        async with Client(params, read_timeout_seconds=60) as client:
            for asset in mine:
                job = await call(client, "upscale_texture", {"image": asset, "wait": 0})
                submitted[name].append(job["jobId"])
            await call(client, "wait_for_jobs", {"jobIds": submitted[name], "timeout": 30})

    with anyio.fail_after(60):
        async with anyio.create_task_group() as group:
            group.start_soon(host, "a", assets[::2])
            group.start_soon(host, "b", assets[1::2])

    async with Client(params, read_timeout_seconds=60) as client:
        listed = await call(client, "list_jobs", {"limit": 50})
    jobs = {job["jobId"]: job for job in listed["jobs"]}
    assert set(jobs) == set(submitted["a"]) | set(submitted["b"]) and len(jobs) == 12
    assert all(job["status"] == "success" and job["outputs"][0]["path"] for job in jobs.values())
    assert len(sandbox.jobs) == 12
