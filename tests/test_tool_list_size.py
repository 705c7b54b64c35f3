"""The tool list stays lean: hosts put every tool's input schema and description into each conversation.

The budget (tests/benchmarks/tool_list.py) covers today's tools together and each tool alone, so a tool
added later is as lean; the benchmark suite reports the same figure. The output schemas are not counted
and stay complete. App-only tools (view_region, which serves the viewer) have a budget of their own:
hosts that render MCP Apps hide them from the model.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from mcp import Client
from mcp.types import Tool

from scenario_upscale_tools.arguments import IMAGE_REFERENCE_HELP
from scenario_upscale_tools.inventory import for_the_model
from tests.benchmarks.tool_list import (
    APP_ONLY_BUDGET_BYTES,
    BUDGET_BYTES,
    PER_TOOL_BYTES,
    listed_bytes,
    measure,
)

pytestmark = pytest.mark.anyio


def _keywords(schema: Any, found: set[str]) -> set[str]:
    """Every keyword used anywhere in a schema (property names excluded)."""
    if isinstance(schema, list):
        for item in schema:
            _keywords(item, found)
    elif isinstance(schema, dict):
        for key, value in schema.items():
            found.add(key)
            if key == "properties":
                for sub in value.values():
                    _keywords(sub, found)
            else:
                _keywords(value, found)
    return found


async def test_the_listed_tools_fit_the_budget_together_and_each_alone(client: Client) -> None:
    tools = (await client.list_tools()).tools
    sizes = {tool.name: listed_bytes(tool.input_schema, tool.description) for tool in tools}
    model = {name: size for name, size in sizes.items() if for_the_model(by_name(tools)[name].meta)}
    app_only = {name: size for name, size in sizes.items() if name not in model}

    assert sum(model.values()) <= BUDGET_BYTES, model
    assert max(sizes.values()) <= PER_TOOL_BYTES, sizes
    assert sum(app_only.values()) <= APP_ONLY_BUDGET_BYTES, app_only
    assert model == measure() and app_only == measure(app_only=True)  # the benchmark measures what is listed


def by_name(tools: list[Tool]) -> dict[str, Tool]:
    return {tool.name: tool for tool in tools}


async def test_input_schemas_carry_no_pydantic_titles_and_every_bound(client: Client) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    for tool in tools.values():
        assert "title" not in _keywords(tool.input_schema, set()), tool.name
    # the bounds, enums and defaults are all still there
    v3 = tools["upscale_v3"].input_schema["properties"]
    assert v3["upscaleFactor"] == {
        "default": 2, "description": v3["upscaleFactor"]["description"], "maximum": 16, "minimum": 1,
        "type": "number",
    }  # fmt: skip
    assert v3["style"]["enum"] == [
        "standard",
        "cartoon",
        "anime",
        "comic",
        "minimalist",
        "photography",
        "3d-rendered",
    ]
    assert v3["styleImages"]["anyOf"][0]["maxItems"] == 10
    assert v3["seed"]["anyOf"][0] == {"maximum": 2147483647, "minimum": 0, "type": "integer"}
    texture = tools["upscale_texture"].input_schema["properties"]
    assert texture["numInferenceSteps"]["maximum"] == 50 and texture["numInferenceSteps"]["default"] == 28
    assert texture["baseModel"]["enum"] == ["FLUX.1-dev", "FLUX.1-Krea-dev"]


async def test_the_image_reference_help_is_said_once_and_referred_to(client: Client) -> None:
    listing = json.dumps([tool.model_dump(mode="json") for tool in (await client.list_tools()).tools])
    assert listing.count(IMAGE_REFERENCE_HELP) == 1  # upload_image's `image`
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    for name in ("upscale_v3", "upscale_texture"):
        assert "upload_image" in tools[name].input_schema["properties"]["image"]["description"]
