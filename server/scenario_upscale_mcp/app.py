"""Wiring: build the MCP server, hold the service (`service.Upscaler`) for its lifetime, register the tools."""

from __future__ import annotations

import functools
import inspect
import json
import logging
import math
import re
import threading
import types
import typing
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from mcp.server import CacheHint
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp.types import ToolAnnotations
from pydantic import ConfigDict, ModelWrapValidatorHandler, PrivateAttr, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from scenario_upscale_mcp import __version__
from scenario_upscale_mcp.api.errors import ScenarioError
from scenario_upscale_mcp.service import Upscaler
from scenario_upscale_mcp.viewer.resource import viewer_apps
from scenario_upscale_tools.inventory import SCHEMAS, TOOL_NAMES, load_tool, prose

if TYPE_CHECKING:
    import httpx

    from scenario_upscale_mcp.clock import Clock
    from scenario_upscale_mcp.config import Settings
    from scenario_upscale_mcp.images.public_hosts import Resolver
    from scenario_upscale_tools.inventory import ToolSpec

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


def build_tool(spec: ToolSpec) -> Tool:
    """A registered tool: unknown arguments refused, API-layer errors turned into tool errors, and a
    `Given` parameter (see `scenario_upscale_tools.arguments.Given`) filled with the arguments the caller
    set. The description is the handler's docstring as prose (`inventory.prose`).
    """
    given = _given_parameter(spec.fn)
    listed = spec.fn if given is None else _without_parameter(spec.fn, given)
    tool = Tool.from_function(
        listed,
        name=spec.name,
        title=spec.title,
        description=spec.description,
        annotations=spec.annotations,
        meta=spec.meta,
    )
    tool.fn_metadata.arg_model = _strict_arguments(tool.fn_metadata.arg_model, given)
    # The strict model's schema is the generated one, lean, plus this key; not generating it twice keeps
    # start-up fast (schema generation is most of the cost of listing tools).
    tool.parameters = {**lean_schema(tool.parameters), "additionalProperties": False}
    tool.fn = _errors_as_tool_errors(spec.fn)
    return tool


# Keywords whose value maps names (of properties, of definitions) to schemas, not a keyword to a value.
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})


def lean_schema(schema: Any) -> Any:
    """An input schema without pydantic's `title`s ("Upscalefactor" next to `upscaleFactor`, "upscale_v3
    Arguments"): they tell an assistant nothing and cost every conversation tokens. Only the `title`
    keyword goes; a property named `title` stays, and every bound, enum, default and description.
    """
    if isinstance(schema, list):
        return [lean_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    return {
        key: {name: lean_schema(sub) for name, sub in value.items()}
        if key in _SCHEMA_MAPS and isinstance(value, dict)
        else lean_schema(value)
        for key, value in schema.items()
        if key != "title"
    }


def _given_parameter(fn: Callable[..., Any]) -> str | None:
    """The name of `fn`'s `Given` parameter, if it has one."""
    from scenario_upscale_tools.arguments import GIVEN  # the tool's module has imported it already

    hints = typing.get_type_hints(fn, include_extras=True)
    names = [
        name for name, hint in hints.items() if any(m is GIVEN for m in getattr(hint, "__metadata__", ()))
    ]
    if len(names) > 1:
        raise TypeError(f"{fn.__name__} declares more than one Given parameter: {names}")
    return names[0] if names else None


def _without_parameter(fn: Callable[..., Any], hidden: str) -> Callable[..., Any]:
    """`fn` as the SDK should read it to build the argument model and the schema: without `hidden`.

    Only read, never called: the registered tool calls `fn` itself, `hidden` included.
    """
    signature = inspect.signature(fn, eval_str=True)

    @functools.wraps(fn)
    async def listed(**kwargs: Any) -> Any:
        return await fn(**kwargs)

    listed.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[p for p in signature.parameters.values() if p.name != hidden]
    )
    return listed


_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_NUMBER_TEXT_LIMIT = 40  # characters: longer text is not read as a number (so it is refused)


