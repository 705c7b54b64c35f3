"""Wiring: build the MCP server, own the API client for the server's lifetime, register the tools."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any

from mcp.server import CacheHint
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from mcp.types import ToolAnnotations
from pydantic import (
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from scenario_upscale_mcp import __version__
from scenario_upscale_mcp.api.errors import ScenarioError
from scenario_upscale_mcp.state import AppState
from scenario_upscale_tools.inventory import SCHEMAS, TOOL_NAMES, load_tool

if TYPE_CHECKING:
    import httpx

    from scenario_upscale_mcp.config import Settings
    from scenario_upscale_mcp.urls import Resolver
    from scenario_upscale_tools.common import ToolSpec

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
) -> MCPServer[AppState]:
    """The server. Tests pass `transport` (an httpx mock or the sandbox's ASGI app) to avoid the network,
    and `resolver` to decide what host names resolve to.

    Settings and the HTTP client are made on first use (see `state.AppState`), so listing the tools
    stays as fast as a bare server's.
    """

    @asynccontextmanager
    async def lifespan(_server: MCPServer[AppState]) -> AsyncIterator[AppState]:
        state = AppState(settings, transport, resolver)
        try:
            yield state
        finally:
            await state.aclose()

    server: MCPServer[AppState] = MCPServer(
        "scenario-upscale-mcp",
        title="Scenario Upscale",
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        tools=[deferred_tool(name) for name in TOOL_NAMES],
        cache_hints={"tools/list": CacheHint(ttl_ms=60_000, scope="public")},
    )
    server.resource(JOB_URI, name="job", title="Upscale job", mime_type="application/json")(job_resource)
    return server


JOB_URI = "scenario://jobs/{jobId}"


async def job_resource(jobId: str, ctx: Context[AppState, Any]) -> str:
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
    # `fn` and `fn_metadata` are never read: `DeferredTool.run` builds the real tool first.
    return DeferredTool.model_construct(
        fn=None,  # type: ignore[arg-type]
        name=name,
        title=stored["title"],
        description=stored["description"],
        parameters=stored["inputSchema"],
        fn_metadata=None,  # type: ignore[arg-type]
        is_async=True,
        context_kwarg=None,
        resolved_params={},
        resolver_plans={},
        annotations=ToolAnnotations.model_validate(stored["annotations"]),
        icons=None,
        meta=None,
        stored_output_schema=stored["outputSchema"],
    )


class DeferredTool(Tool):
    """A tool listed from its stored schema; `run` builds the real tool once, then hands every call to it."""

    stored_output_schema: dict[str, Any] | None = Field(default=None, exclude=True)
    _built: Tool | None = PrivateAttr(default=None)

    @cached_property
    def output_schema(self) -> dict[str, Any] | None:
        return self.stored_output_schema

    async def run(self, arguments: dict[str, Any], context: Any, convert_result: bool = False) -> Any:
        if self._built is None:
            self._built = build_tool(load_tool(self.name))
        return await self._built.run(arguments, context, convert_result)


def build_tool(spec: ToolSpec) -> Tool:
    """A registered tool: unknown arguments refused, API-layer errors turned into tool errors."""
    tool = Tool.from_function(spec.fn, name=spec.name, title=spec.title, annotations=spec.annotations)
    tool.fn_metadata.arg_model = _forbid_unknown_arguments(tool.fn_metadata.arg_model)
    # The strict model's schema is the generated one plus this key; not generating it twice keeps
    # start-up fast (schema generation is most of the cost of listing tools).
    tool.parameters = {**tool.parameters, "additionalProperties": False}
    tool.fn = _errors_as_tool_errors(spec.fn)
    return tool


def _forbid_unknown_arguments(arg_model: type[ArgModelBase]) -> type[ArgModelBase]:
    """The SDK ignores unknown arguments; a typo like `upscale_factor` must fail loudly instead.

    Every argument error is also restated without pydantic's documentation link, and an unknown
    argument's error lists the allowed ones, so the assistant can correct its call in one go.
    """
    allowed = ", ".join(arg_model.model_fields)

    class StrictArguments(arg_model):  # type: ignore[misc,valid-type]
        model_config = ConfigDict(extra="forbid", title=arg_model.__name__)

        @model_validator(mode="wrap")
        @classmethod
        def _explain_errors(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
            try:
                return handler(data)
            except ValidationError as exc:
                details: list[InitErrorDetails] = []
                for error in exc.errors():
                    message = error["msg"]
                    if error["type"] == "extra_forbidden":
                        message = f"unknown argument; the allowed arguments are: {allowed}"
                    details.append(
                        InitErrorDetails(
                            type=PydanticCustomError(
                                error["type"], message.replace("{", "(").replace("}", ")")
                            ),
                            loc=error["loc"],
                            input=error["input"],
                        )
                    )
                raise ValidationError.from_exception_data(exc.title, details) from None

    return StrictArguments


def _errors_as_tool_errors(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """The one place API-layer errors become MCP tool errors (the assistant reads their text)."""

    @functools.wraps(fn)
    async def call(**kwargs: Any) -> Any:
        try:
            return await fn(**kwargs)
        except ScenarioError as exc:
            raise ToolError(str(exc)) from exc

    return call
