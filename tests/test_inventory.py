"""The tool surface is a reviewed contract: names, descriptions, annotations, and schema snapshots.

The committed schemas live in tools/scenario_upscale_tools/schemas/ (the server lists them as they
are). A schema change shows up as a diff there. To accept one on purpose:
    UPDATE_SNAPSHOTS=1 pytest tests/test_inventory.py
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from mcp import Client
from mcp.types import Tool

from scenario_upscale_tools.building import build_tool
from scenario_upscale_tools.inventory import SCHEMAS, TOOL_NAMES, ToolSpec, load_all

pytestmark = pytest.mark.anyio


async def listed_tools(client: Client) -> list[Tool]:
    return list((await client.list_tools()).tools)


async def test_every_tool_is_listed_once_with_a_title_and_description(client: Client) -> None:
    tools = await listed_tools(client)
    names = [tool.name for tool in tools]

    assert len(set(TOOL_NAMES)) == len(TOOL_NAMES)
    assert names == list(TOOL_NAMES)  # each tool once, in the inventory's order, as hosts show them
    for tool in tools:
        assert tool.title, tool.name
        assert tool.description and len(tool.description) > 80, tool.name
        assert tool.output_schema is not None, tool.name


async def test_every_tool_declares_every_annotation_explicitly(client: Client) -> None:
    for tool in await listed_tools(client):
        annotations = tool.annotations
        assert annotations is not None, tool.name
        assert annotations.read_only_hint is not None, tool.name
        assert annotations.open_world_hint is (tool.name != "list_jobs"), (
            tool.name
        )  # only list_jobs stays local
        assert annotations.idempotent_hint is not None, tool.name
        if not annotations.read_only_hint:
            assert annotations.destructive_hint is (tool.name == "cancel_job"), tool.name


async def test_paid_tools_are_not_read_only_and_status_is(client: Client) -> None:
    tools = {tool.name: tool for tool in await listed_tools(client)}
    for name in ("upscale_v3", "upscale_texture"):
        annotations = tools[name].annotations
        assert annotations is not None
        assert annotations.read_only_hint is False and annotations.idempotent_hint is False
    for name in ("get_job", "list_jobs"):
        annotations = tools[name].annotations
        assert annotations is not None and annotations.read_only_hint is True


async def test_every_parameter_is_described_and_unknown_ones_are_closed_off(client: Client) -> None:
    for tool in await listed_tools(client):
        schema = tool.input_schema
        assert schema.get("additionalProperties") is False, tool.name
        for name, prop in schema["properties"].items():
            assert prop.get("description"), f"{tool.name}.{name}"


def live_definition(spec: ToolSpec) -> dict[str, Any]:
    """What `build_tool` generates for a tool, in the committed snapshot's shape (`_meta` only when set:
    the viewer binding, see scenario_upscale_mcp/viewer/resource.py)."""
    tool = build_tool(spec)
    definition = {
        "name": tool.name,
        "title": tool.title,
        "description": tool.description,
        "annotations": tool.annotations.model_dump(mode="json", by_alias=True, exclude_none=True)
        if tool.annotations
        else None,
        "inputSchema": tool.parameters,
        "outputSchema": tool.output_schema,
    }
    if tool.meta is not None:
        definition["_meta"] = tool.meta
    return definition


def test_committed_schemas_match_the_code() -> None:
    """The server lists the committed schemas (fast start-up), so they must be exactly the generated ones."""
    for spec in load_all():
        current = live_definition(spec)
        path = SCHEMAS / f"{spec.name}.json"
        if os.environ.get("UPDATE_SNAPSHOTS") == "1":
            path.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
        assert path.exists(), f"no schema for {spec.name}; run with UPDATE_SNAPSHOTS=1"
        assert json.loads(path.read_text()) == current, (
            f"{spec.name}'s schema changed; review, then UPDATE_SNAPSHOTS=1"
        )
    assert sorted(p.stem for p in SCHEMAS.glob("*.json")) == sorted(TOOL_NAMES)


async def test_the_listed_tools_are_the_committed_schemas(client: Client) -> None:
    for tool in await listed_tools(client):
        stored = json.loads((SCHEMAS / f"{tool.name}.json").read_text())
        assert tool.input_schema == stored["inputSchema"]
        assert tool.output_schema == stored["outputSchema"]
        assert tool.description == stored["description"] and tool.title == stored["title"]
        assert tool.meta == stored.get("_meta")
        assert tool.annotations is not None
        assert (
            tool.annotations.model_dump(mode="json", by_alias=True, exclude_none=True)
            == stored["annotations"]
        )


def test_published_schemas_are_exactly_what_the_server_validates_against() -> None:
    for spec in load_all():
        tool = build_tool(spec)
        assert tool.parameters == tool.fn_metadata.arg_model.model_json_schema(by_alias=True), spec.name
