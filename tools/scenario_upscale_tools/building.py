"""Building a registered tool from its `ToolSpec`: strict arguments, the `Given` parameter, lean schemas,
and API-layer errors as tool errors. The server registers every tool through `build_tool`, and
upscale_batch checks its `parameters` with the model tool's own strict arguments, built here.
"""

from __future__ import annotations

import functools
import inspect
import math
import re
import types
import typing
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from pydantic import ConfigDict, ModelWrapValidatorHandler, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from scenario_upscale_mcp.api.errors import ScenarioError

if TYPE_CHECKING:
    from scenario_upscale_tools.inventory import ToolSpec


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