def _number_from_text(value: Any) -> Any:
    """Text that is exactly a JSON number, as that number ("4" -> 4, "0.25" -> 0.25); all else as is.

    JSON's own spelling only: no spaces, no "+", "_", hex, "NaN" or "Infinity". The number is then
    checked like any other (finite, within bounds); "1e999" is infinite, so it is refused.
    """
    if isinstance(value, str) and len(value) <= _NUMBER_TEXT_LIMIT and _JSON_NUMBER.fullmatch(value):
        return int(value) if value.lstrip("-").isdigit() else float(value)
    return value


def _integer_from_number(value: Any) -> Any:
    """Also 28.0 -> 28: JSON Schema's "integer" is any number without a fractional part."""
    value = _number_from_text(value)
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _number_reader(annotation: Any) -> Callable[[Any], Any] | None:
    """How an argument of this type reads a number sent as text: for `float`, `int`, either `| None`,
    and lists of them. None for an argument that holds no numbers (a `bool` is not an `int` here)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _number_reader(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        readers = [_number_reader(arm) for arm in typing.get_args(annotation) if arm is not type(None)]
        return readers[0] if len(readers) == 1 else None
    if origin is list:
        item = _number_reader(typing.get_args(annotation)[0])
        if item is None:
            return None
        return lambda value: [item(entry) for entry in value] if isinstance(value, list) else value
    if annotation is float:
        return _number_from_text
    if annotation is int:
        return _integer_from_number
    return None


# Pydantic's text for a wrong type, restated with what would have been accepted.
_TYPE_MESSAGES = {
    "bool_type": "Input should be a valid boolean: true or false (not text, not a number)",
    "float_type": 'Input should be a valid number: a JSON number, or text that is exactly one (like "2.5")',
    "int_type": 'Input should be a valid integer: a whole JSON number, or text that is exactly one (like "28")',
    "finite_number": "Input should be a finite number: NaN and Infinity are refused",
}


def _strict_arguments(arg_model: type[ArgModelBase], given: str | None) -> type[ArgModelBase]:
    """The argument model as registered.

    The SDK ignores unknown arguments; a typo like `upscale_factor` must fail loudly instead. Every
    argument error is also restated without pydantic's documentation link, and an unknown argument's
    error lists the allowed ones, so the assistant can correct its call in one go.

    Types are strict and numbers finite, for every tool: pydantic's lax mode would turn `true` into
    1.0, `"false"` into False and `1` into True, and lets NaN and Infinity through wherever no bound
    stops them (`lorasScale` has none; Infinity passes a lower bound alone). The
    one conversion: a number argument (or list item) sent as text that is exactly a JSON number is
    read as that number, since some hosts quote numbers; an integer argument also takes 28.0.

    With `given`, the arguments handed to the tool also carry, under that name, the names of the
    arguments the caller set (`model_fields_set`): a value equal to its default counts as set.
    """
    allowed = ", ".join(arg_model.model_fields)
    readers = {
        field.alias or name: reader
        for name, field in arg_model.model_fields.items()
        if (reader := _number_reader(field.annotation)) is not None
    }

    class StrictArguments(arg_model):  # type: ignore[misc,valid-type]
        model_config = ConfigDict(extra="forbid", title=arg_model.__name__, strict=True, allow_inf_nan=False)

        @model_validator(mode="wrap")
        @classmethod
        def _explain_errors(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
            if isinstance(data, dict):
                data = {key: readers[key](value) if key in readers else value for key, value in data.items()}
            try:
                return handler(data)
            except ValidationError as exc:
                details: list[InitErrorDetails] = []
                for error in exc.errors():
                    message = _TYPE_MESSAGES.get(error["type"], error["msg"])
                    if isinstance(error["input"], float) and not math.isfinite(error["input"]):
                        message = _TYPE_MESSAGES["finite_number"]  # also where an integer was wanted
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

        @classmethod
        def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
            """The schema as listed: lean (`lean_schema`)."""
            lean: dict[str, Any] = lean_schema(super().model_json_schema(*args, **kwargs))
            return lean

        def model_dump_one_level(self) -> dict[str, Any]:
            arguments: dict[str, Any] = super().model_dump_one_level()
            if given is not None:
                fields = type(self).model_fields
                arguments[given] = frozenset(fields[name].alias or name for name in self.model_fields_set)
            return arguments

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
