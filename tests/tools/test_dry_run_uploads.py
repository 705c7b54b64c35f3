"""A dry run says when pricing it uploaded an image (an asset left in the user's project), through the client."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client
from mcp.types import CallToolResult, TextContent

from scenario_upscale_mcp.sandbox.app import Sandbox
from tests.conftest import RecordingTransport
from tests.images import png_bytes

pytestmark = pytest.mark.anyio


def answer_text(result: CallToolResult) -> str:
    assert not result.is_error, result.content
    text = result.content[0]
    assert isinstance(text, TextContent)
    return text.text


async def test_a_dry_run_that_uploads_says_so_with_the_asset_id_and_one_that_does_not_says_nothing_of_it(
    client: Client, api: RecordingTransport, sandbox: Sandbox, sample_image: Path
) -> None:
    first = await client.call_tool("upscale_v3", {"image": str(sample_image), "dryRun": True})
    [asset_id] = sandbox.assets
    text = answer_text(first)
    assert "would cost" in text and "Nothing was submitted or billed" in text
    assert f"the image was uploaded to your Scenario project as asset {asset_id}" in text

    # The same content again: its earlier upload is reused, nothing new is uploaded, nothing said of it.
    again = answer_text(await client.call_tool("upscale_v3", {"image": str(sample_image), "dryRun": True}))
    # An asset id given: nothing to upload.
    given = answer_text(await client.call_tool("upscale_texture", {"image": asset_id, "dryRun": True}))

    for text in (again, given):
        assert "Nothing was submitted or billed." in text
        assert "uploaded" not in text and asset_id not in text
    assert api.paths("POST").count("/v1/assets") == 1
    assert list(sandbox.assets) == [asset_id] and sandbox.jobs == {}


async def test_a_dry_run_names_every_image_it_uploaded_once(
    client: Client, sandbox: Sandbox, sample_image: Path, folders: dict[str, Path]
) -> None:
    style = folders["images"] / "style.png"
    style.write_bytes(png_bytes(32, 32, (10, 200, 90)))
    arguments = {
        "image": str(sample_image),
        "styleImages": [str(style), str(sample_image)],  # the image again: uploaded once
        "dryRun": True,
    }

    text = answer_text(await client.call_tool("upscale_v3", arguments))

    assert len(sandbox.assets) == 2 and sandbox.jobs == {}
    assert "2 images were uploaded to your Scenario project as assets" in text
    assert all(text.count(asset_id) == 1 for asset_id in sandbox.assets)
