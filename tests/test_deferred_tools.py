"""The tools are listed from their committed schemas without building them (`app.deferred_tool`), through
the SDK's own `Tool` constructor. That leans on the SDK's `Tool` and `FuncMetadata` keeping their
shape: these tests fail loudly, saying what to review, the day an mcp release changes it."""

from __future__ import annotations

import inspect
import json

import pytest
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import FuncMetadata

from scenario_upscale_mcp.app import DeferredTool, deferred_tool
from scenario_upscale_tools.building import build_tool
from scenario_upscale_tools.inventory import SCHEMAS, TOOL_NAMES, load_tool

# mcp 2.3's `Tool`: what `deferred_tool` passes (the required fields, title, annotations) and what it
# leaves at the SDK's defaults.
SDK_TOOL_FIELDS = {
    "fn",
    "name",
    "title",
    "description",
    "parameters",
    "fn_metadata",
    "is_async",
    "context_kwarg",
    "resolved_params",
    "resolver_plans",
    "annotations",
    "icons",
    "meta",
}
REVIEW = (
    "mcp's Tool changed shape (fields {fields}). Review `deferred_tool` in scenario_upscale_mcp/app.py: "
    "it lists tools from stored schemas by constructing `Tool` directly, and must pass every field a "
    "host's tools/list or the call path now reads. Then update SDK_TOOL_FIELDS here."
)


def test_the_sdk_tool_has_the_fields_deferred_tool_was_written_for() -> None:
    fields = set(Tool.model_fields)
    assert fields == SDK_TOOL_FIELDS, REVIEW.format(
        fields=f"added {sorted(fields - SDK_TOOL_FIELDS)}, removed {sorted(SDK_TOOL_FIELDS - fields)}"
    )
    required = {name for name, field in Tool.model_fields.items() if field.is_required()}
    assert required == {"fn", "name", "description", "parameters", "fn_metadata", "is_async"}, REVIEW.format(
        fields=f"required now: {sorted(required)}"
    )


def test_the_sdk_still_calls_run_and_reads_the_output_schema_from_the_metadata() -> None:
    parameters = list(inspect.signature(Tool.run).parameters)
    assert parameters == ["self", "arguments", "context", "convert_result"], (
        f"mcp's Tool.run now takes {parameters}: review `DeferredTool.run` in scenario_upscale_mcp/app.py"
    )
    assert {"arg_model", "output_schema"} <= set(FuncMetadata.model_fields), (
        "mcp's FuncMetadata no longer takes a hand-built output_schema: review `deferred_tool`"
    )


@pytest.mark.parametrize("name", TOOL_NAMES)
def test_a_deferred_tool_lists_exactly_what_the_built_tool_would(name: str) -> None:
    listed = deferred_tool(name)
    built = build_tool(load_tool(name))

    assert isinstance(listed, DeferredTool)
    for field in ("name", "title", "description", "parameters", "annotations", "icons", "meta"):
        assert getattr(listed, field) == getattr(built, field), field
    assert listed.output_schema == built.output_schema
    assert listed.output_schema == json.loads((SCHEMAS / f"{name}.json").read_text())["outputSchema"]


@pytest.mark.parametrize("name", TOOL_NAMES)
def test_descriptions_are_prose_without_source_indentation(name: str) -> None:
    description = deferred_tool(name).description
    assert description == description.strip()
    for paragraph in description.split("\n\n"):
        assert paragraph and "\n" not in paragraph and "  " not in paragraph, paragraph
