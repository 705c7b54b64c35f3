"""download_assets through the MCP client: fresh links, conversion, no overwrites, no half files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client
from PIL import Image

from scenario_upscale_mcp.sandbox.app import Sandbox
from tests.conftest import RecordingTransport
from tests.images import noise_png, png_bytes
from tests.servers import structured

pytestmark = pytest.mark.anyio


async def download(client: Client, **arguments: Any) -> dict[str, Any]:
    return structured(await client.call_tool("download_assets", arguments))


def files_in(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.rglob("*") if path.is_file())


async def test_saves_assets_by_id_and_never_overwrites(
    client: Client, sandbox: Sandbox, folders: dict[str, Path]
) -> None:
    asset = sandbox.add_asset(png_bytes(20, 10), "a.png")
    first = await download(client, assetIds=[asset])
    second = await download(client, assetIds=[asset])

    [one], [two] = first["files"], second["files"]
    assert Path(one["path"]).name == f"{asset}.png"
    assert Path(two["path"]).name == f"{asset}-1.png"
    assert (one["width"], one["height"], one["mimeType"]) == (20, 10, "image/png")
    assert files_in(folders["output"]) == sorted([f"{asset}.png", f"{asset}-1.png"])


async def test_saves_every_output_of_a_job_named_after_its_source(
    client: Client, sample_image: Path, folders: dict[str, Path]
) -> None:
    done = await client.call_tool("upscale_v3", {"image": str(sample_image), "upscaleFactor": 3, "wait": 20})
    assert done.structured_content is not None
    job_id = done.structured_content["jobId"]

    result = await download(client, jobId=job_id, outputDir="again")
    [file] = result["files"]
    assert result["jobId"] == job_id
    assert Path(file["path"]).parent == folders["output"] / "again"
    assert Path(file["path"]).name.startswith("castle_upscale-v3_x3_")


async def test_converts_on_scenarios_side(client: Client, api: RecordingTransport, sandbox: Sandbox) -> None:
    asset = sandbox.add_asset(png_bytes(16, 16), "a.png")
    result = await download(client, assetIds=[asset], format="jpeg")

    [file] = result["files"]
    assert file["mimeType"] == "image/jpeg" and file["path"].endswith(".jpg")
    with Image.open(file["path"]) as image:
        assert image.format == "JPEG"
    [convert] = [r for r in api.requests if r.url.path.endswith("/download")]
    assert json.loads(convert.content) == {"targetFormat": "jpeg"}


async def test_an_expired_link_is_fetched_again_once(
    client: Client, api: RecordingTransport, sandbox: Sandbox
) -> None:
    asset = sandbox.add_asset(png_bytes(), "a.png")
    inner = api.inner
    expired: list[str] = []

    class ExpiringOnce(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.startswith("/cdn/") and not expired:
                expired.append(str(request.url))
                return httpx.Response(
                    403, text="<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
                )
            return await inner.handle_async_request(request)

    api.inner = ExpiringOnce()
    result = await download(client, assetIds=[asset])

    assert Path(result["files"][0]["path"]).is_file()
    assert api.paths("GET").count(f"/v1/assets/{asset}") == 2  # looked up again for a fresh link


async def test_a_cut_download_is_retried_once_and_leaves_no_half_file(
    client: Client, sandbox: Sandbox, folders: dict[str, Path]
) -> None:
    asset = sandbox.add_asset(png_bytes(300, 300, (1, 2, 3)), "a.png")
    sandbox.faults.truncate_downloads = 1
    result = await download(client, assetIds=[asset])
    assert Path(result["files"][0]["path"]).stat().st_size == len(sandbox.assets[asset].data)

    sandbox.faults.truncate_downloads = 2  # cut twice: the call fails, and nothing is left behind
    failed = await client.call_tool("download_assets", {"assetIds": [asset], "outputDir": "second"})
    assert failed.is_error
    assert "cut short" in failed.content[0].text  # type: ignore[union-attr]
    assert not (folders["output"] / "second").exists() or files_in(folders["output"] / "second") == []


@pytest.mark.parametrize(
    "arguments",
    [{}, {"assetIds": ["asset_a"], "jobId": "job_b"}, {"assetIds": []}, {"assetIds": ["not-an-asset"]}],
)
async def test_asks_for_exactly_one_of_asset_ids_or_job_id(
    client: Client, api: RecordingTransport, arguments: dict[str, Any]
) -> None:
    result = await client.call_tool("download_assets", arguments)
    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert "assetIds" in text
    assert api.requests == []


async def test_a_running_job_has_nothing_to_download_yet(client: Client, sandbox: Sandbox) -> None:
    sandbox.job_seconds = 60
    submitted = await client.call_tool(
        "upscale_v3", {"image": sandbox.add_asset(png_bytes(), "a.png"), "wait": 0}
    )
    assert submitted.structured_content is not None
    result = await client.call_tool("download_assets", {"jobId": submitted.structured_content["jobId"]})
    assert result.is_error
    assert "wait_for_jobs" in result.content[0].text  # type: ignore[union-attr]


async def test_a_large_result_stays_under_the_hosts_1_mb_limit(
    client: Client, folders: dict[str, Path]
) -> None:
    source = folders["images"] / "noise.png"
    source.write_bytes(noise_png((1024, 1024)))
    result = await client.call_tool("upscale_v3", {"image": str(source), "upscaleFactor": 4, "wait": 60})

    assert not result.is_error, result.content
    assert result.structured_content is not None
    [output] = result.structured_content["outputs"]
    assert (output["width"], output["height"]) == (4096, 4096) and output["bytes"] > 1_000_000
    wire = result.model_dump_json(by_alias=True, exclude_none=True)
    assert len(wire.encode()) < 1_000_000, len(wire)
    [preview] = [block for block in result.content if block.type == "image"]
    assert len(preview.data) <= 750_000  # base64 of the preview


async def test_the_text_names_every_saved_file_with_the_right_plural(
    client: Client, sandbox: Sandbox
) -> None:
    one, two = (sandbox.add_asset(png_bytes(20, 10), f"{name}.png") for name in "ab")

    single = await client.call_tool("download_assets", {"assetIds": [one], "preview": False})
    double = await client.call_tool("download_assets", {"assetIds": [one, two], "preview": False})

    assert single.content[0].text.startswith("Saved 1 file: ")  # type: ignore[union-attr]
    assert double.content[0].text.startswith("Saved 2 files: ")  # type: ignore[union-attr]
