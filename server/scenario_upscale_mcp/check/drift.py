"""The drift comparison: a model's live input schema against the tool's committed schema. Pure: no I/O
beyond reading the committed schema, so it is tested on hand-made schemas.

`compare_inputs` lists every bound, default, allowed value or item count that differs, and the inputs
only one side has; each `Difference` reads as one line of the check's report.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

# The model tools' own options (see DESIGN.md, "Options shared by the two model tools"): they steer
# the server and are never sent to the API, so the API's schema does not list them.

# Inputs whose API type JSON Schema cannot express: the tools take image references and LoRA ids as
# plain strings, but the API types them by what they point at.
_SEMANTIC_TYPES = {
    "image": "file",
    "styleImages": "file_array",
    "imagePrompt": "file_array",
    "loras": "model_array",
}
# The docs' prose spellings (`assetId`, `assetId[]`, `model[]`; SCENARIO_API.md §1), read as the JSON
# API's types should an answer ever use them, rather than reported as a change of type.
_PROSE_TYPES = {
    "assetId": "file",
    "assetId[]": "file_array",
    "model[]": "model_array",
    "number[]": "number_array",
    "string[]": "string_array",
}


Aspect = Literal[
    "input", "type", "required", "min", "max", "default", "allowed value", "max items", "max length"
]


@dataclass(frozen=True)
class Difference:
    """One way a model's live input schema differs from the tool's.

    `api` and `tool` are each side's value, None when that side does not set it. For `input` (an input
    only one side has) they hold the input's type on the side that has it; for `allowed value`, the
    value on the side that allows it.
    """

    input: str
    aspect: Aspect
    api: Any = None
    tool: Any = None

    def __str__(self) -> str:
        if self.aspect == "input":
            if self.tool is None:
                return f"{self.input}: the API has this input ({self.api}); the tool lacks it"
            return f"{self.input}: the tool has this input; the API no longer lists it"
        if self.aspect == "allowed value":
            if self.tool is None:
                return f"{self.input}: the API allows {_shown(self.api)}; the tool does not"
            return f"{self.input}: the tool allows {_shown(self.tool)}; the API does not"
        if self.aspect == "required":
            return (
                f"{self.input}: {'required' if self.api else 'optional'} in the API, "
                f"{'required' if self.tool else 'optional'} in the tool"
            )
        return (
            f"{self.input}: {self.aspect} is {_shown(self.api)} in the API, {_shown(self.tool)} in the tool"
        )


def compare_inputs(live_inputs: Sequence[Any], tool_schema: Mapping[str, Any]) -> list[Difference]:
    """Every difference between a model's live inputs (`model.inputs` of `GET /models/{modelId}`) and a
    tool's `inputSchema`, the tool-only options left out. Missing keys on either side mean "not set"."""
    live = {
        entry["name"]: entry
        for entry in live_inputs
        if isinstance(entry, Mapping) and isinstance(entry.get("name"), str)
    }
    properties: Mapping[str, Any] = tool_schema.get("properties") or {}
    from scenario_upscale_tools.arguments import CALL_OPTIONS

    ours = {name: prop for name, prop in properties.items() if name not in CALL_OPTIONS}
    required = set(tool_schema.get("required") or ())

    differences: list[Difference] = []
    for name, entry in live.items():
        if name in ours:
            differences += _compare_input(name, entry, ours[name], tool_required=name in required)
        else:
            differences.append(Difference(name, "input", api=_api_type(entry)))
    differences += [
        Difference(name, "input", tool=_tool_type(name, _unwrapped(prop)))
        for name, prop in ours.items()
        if name not in live
    ]
    return differences


