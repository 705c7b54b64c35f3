"""Never billed twice: identical requests reuse the earlier job, lost answers are recovered, limits respected."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, MCPError

from scenario_upscale_mcp.app import create_server
from scenario_upscale_mcp.config import Settings
from scenario_upscale_mcp.sandbox.app import Sandbox
from tests.conftest import RecordingTransport
from tests.fake_clock import FakeClock
from tests.images import png_bytes
from tests.servers import structured

pytestmark = pytest.mark.anyio


def generate_posts(api: RecordingTransport) -> int:
    return sum(
        1
        for r in api.requests
        if r.method == "POST" and r.url.path.startswith("/v1/generate/") and "dryRun" not in r.url.params
    )


async def upscale(client: Client, **arguments: Any) -> dict[str, Any]:
    return structured(await client.call_tool("upscale_v3", arguments))


async def test_an_identical_request_while_running_returns_the_same_job(
    client: Client, api: RecordingTransport, sandbox: Sandbox
) -> None:
    sandbox.job_seconds = 30
    asset = sandbox.add_asset(png_bytes(), "a.png")
    first = await upscale(client, image=asset, upscaleFactor=4, wait=0)
    again = await upscale(client, image=asset, upscaleFactor=4, wait=0)

    assert again["jobId"] == first["jobId"]
    assert "identical request was already submitted" in again["notice"]
    assert "allowDuplicate=true" in again["notice"]
    assert generate_posts(api) == 1 and len(sandbox.jobs) == 1


async def test_an_identical_request_after_success_returns_the_finished_job_with_its_files(
    client: Client, api: RecordingTransport, sample_image: Path
) -> None:
    first = await upscale(client, image=str(sample_image), wait=20)
    again = await upscale(client, image=str(sample_image), wait=20)

    assert first["status"] == again["status"] == "success"
    assert again["jobId"] == first["jobId"]
    assert generate_posts(api) == 1
    assert api.paths("POST").count("/v1/assets") == 1  # the file itself was uploaded once too
    assert again["outputs"] == first["outputs"]  # the files saved the first time, not copies
    assert Path(again["outputs"][0]["path"]).is_file()


async def test_a_different_request_is_a_new_job(
    client: Client, api: RecordingTransport, sandbox: Sandbox
) -> None:
    asset = sandbox.add_asset(png_bytes(), "a.png")
    first = await upscale(client, image=asset, wait=0)
    other = await upscale(client, image=asset, style="anime", wait=0)
    assert other["jobId"] != first["jobId"]
    assert generate_posts(api) == 2


async def test_allow_duplicate_submits_anyway(
    client: Client, api: RecordingTransport, sandbox: Sandbox
) -> None:
    asset = sandbox.add_asset(png_bytes(), "a.png")
    first = await upscale(client, image=asset, wait=0)
    forced = await upscale(client, image=asset, wait=0, allowDuplicate=True)
    assert forced["jobId"] != first["jobId"] and forced["notice"] is None
    assert generate_posts(api) == 2


async def test_a_failed_job_is_not_reused(client: Client, api: RecordingTransport, sandbox: Sandbox) -> None:
    sandbox.faults.fail_next_jobs = 1
    asset = sandbox.add_asset(png_bytes(), "a.png")
    failed = await upscale(client, image=asset, wait=20)
    retried = await upscale(client, image=asset, wait=20)
    assert failed["status"] == "failure"
    assert retried["status"] == "success" and retried["jobId"] != failed["jobId"]
    assert generate_posts(api) == 2


async def test_a_lost_answer_whose_job_cannot_be_found_blocks_an_identical_retry(
    client: Client, api: RecordingTransport, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API took the request but its answer and its job list both fail us: nothing is re-sent."""
    sandbox.faults.accept_then_500 = 1
    asset = sandbox.add_asset(png_bytes(), "a.png")
    hide_jobs = {"on": True}
    original = sandbox.app

    async def app_hiding_the_job_list(scope: Any, receive: Any, send: Any) -> None:
        if hide_jobs["on"] and scope["type"] == "http" and scope["path"] == "/v1/jobs":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": json.dumps({"jobs": []}).encode()})
            return
        await original(scope, receive, send)

    monkeypatch.setattr(api.inner, "app", app_hiding_the_job_list)

    first = await client.call_tool("upscale_v3", {"image": asset})
    second = await client.call_tool("upscale_v3", {"image": asset})

    assert first.is_error and "outcome is unknown" in first.content[0].text  # type: ignore[union-attr]
    assert second.is_error and "not sent again automatically" in second.content[0].text  # type: ignore[union-attr]
    assert generate_posts(api) == 1 and len(sandbox.jobs) == 1

    hide_jobs["on"] = False  # the job list now shows the job: the next identical call finds it
    found = await upscale(client, image=asset, wait=20)
    assert list(sandbox.jobs) == [found["jobId"]] and found["status"] == "success"
    assert "lost its answer" in found["notice"]
    assert generate_posts(api) == 1


async def test_the_plan_limit_is_retried_a_few_times_spaced_then_explained(
    client: Client, api: RecordingTransport, sandbox: Sandbox, clock: FakeClock
) -> None:
    sandbox.faults.plan_limit = 1
    sandbox.faults.retry_after_seconds = 0.2
    sandbox.job_seconds = 60
    running = await upscale(client, image=sandbox.add_asset(png_bytes(), "a.png"), wait=0)
    started = clock.now()

    result = await client.call_tool(
        "upscale_v3", {"image": sandbox.add_asset(png_bytes(8, 8), "b.png"), "wait": 5}
    )

    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert "limit of 1 on jobs running at once" in text
    assert running["jobId"] in text  # the jobs in flight, from the ledger
    assert generate_posts(api) == 1 + 3  # three attempts for the second request, no more
    assert clock.now() - started >= 0.4  # spaced by Retry-After, not a hot loop


