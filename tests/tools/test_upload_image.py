"""upload_image through the MCP client: local files, multipart uploads, data: URIs and https URLs."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client
from PIL import Image

from scenario_upscale_mcp.sandbox.app import Sandbox
from tests.conftest import RecordingTransport
from tests.images import png_bytes, write_noise_png
from tests.servers import structured

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024


async def upload(client: Client, image: str) -> dict[str, Any]:
    return structured(await client.call_tool("upload_image", {"image": image}))


async def test_a_small_file_is_uploaded_once(
    client: Client, api: RecordingTransport, sandbox: Sandbox, sample_image: Path
) -> None:
    first = await upload(client, str(sample_image))
    second = await upload(client, sample_image.as_uri())

    assert first["assetId"] in sandbox.assets
    assert (first["width"], first["height"], first["bytes"]) == (64, 48, sample_image.stat().st_size)
    assert first["reused"] is False
    assert second["assetId"] == first["assetId"] and second["reused"] is True
    assert api.paths("POST").count("/v1/assets") == 1
    assert not any(path.startswith("/v1/uploads") for path in api.paths())


@pytest.mark.parametrize(("megabytes", "parts"), [(7, 2), (60, 12)])
async def test_a_large_file_goes_up_in_parts_of_at_least_5_mib(
    client: Client,
    api: RecordingTransport,
    sandbox: Sandbox,
    folders: dict[str, Path],
    megabytes: int,
    parts: int,
) -> None:
    path = write_noise_png(folders["images"] / f"big{megabytes}.png", megabytes)
    size = path.stat().st_size
    uploaded = await upload(client, str(path))

    [record] = sandbox.uploads.values()
    assert record.parts_received == parts
    puts = [r for r in api.requests if r.method == "PUT"]
    assert len(puts) == parts
    sizes = sorted((int(r.headers["content-length"]) for r in puts), reverse=True)
    assert all(part >= 5 * MiB for part in sizes[:-1]) and sum(sizes) == size
    for request in puts:
        assert "authorization" not in request.headers
        assert not any(name.startswith("x-amz-checksum") for name in request.headers)
    asset = sandbox.assets[uploaded["assetId"]]
    assert uploaded["bytes"] == size and asset.data[:8] == b"\x89PNG\r\n\x1a\n"
    assert api.paths("POST").count("/v1/assets") == 0  # never the whole file as base64


async def test_a_failed_part_is_sent_again(
    client: Client, api: RecordingTransport, sandbox: Sandbox, folders: dict[str, Path]
) -> None:
    path = write_noise_png(folders["images"] / "big.png", 7)
    inner = api.inner
    failed: list[str] = []

    class FlakyStorage(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "PUT" and not failed:
                failed.append(str(request.url))
                return httpx.Response(503, text="SlowDown")
            return await inner.handle_async_request(request)

    api.inner = FlakyStorage()
    uploaded = await upload(client, str(path))

    assert failed
    assert uploaded["assetId"] in sandbox.assets
    assert [str(r.url) for r in api.requests if r.method == "PUT"].count(failed[0]) == 2


async def test_a_data_uri_is_uploaded(client: Client, sandbox: Sandbox) -> None:
    data = base64.b64encode(png_bytes(30, 20)).decode()
    uploaded = await upload(client, f"data:image/png;base64,{data}")
    assert (uploaded["width"], uploaded["height"]) == (30, 20)
    assert uploaded["assetId"] in sandbox.assets


async def test_an_https_image_on_a_public_host_is_fetched_and_uploaded(
    client: Client, api: RecordingTransport, sandbox: Sandbox, dns: dict[str, list[str]]
) -> None:
    dns["images.example.com"] = ["93.184.215.14"]
    api.web["images.example.com"] = lambda request: httpx.Response(
        200, content=png_bytes(33, 22), headers={"content-type": "image/png"}
    )
    uploaded = await upload(client, "https://images.example.com/art/knight.png")

    assert (uploaded["width"], uploaded["height"]) == (33, 22)
    with Image.open(io.BytesIO(sandbox.assets[uploaded["assetId"]].data)) as image:
        assert image.size == (33, 22)


async def test_a_refused_part_fails_with_a_clear_message(
    client: Client, api: RecordingTransport, folders: dict[str, Path]
) -> None:
    path = write_noise_png(folders["images"] / "big.png", 7)
    inner = api.inner

    class RefusingStorage(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "PUT":
                return httpx.Response(403, text="<Error><Code>AccessDenied</Code></Error>")
            return await inner.handle_async_request(request)

    api.inner = RefusingStorage()
    result = await client.call_tool("upload_image", {"image": str(path)})
    assert result.is_error
    assert "Uploading a part of the image was refused (HTTP 403)" in result.content[0].text  # type: ignore[union-attr]


async def test_a_small_image_is_uploaded_inline_as_a_data_url(
    client: Client, sandbox: Sandbox, sample_image: Path
) -> None:
    result = await client.call_tool("upload_image", {"image": str(sample_image)})
    assert not result.is_error
    assert sandbox.asset_image_forms == ["data_url"]


async def test_an_upscale_of_an_uploaded_asset_is_named_after_the_file_it_came_from(
    client: Client, sample_image: Path
) -> None:
    asset_id = (await upload(client, str(sample_image)))["assetId"]
    result = await client.call_tool("upscale_v3", {"image": asset_id, "wait": 30})

    assert not result.is_error, result.content
    [output] = (result.structured_content or {})["outputs"]
    assert Path(output["path"]).name.startswith("castle_upscale-v3_x2_")