def _compare_input(
    name: str, entry: Mapping[str, Any], prop: Mapping[str, Any], *, tool_required: bool
) -> list[Difference]:
    schema = _unwrapped(prop)
    api_type = _api_type(entry)
    tool_type = _tool_type(name, schema)
    is_array = api_type.endswith("_array") or tool_type.endswith("_array")
    # For a list of numbers, bounds and allowed values belong to its items.
    items = schema.get("items")
    element = items if is_array and isinstance(items, Mapping) else schema

    differences: list[Difference] = []

    def compare(aspect: Aspect, api: Any, tool: Any) -> None:
        if not _same(api, tool):
            differences.append(Difference(name, aspect, api=api, tool=tool))

    compare("type", api_type, tool_type)
    compare("required", _always_required(entry.get("required")), tool_required)
    compare("min", entry.get("min"), element.get("minimum"))
    compare("max", entry.get("max"), element.get("maximum"))
    # The default sits beside `anyOf` for a nullable input, so it is read from the unwrapped schema too.
    compare("default", entry.get("default"), schema.get("default"))
    if is_array:
        compare("max items", entry.get("maxLength"), schema.get("maxItems"))
    elif api_type == "string":  # for `file` the API's length is not the reference's (an asset id's)
        compare("max length", entry.get("maxLength"), schema.get("maxLength"))

    api_values = _as_list(entry.get("allowedValues"))
    tool_values = _as_list(element.get("enum"))
    differences += [
        Difference(name, "allowed value", api=value)
        for value in api_values
        if not any(_same(value, ours) for ours in tool_values)
    ]
    differences += [
        Difference(name, "allowed value", tool=value)
        for value in tool_values
        if not any(_same(value, theirs) for theirs in api_values)
    ]
    return differences


def _unwrapped(prop: Mapping[str, Any]) -> dict[str, Any]:
    """A nullable property (`anyOf: [X, {"type": "null"}]`, how pydantic writes `X | None`) as X, keeping
    the outer keys (default, description)."""
    merged = {key: value for key, value in prop.items() if key != "anyOf"}
    branches = [
        branch
        for branch in prop.get("anyOf") or ()
        if isinstance(branch, Mapping) and branch.get("type") != "null"
    ]
    if len(branches) == 1:
        merged = {**branches[0], **merged}
    return merged


def _tool_type(name: str, schema: Mapping[str, Any]) -> str:
    """The API type the tool's schema stands for."""
    if name in _SEMANTIC_TYPES:
        return _SEMANTIC_TYPES[name]
    json_type = schema.get("type")
    if json_type in ("number", "integer"):
        return "number"
    if json_type in ("string", "boolean"):
        return str(json_type)
    if json_type == "array":
        items = schema.get("items")
        element = _tool_type("", items) if isinstance(items, Mapping) else "unknown"
        return f"{element}_array"
    return str(json_type) if json_type else "unknown"


def _api_type(entry: Mapping[str, Any]) -> str:
    value = entry.get("type")
    if not isinstance(value, str):
        return "unknown"
    return _PROSE_TYPES.get(value, value)


def _always_required(rule: Any) -> bool:
    """`required` is a rule object (`{"always": true}`, or conditional: `ifDefined`, ...); only `always`
    makes an input required outright. A bare boolean is read as the same thing."""
    if isinstance(rule, Mapping):
        return rule.get("always") is True
    return rule is True


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _same(api: Any, tool: Any) -> bool:
    """JSON equality: 2 equals 2.0, but true never equals 1 (Python's `True == 1` would hide that)."""
    if isinstance(api, bool) or isinstance(tool, bool):
        return type(api) is type(tool) and api == tool
    if isinstance(api, list) and isinstance(tool, list):
        return len(api) == len(tool) and all(_same(a, b) for a, b in zip(api, tool, strict=True))
    return bool(api == tool)


def _shown(value: Any) -> str:
    return "not set" if value is None else json.dumps(_plain(value), ensure_ascii=False)


def _plain(value: Any) -> Any:
    """16.0 shown as 16: the SDK reads every bound as a float, and the tools' schemas write 16."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def load_tool_schema(tool: str) -> dict[str, Any]:
    """The tool's committed `inputSchema`: what hosts are shown, so what the check holds the API to."""
    from scenario_upscale_tools.inventory import SCHEMAS

    schema: dict[str, Any] = json.loads((SCHEMAS / f"{tool}.json").read_text(encoding="utf-8"))["inputSchema"]
    return schema
