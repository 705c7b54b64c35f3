"""An id the API does not know is named with the argument that holds it, in every tool."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client
from mcp.types import TextContent

from scenario_upscale_mcp.sandbox.app import Sandbox
from tests.images import png_bytes

pytestmark = pytest.mark.anyio

MISSING = "asset_nobody_knows"


async def error_text(client: Client, tool: str, arguments: dict[str, Any]) -> str:
    result = await client.call_tool(tool, arguments)
    assert result.is_error, result.content
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


async def test_a_missing_image_asset_names_image(client: Client) -> None:
    text = await error_text(client, "upscale_v3", {"image": MISSING, "wait": 0})
    assert f"image: {MISSING} was not found in your Scenario project" in text, text


async def test_a_missing_style_image_names_its_index(client: Client, sandbox: Sandbox) -> None:
    known = sandbox.add_asset(png_bytes(40, 30), "tile.png")
    arguments = {"image": known, "styleImages": [known, MISSING], "wait": 0}
    text = await error_text(client, "upscale_v3", arguments)
    assert f"styleImages[1]: {MISSING} was not found in your Scenario project" in text, text


async def test_a_missing_image_prompt_names_its_index_even_in_a_dry_run(
    client: Client, sandbox: Sandbox
) -> None:
    known = sandbox.add_asset(png_bytes(40, 30), "tile.png")
    arguments = {"image": known, "imagePrompt": [MISSING], "dryRun": True}
    text = await error_text(client, "upscale_texture", arguments)
    assert f"imagePrompt[0]: {MISSING} was not found" in text, text


@pytest.mark.parametrize("tool", ["get_job", "cancel_job", "download_assets"])
async def test_an_unknown_job_id_names_job_id(client: Client, tool: str) -> None:
    text = await error_text(client, tool, {"jobId": "job_nobody_knows"})
    assert "jobId: job_nobody_knows was not found in your Scenario project" in text, text
    assert "list_jobs" in text


async def test_an_unknown_asset_to_download_names_its_index(client: Client, sandbox: Sandbox) -> None:
    known = sandbox.add_asset(png_bytes(40, 30), "tile.png")
    text = await error_text(client, "download_assets", {"assetIds": [known, MISSING]})
    assert f"assetIds[1]: {MISSING} was not found in your Scenario project" in text, text
