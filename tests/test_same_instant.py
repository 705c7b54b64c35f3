"""Identical calls at the same instant are one job and one upload, whatever the image: a local file, a
data: URI, in one server process or two sharing a ledger. A request's identity is its content (the
model, the arguments set, the hash of every image's bytes), known before anything is uploaded."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.types import TextContent

from scenario_upscale_mcp.jobs.ledger import Ledger, LedgerError
from scenario_upscale_mcp.sandbox.app import Sandbox
from scenario_upscale_mcp.sandbox.serving import serve_in_thread
from tests.conftest import RecordingTransport
from tests.images import png_bytes, write_noise_png
from tests.servers import stdio_params, structured

pytestmark = pytest.mark.anyio

# The calls at the same instant race real in-flight requests: on the fake clock, time could jump past
# the settling grace while the first request is still being answered, which real time never does; so
# those tests run on the real clock (`real_time`).


def generate_posts(api: RecordingTransport) -> int:
    return sum(1 for r in api.requests if r.method == "POST" and r.url.path.startswith("/v1/generate/"))


async def upscale(client: Client, arguments: dict[str, Any]) -> dict[str, Any]:
    return structured(await client.call_tool("upscale_v3", arguments))


async def at_once(client: Client, arguments: dict[str, Any], times: int) -> list[dict[str, Any]]:
    answers: list[dict[str, Any]] = []

    async def ask() -> None:
        answers.append(await upscale(client, arguments))

    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            for _ in range(times):
                group.start_soon(ask)
    return answers


@pytest.mark.real_time
async def test_twenty_identical_calls_with_a_local_file_make_one_upload_and_one_job(
    client: Client, api: RecordingTransport, sandbox: Sandbox, sample_image: Path
) -> None:
    answers = await at_once(client, {"image": str(sample_image), "upscaleFactor": 3, "wait": 0}, 20)

    assert sandbox.route_counts["POST /v1/assets"] == 1
    assert generate_posts(api) == 1 and len(sandbox.jobs) == 1
    assert {answer["jobId"] for answer in answers} == set(sandbox.jobs)


@pytest.mark.real_time
async def test_three_identical_data_uris_make_one_upload_and_one_job(
    client: Client, api: RecordingTransport, sandbox: Sandbox
) -> None:
    uri = "data:image/png;base64," + base64.b64encode(png_bytes(30, 20)).decode()
    answers = await at_once(client, {"image": uri, "wait": 0}, 3)

    assert sandbox.route_counts["POST /v1/assets"] == 1
    assert generate_posts(api) == 1
    assert len({answer["jobId"] for answer in answers}) == 1


async def test_the_same_content_under_two_names_is_one_request(
    client: Client, api: RecordingTransport, sandbox: Sandbox, folders: dict[str, Path]
) -> None:
    data = png_bytes(40, 30)
    (folders["images"] / "a.png").write_bytes(data)
    (folders["images"] / "b.png").write_bytes(data)

    first = await upscale(client, {"image": str(folders["images"] / "a.png"), "wait": 0})
    second = await upscale(client, {"image": str(folders["images"] / "b.png"), "wait": 0})

    assert first["jobId"] == second["jobId"]
    assert sandbox.route_counts["POST /v1/assets"] == 1 and generate_posts(api) == 1


@pytest.mark.real_time
async def test_identical_dry_runs_at_once_upload_once(
    client: Client, sandbox: Sandbox, sample_image: Path
) -> None:
    answers = await at_once(client, {"image": str(sample_image), "dryRun": True}, 5)

    assert sandbox.route_counts["POST /v1/assets"] == 1
    assert len(answers) == 5 and all(answer["creativeUnitsCost"] for answer in answers)
    assert sandbox.jobs == {}


async def test_a_different_image_is_a_different_request(
    client: Client, api: RecordingTransport, folders: dict[str, Path]
) -> None:
    (folders["images"] / "a.png").write_bytes(png_bytes(40, 30, (1, 2, 3)))
    (folders["images"] / "b.png").write_bytes(png_bytes(40, 30, (3, 2, 1)))

    first = await upscale(client, {"image": str(folders["images"] / "a.png"), "wait": 0})
    second = await upscale(client, {"image": str(folders["images"] / "b.png"), "wait": 0})

    assert first["jobId"] != second["jobId"] and generate_posts(api) == 2


async def test_the_bytes_uploaded_are_the_bytes_checked_even_if_the_file_is_swapped(
    client: Client, api: RecordingTransport, sandbox: Sandbox, folders: dict[str, Path], tmp_path: Path
) -> None:
    """A large file is uploaded in parts, read while the upload runs: swapped for a symlink to an
    outside, non-image file once the upload has begun, it must still be the checked bytes that arrive."""
    image = write_noise_png(folders["images"] / "big.png", 7)
    checked = image.read_bytes()
    outside = tmp_path / "secret.bin"
    outside.write_bytes(b"outside the allowed folders, not an image" * 200_000)
    inner = api.inner
    swapped: list[bool] = []

    class SwapWhenTheUploadStarts(RecordingTransport):
        async def handle_async_request(self, request: Any) -> Any:
            if request.method == "POST" and request.url.path == "/v1/uploads" and not swapped:
                image.unlink()
                os.symlink(outside, image)
                swapped.append(True)
            return await inner.handle_async_request(request)

    api.inner = SwapWhenTheUploadStarts(inner)
    result = await client.call_tool("upload_image", {"image": str(image)})

    assert swapped and not result.is_error, result.content
    [asset] = sandbox.assets.values()
    assert asset.data == checked


@pytest.mark.slow
async def test_two_server_processes_at_the_same_instant_make_one_upload_and_one_job(tmp_path: Path) -> None:
    sandbox = Sandbox(job_seconds=0.5)
    images = tmp_path / "images"
    images.mkdir()
    image = images / "hero.png"
    image.write_bytes(png_bytes(50, 40))
    with serve_in_thread(sandbox) as base_url:
        params = stdio_params(base_url, tmp_path)  # images from tmp_path/images
        ready = anyio.Event()
        answers: list[dict[str, Any]] = []
        connected = 0

        async def host() -> None:
            nonlocal connected
            async with Client(params, read_timeout_seconds=60) as client:
                await client.list_tools()
                connected += 1
                if connected == 2:
                    ready.set()
                await ready.wait()  # both processes are up: the calls leave at the same instant
                for answer in await at_once(client, {"image": str(image), "upscaleFactor": 3, "wait": 0}, 3):
                    answers.append(answer)

        with anyio.fail_after(60):
            async with anyio.create_task_group() as group:
                group.start_soon(host)
                group.start_soon(host)

    assert len(answers) == 6 and len({answer["jobId"] for answer in answers}) == 1
    assert len(sandbox.jobs) == 1
    assert sandbox.route_counts["POST /v1/assets"] == 1


async def test_a_job_the_ledger_cannot_record_still_reaches_the_caller_and_is_not_billed_again(
    client: Client,
    api: RecordingTransport,
    sandbox: Sandbox,
    sample_image: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def disk_full(self: Ledger, **_: Any) -> None:
        raise LedgerError(f"The job ledger {self.path} could not be used (database or disk is full)")

    monkeypatch.setattr(Ledger, "record_submission", disk_full)  # the state disk fills up after the POST
    arguments = {"image": str(sample_image), "wait": 0}
    result = await client.call_tool("upscale_v3", arguments)

    assert not result.is_error, result.content
    content = result.structured_content or {}
    [job_id] = list(sandbox.jobs)
    assert content["jobId"] == job_id
    text = " ".join(block.text for block in result.content if isinstance(block, TextContent))
    assert job_id in text and "ledger is not recording" in text and "disk is full" in text

    again = await upscale(client, arguments)  # a host retrying: the same job, not a second charge
    assert again["jobId"] == job_id and generate_posts(api) == 1
