"""Wiring: build the MCP server, hold the service (`service.Upscaler`) for its lifetime, register the tools."""

from __future__ import annotations

import functools
import gc
import json
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from mcp.server import CacheHint
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp.types import ToolAnnotations
from pydantic import PrivateAttr

from scenario_upscale_mcp import __version__
from scenario_upscale_mcp.service import Upscaler
from scenario_upscale_mcp.viewer.resource import viewer_apps
from scenario_upscale_tools.building import build_tool
from scenario_upscale_tools.inventory import SCHEMAS, TOOL_NAMES, load_tool, prose

if TYPE_CHECKING:
    import httpx

    from scenario_upscale_mcp.clock import Clock
    from scenario_upscale_mcp.config import Settings
    from scenario_upscale_mcp.images.public_hosts import Resolver

logger = logging.getLogger(__name__)

INSTRUCTIONS = """\
Upscales images with Scenario's models. upscale_v3 is general purpose (1-16x, styles, presets);
upscale_texture is for seamless game textures (2-8x, keeps tiling). Pass images as local file paths
or Scenario asset ids. Each upscale is billed in creative units: use dryRun=true to quote the cost
first when the user may care. A job that outlasts `wait` keeps running: wait_for_jobs waits for it
(and for up to 32 jobs at once) and saves the results; get_job checks one; list_jobs shows recent
ones. Repeating an identical request returns the earlier job instead of paying twice.
Results are saved to the output folder; the answer gives their paths.
"""


def create_server(
    settings: Settings | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    resolver: Resolver | None = None,
    clock: Clock | None = None,
) -> MCPServer[Upscaler]:
    """The server. Tests pass `transport` (an httpx mock or the sandbox's ASGI app) to avoid the network,
    `resolver` to decide what host names resolve to, and `clock` to run time without sleeping (the
    service's one clock: polling, waits, back-off, the ledger's timestamps; the real one unless given).

    The lifespan holds the service (`service.Upscaler`), whose settings, HTTP client and ledger are
    made on first use, so listing the tools stays as fast as a bare server's.
    """

    @asynccontextmanager
    async def lifespan(_server: MCPServer[Upscaler]) -> AsyncIterator[Upscaler]:
        upscaler = Upscaler(settings, transport=transport, resolver=resolver, clock=clock)
        try:
            yield upscaler
        finally:
            await upscaler.aclose()

    server: MCPServer[Upscaler] = MCPServer(
        "scenario-upscale-mcp",
        title="Scenario Upscale",
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        tools=[deferred_tool(name) for name in TOOL_NAMES],
        cache_hints={"tools/list": CacheHint(ttl_ms=60_000, scope="public")},
        middleware=[warm_up_after_listing],
        # MCP Apps: the viewer page (ui://scenario-upscale/viewer.html) and the extension's capability. The
        # tools bound to it carry their `_meta` in their committed schemas, listed like the rest.
        extensions=[viewer_apps()],
    )
    server.resource(
        JOB_URI,
        name="job",
        title="Upscale job",
        description=prose(job_resource.__doc__),
        mime_type="application/json",
    )(job_resource)
    return server


async def warm_up_after_listing(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    """Once a host has listed the tools, import the API layer in the background.

    Scenario's SDK takes about half a second to import: paid at start-up it would slow every host's
    launch, paid on the first call it would slow the first upscale. A host lists the tools right
    after connecting and calls one later, so the import fits in between.
    """
    result = await call_next(ctx)
    if ctx.method == "tools/list":
        start_api_warm_up()
    return result


@functools.cache  # once per process
def start_api_warm_up() -> None:
    threading.Thread(target=_import_api_layer, name="warm-up", daemon=True).start()


def _import_api_layer() -> None:
    from scenario_upscale_mcp.api.client import import_sdk

    import_sdk()
    # What start-up made (modules; the SDK's, pydantic's and the protocol's types) lives as long as
    # the process, yet every full collection scanned it all again: under load (50 sessions) that
    # stopped the event loop for 150-210 ms several times a minute, most of the slowest answers. One
    # collection now, then those objects are left out of every later one.
    gc.collect()
    gc.freeze()


JOB_URI = "scenario://jobs/{jobId}"


async def job_resource(jobId: str, ctx: Context[Upscaler, Any]) -> str:
    """A Scenario upscale job as JSON: status, progress, cost, error, hint and outputs (with saved paths).

    Read fresh from the API; when the API cannot be reached, the ledger's last record is returned.
    """
    from scenario_upscale_tools.job_resource import read_job  # imported on first use, like the tools

    return await read_job(jobId, ctx)


def deferred_tool(name: str) -> Tool:
    """The tool as hosts list it, from its committed schema; its code is imported on its first call.

    Importing the tools and generating their argument and output models takes tens of milliseconds,
    most of what this server would add to a bare server's start-up; this way a host that lists the
    tools and calls one pays for that one. tests/test_inventory.py keeps the committed schemas equal
    to what `build_tool` generates, so what is listed is exactly what is validated.
    """
    path = SCHEMAS / f"{name}.json"
    if not path.is_file():
        return build_tool(load_tool(name))
    stored = json.loads(path.read_text())
    # The SDK's own constructor, validated, with only what listing reads: the handler and the argument
    # model are the real tool's, built by `DeferredTool.run`. The output schema is published from
    # hand-built metadata, which `FuncMetadata` supports (published, not validated here); the real
    # tool validates results. tests/test_deferred_tools.py fails loudly if the SDK's `Tool` changes shape.
    return DeferredTool(
        fn=_built_on_first_call,
        name=name,
        title=stored["title"],
        description=stored["description"],
        parameters=stored["inputSchema"],
        fn_metadata=FuncMetadata(arg_model=ArgModelBase, output_schema=stored["outputSchema"]),
        is_async=True,
        annotations=ToolAnnotations.model_validate(stored["annotations"]),
        meta=stored.get("_meta"),
    )


async def _built_on_first_call(**_arguments: Any) -> Any:
    raise RuntimeError("a deferred tool runs the tool built on its first call (DeferredTool.run)")


class DeferredTool(Tool):
    """A tool listed from its stored schema; `run` builds the real tool once, then hands every call to it."""

    _built: Tool | None = PrivateAttr(default=None)

    async def run(self, arguments: dict[str, Any], context: Any, convert_result: bool = False) -> Any:
        if self._built is None:
            self._built = build_tool(load_tool(self.name))
        return await self._built.run(arguments, context, convert_result)
