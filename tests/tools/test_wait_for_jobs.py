"""wait_for_jobs through the MCP client: many jobs at once, mixed outcomes, progress, timeouts."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from scenario_upscale_mcp.sandbox.app import Sandbox
from tests.conftest import RecordingTransport
from tests.images import png_bytes

pytestmark = pytest.mark.anyio


async def submit(client: Client, sandbox: Sandbox, **arguments: Any) -> str:
    asset = sandbox.add_asset(png_bytes(40, 30), "tile.png")
    result = await client.call_tool("upscale_v3", {"image": asset, "wait": 0, **arguments})
    assert result.structured_content is not None, result.content
    job_id: str = result.structured_content["jobId"]
    return job_id


async def test_waits_for_a_mix_of_succeeding_failing_and_unknown_jobs(
    client: Client, api: RecordingTransport, sandbox: Sandbox, folders: dict[str, Path]
) -> None:
    sandbox.faults.fail_next_jobs = 1
    failing = await submit(client, sandbox, seed=1)
    succeeding = [await submit(client, sandbox, seed=seed) for seed in (2, 3)]
    reported: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        reported.append(progress)

    result = await client.call_tool(
        "wait_for_jobs",
        {"jobIds": [failing, *succeeding, "job_nobody_knows"], "timeout": 20},
        progress_callback=on_progress,
    )

    assert not result.is_error, result.content
    answer = result.structured_content
    assert answer is not None
    by_id = {job["jobId"]: job for job in answer["jobs"]}
    assert [job["jobId"] for job in answer["jobs"]] == [failing, *succeeding, "job_nobody_knows"]
    assert by_id[failing]["status"] == "failure"
    assert by_id[failing]["error"] and by_id[failing]["hint"]
    assert by_id["job_nobody_knows"]["status"] == "not-found"
    assert "Job not found" in by_id["job_nobody_knows"]["error"]
    for job_id in succeeding:
        [output] = by_id[job_id]["outputs"]
        saved = Path(output["path"])
        assert saved.parent == folders["output"] and saved.is_file()
        assert saved.name.startswith("asset_") or "upscale-v3_x2_" in saved.name
        assert (output["width"], output["height"]) == (80, 60)
        assert by_id[job_id]["model"] == "model_upscale-v3"
    assert answer["finished"] == 4 and answer["running"] == 0 and answer["next"] is None
    assert reported and reported[-1] == 1.0
    # Strictly increasing, as the protocol requires: a poll round that moved nothing reports nothing.
    assert all(earlier < later for earlier, later in itertools.pairwise(reported)), reported
    # One request per unfinished job per round: never more polls of a job than of the busiest one.
    polls = Counter(path.rsplit("/", 1)[-1] for path in api.paths("GET") if path.startswith("/v1/jobs/"))
    assert polls["job_nobody_knows"] == 1  # an unknown job is not asked again


async def test_a_timeout_returns_what_finished_and_what_still_runs(client: Client, sandbox: Sandbox) -> None:
    quick = await submit(client, sandbox, seed=10)
    sandbox.job_seconds = 60
    slow = await submit(client, sandbox, seed=11)

    result = await client.call_tool("wait_for_jobs", {"jobIds": [quick, slow], "timeout": 1.5})

    answer = result.structured_content
    assert answer is not None and not result.is_error
    statuses = {job["jobId"]: job["status"] for job in answer["jobs"]}
    assert statuses[quick] == "success"
    assert statuses[slow] not in ("success", "failure", "canceled")
    assert answer["finished"] == 1 and answer["running"] == 1
    assert slow in answer["next"] and "wait_for_jobs" in answer["next"]
    # The text alone carries it all (some hosts never show structured content): the saved path, the
    # id still running and the next call.
    text = result.content[0].text  # type: ignore[union-attr]
    [saved] = next(job for job in answer["jobs"] if job["jobId"] == quick)["outputs"]
    assert text.startswith("1 of 2 jobs finished (1 succeeded). Saved 1 file: ")
    assert saved["path"] in text
    assert f"Still running: {slow}." in text and answer["next"] in text


async def test_outputs_are_named_after_the_local_source(
    client: Client, sample_image: Path, folders: dict[str, Path]
) -> None:
    submitted = await client.call_tool(
        "upscale_texture", {"image": str(sample_image), "upscaleFactor": 4, "wait": 0}
    )
    assert submitted.structured_content is not None
    job_id = submitted.structured_content["jobId"]

    result = await client.call_tool(
        "wait_for_jobs", {"jobIds": [job_id], "timeout": 20, "outputDir": "batch"}
    )

    assert result.structured_content is not None
    [job] = result.structured_content["jobs"]
    path = Path(job["outputs"][0]["path"])
    assert path.parent == folders["output"] / "batch"
    assert path.name.startswith("castle_texture_x4_")
    text = result.content[0].text  # type: ignore[union-attr]
    assert text.startswith(f"1 of 1 job finished (1 succeeded). Saved 1 file: {path} (")
    assert text.endswith("Nothing is left running.")


@pytest.mark.parametrize(
    ("job_ids", "message"), [([], "at least 1 item"), ([f"job_{i}" for i in range(33)], "at most 32 items")]
)
async def test_job_id_count_is_bounded(
    client: Client, api: RecordingTransport, job_ids: list[str], message: str
) -> None:
    result = await client.call_tool("wait_for_jobs", {"jobIds": job_ids})
    assert result.is_error
    assert message in result.content[0].text  # type: ignore[union-attr]
    assert api.requests == []
