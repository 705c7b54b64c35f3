"""The viewer as hosts find it (MCP Apps): a `ui://` resource served as `text/html;profile=mcp-app` with a
CSP that allows no outside domain, four tools bound to it by `_meta.ui.resourceUri`, one app-only tool;
and hosts without Apps get exactly the answers they got before."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.extension import advertise
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID, Apps
from mcp.server.mcpserver import MCPServer
from mcp.types import TextResourceContents

from scenario_upscale_mcp.service import Upscaler
from scenario_upscale_mcp.viewer.resource import VIEWER_URI
from scenario_upscale_tools.inventory import APP_ONLY, SHOWN_IN_VIEWER, TOOL_NAMES, for_the_model
from tests.servers import structured

pytestmark = pytest.mark.anyio

NO_DOMAINS: dict[str, list[str]] = {
    "connectDomains": [],
    "resourceDomains": [],
    "frameDomains": [],
    "baseUriDomains": [],
}


async def test_the_viewer_is_listed_as_an_app_resource(client: Client) -> None:
    listed = {resource.uri: resource for resource in (await client.list_resources()).resources}

    viewer = listed[VIEWER_URI]
    assert viewer.mime_type == APP_MIME_TYPE == "text/html;profile=mcp-app"
    assert viewer.meta == {"ui": {"csp": NO_DOMAINS}}


async def test_reading_the_viewer_gives_the_packaged_page_with_its_csp(client: Client) -> None:
    [content] = (await client.read_resource(VIEWER_URI)).contents

    assert isinstance(content, TextResourceContents)
    assert content.mime_type == APP_MIME_TYPE
    assert content.meta == {"ui": {"csp": NO_DOMAINS}}
    page = resources.files("scenario_upscale_mcp.viewer").joinpath("viewer.html").read_text(encoding="utf-8")
    assert content.text == page and "<html" in page.lower()


async def test_the_server_advertises_the_apps_extension_in_the_2026_era(server: MCPServer[Upscaler]) -> None:
    async with Client(server, mode="auto") as client:
        extensions = client.server_capabilities.extensions
    assert extensions is not None and EXTENSION_ID in extensions


async def test_four_tools_are_bound_to_the_viewer_and_view_region_is_for_the_app_only(client: Client) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}

    assert {"upscale_v3", "upscale_texture", "wait_for_jobs", "download_assets"} == SHOWN_IN_VIEWER
    for name in SHOWN_IN_VIEWER:
        assert tools[name].meta == {"ui": {"resourceUri": VIEWER_URI}, "ui/resourceUri": VIEWER_URI}, name
        assert for_the_model(tools[name].meta)
    assert tools["view_region"].meta == {
        "ui": {"resourceUri": VIEWER_URI, "visibility": ["app"]},
        "ui/resourceUri": VIEWER_URI,
    }
    assert {"view_region"} == APP_ONLY and not for_the_model(tools["view_region"].meta)
    for name in set(TOOL_NAMES) - SHOWN_IN_VIEWER - APP_ONLY:
        assert tools[name].meta is None, name


def test_the_binding_is_the_shape_the_sdks_apps_extension_stamps() -> None:
    apps = Apps()
    apps.add_html_resource(VIEWER_URI, "<html></html>")

    @apps.tool(resource_uri=VIEWER_URI)
    def shown() -> str:
        return ""

    @apps.tool(resource_uri=VIEWER_URI, visibility=["app"])
    def app_only() -> str:
        return ""

    stamped = [binding.meta for binding in apps.tools()]
    ours = [_listed_meta(name)["ui"] for name in ("upscale_v3", "view_region")]
    assert [meta["ui"] for meta in stamped if meta] == ours


def _listed_meta(name: str) -> dict[str, Any]:
    from scenario_upscale_tools.inventory import tool_meta

    meta = tool_meta(name)
    assert meta is not None
    return meta


async def test_a_host_with_apps_gets_the_same_answers_as_one_without(
    server: MCPServer[Upscaler], mode: str, sample_image: Path
) -> None:
    """Nothing in an answer depends on the host rendering the viewer."""
    apps_host = [advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})]
    async with Client(server, mode=mode) as plain:
        done = structured(
            await plain.call_tool("upscale_v3", {"image": str(sample_image), "wait": 20})
        )  # saved once, so the answers below find the same files
        job = [done["jobId"]]
        without = await plain.call_tool("wait_for_jobs", {"jobIds": job})
    async with Client(server, mode=mode, extensions=apps_host) as rendering:
        with_apps = await rendering.call_tool("wait_for_jobs", {"jobIds": job})

    assert done["status"] == "success"
    assert with_apps.structured_content == without.structured_content
    assert with_apps.content == without.content
