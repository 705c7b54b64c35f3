"""The viewer as hosts get it: one HTML page served as a `ui://` resource through the SDK's MCP Apps
extension (`mcp.server.apps.Apps`), and the `_meta` that binds a tool to it.

Hosts that render MCP Apps open the page beside the answer of a tool bound to it; hosts that do not
ignore the key, and every tool answers exactly as it would without it. The page is read from the
package when a host asks for it, never at start-up.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import anyio
from mcp.server.apps import APP_MIME_TYPE, Apps, ResourceCsp
from mcp.server.mcpserver.resources import Resource

VIEWER_URI = "ui://scenario-upscale/viewer.html"
PAGE = "viewer.html"  # beside this module, package data

# MCP Apps' first drafts bound a tool by this flat key; the official ext-apps helper (`registerAppTool`)
# still writes it beside `ui.resourceUri` for hosts that read only it, and so does this server.
LEGACY_RESOURCE_URI_KEY = "ui/resourceUri"


def viewer_meta(*, app_only: bool = False) -> dict[str, Any]:
    """A tool's `_meta` binding it to the viewer: the shape `Apps.tool` stamps, plus the legacy key.

    `app_only`: the tool serves the viewer alone (`visibility: ["app"]`), so hosts hide it from the model.
    """
    ui: dict[str, Any] = {"resourceUri": VIEWER_URI}
    if app_only:
        ui["visibility"] = ["app"]
    return {"ui": ui, LEGACY_RESOURCE_URI_KEY: VIEWER_URI}


# The page loads nothing from the network (its images come as data: URLs in tool results, through the
# host): no domain of any kind is allowed.
CSP = ResourceCsp(connect_domains=[], resource_domains=[], frame_domains=[], base_uri_domains=[])


class ViewerPage(Resource):
    """The viewer's HTML, read from the package each time a host reads the resource (hosts cache it)."""

    async def read(self) -> str:
        return await anyio.to_thread.run_sync(read_page)


def read_page() -> str:
    return resources.files(__package__).joinpath(PAGE).read_text(encoding="utf-8")


def viewer_apps() -> Apps:
    """The MCP Apps extension with the viewer page registered; `MCPServer(extensions=[...])` takes it.

    The tools bound to the page are this server's own (listed from their committed schemas, their
    `_meta` included: `viewer_meta`), so the extension contributes the resource and the capability only.
    """
    apps = Apps()
    apps.add_resource(
        ViewerPage(
            uri=VIEWER_URI,
            name="viewer",
            title="Upscale viewer",
            description="Before/after viewer of upscale results, with a 1:1 loupe and a tiled preview.",
            mime_type=APP_MIME_TYPE,
            meta={"ui": {"csp": CSP.model_dump(by_alias=True, exclude_none=True)}},
        )
    )
    return apps