async def test_the_plan_limit_clears_when_a_running_job_finishes_within_wait(
    client: Client, api: RecordingTransport, sandbox: Sandbox
) -> None:
    sandbox.faults.plan_limit = 1
    sandbox.faults.retry_after_seconds = 0.3
    sandbox.job_seconds = 0.4
    await upscale(client, image=sandbox.add_asset(png_bytes(), "a.png"), wait=0)

    second = await upscale(client, image=sandbox.add_asset(png_bytes(8, 8), "b.png"), wait=20)
    assert second["status"] == "success"


async def test_max_parallel_jobs_queues_submissions_client_side(
    settings: Settings, api: RecordingTransport, sandbox: Sandbox, mode: str, clock: FakeClock
) -> None:
    sandbox.job_seconds = 0.5
    capped = settings.model_copy(update={"max_parallel_jobs": 1})
    async with Client(create_server(capped, transport=api, clock=clock), mode=mode) as client:
        first = await upscale(client, image=sandbox.add_asset(png_bytes(), "a.png"), wait=0)
        second = await upscale(client, image=sandbox.add_asset(png_bytes(8, 8), "b.png"), wait=20)

    assert second["status"] == "success"
    first_job = sandbox.jobs[first["jobId"]]
    second_job = sandbox.jobs[second["jobId"]]
    assert second_job.created_at >= first_job.history[-1][1]  # submitted only after the first finished
    assert sandbox.faults.plan_limit is None


async def test_max_parallel_jobs_refuses_when_the_wait_runs_out(
    settings: Settings, api: RecordingTransport, sandbox: Sandbox, mode: str, clock: FakeClock
) -> None:
    sandbox.job_seconds = 60
    capped = settings.model_copy(update={"max_parallel_jobs": 1})
    async with Client(create_server(capped, transport=api, clock=clock), mode=mode) as client:
        first = await upscale(client, image=sandbox.add_asset(png_bytes(), "a.png"), wait=0)
        result = await client.call_tool(
            "upscale_v3", {"image": sandbox.add_asset(png_bytes(8, 8), "b.png"), "wait": 0.3}
        )

    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert "SCENARIO_MAX_PARALLEL_JOBS is 1" in text and first["jobId"] in text
    assert len(sandbox.jobs) == 1


async def test_the_job_resource_returns_the_job_as_json(client: Client, sandbox: Sandbox) -> None:
    first = await upscale(client, image=sandbox.add_asset(png_bytes(), "a.png"), wait=20)

    templates = (await client.list_resource_templates()).resource_templates
    assert [t.uri_template for t in templates] == ["scenario://jobs/{jobId}"]
    read = await client.read_resource(f"scenario://jobs/{first['jobId']}")
    [content] = read.contents
    job = json.loads(content.text)  # type: ignore[union-attr]
    assert content.mime_type == "application/json"
    assert job["jobId"] == first["jobId"] and job["status"] == "success"
    assert job["outputs"][0]["path"] == first["outputs"][0]["path"]  # the saved path, from the ledger

    with pytest.raises(MCPError) as missing:
        await client.read_resource("scenario://jobs/job_unknown")
    assert missing.value.code == -32602


# Identical calls racing real in-flight requests: on the fake clock, time could jump past the
# settling grace while the first request is still being answered, which real time never does.
@pytest.mark.real_time
async def test_two_identical_requests_at_the_same_moment_make_one_job(
    client: Client, api: RecordingTransport, sandbox: Sandbox
) -> None:
    asset = sandbox.add_asset(png_bytes(), "a.png")
    answers: list[dict[str, Any]] = []

    async def ask() -> None:
        answers.append(await upscale(client, image=asset, upscaleFactor=3, wait=0))

    async with anyio.create_task_group() as group:
        group.start_soon(ask)
        group.start_soon(ask)

    assert generate_posts(api) == 1 and len(sandbox.jobs) == 1
    assert answers[0]["jobId"] == answers[1]["jobId"]


async def test_an_earlier_job_that_failed_unseen_is_not_returned_again(
    client: Client, api: RecordingTransport, sandbox: Sandbox, clock: FakeClock
) -> None:
    sandbox.faults.fail_next_jobs = 1
    sandbox.job_seconds = 0.05
    asset = sandbox.add_asset(png_bytes(), "a.png")
    first = await upscale(client, image=asset, wait=0)  # never polled: the ledger still says pending
    await clock.sleep(0.2)
    again = await upscale(client, image=asset, wait=20)

    assert again["jobId"] != first["jobId"] and again["status"] == "success"
    assert generate_posts(api) == 2


async def test_a_job_whose_output_cannot_be_saved_still_answers_with_the_job(
    client: Client, sandbox: Sandbox, folders: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from scenario_upscale_mcp.jobs import saving

    async def disk_full(*args: Any, **kwargs: Any) -> Any:
        from scenario_upscale_mcp.api.errors import DownloadError

        raise DownloadError("Cannot save x.png: No space left on device.")

    monkeypatch.setattr(saving, "save_asset", disk_full)
    result = await client.call_tool(
        "upscale_v3", {"image": sandbox.add_asset(png_bytes(), "a.png"), "wait": 20}
    )

    assert not result.is_error, result.content
    job = result.structured_content
    assert job is not None and job["status"] == "success" and job["jobId"] in sandbox.jobs
    assert "No space left on device" in job["notice"] and "download_assets" in job["notice"]
    assert job["outputs"][0]["path"] is None
