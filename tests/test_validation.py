"""Every documented bound of both models, enforced before any request (SCENARIO_API.md §1).

Each case breaks exactly one rule; the error must name the field and what is allowed, and the API
must receive nothing at all.
"""

from __future__ import annotations

import json
import math
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.types import JSONRPCRequest, jsonrpc_message_adapter
from pydantic import ValidationError

from scenario_upscale_mcp.config import Settings
from scenario_upscale_mcp.jobs.ledger import FILE_NAME
from scenario_upscale_mcp.service import Upscaler
from scenario_upscale_tools.building import build_tool
from scenario_upscale_tools.inventory import SCHEMAS, TOOL_NAMES, load_tool
from tests.conftest import RecordingTransport

pytestmark = pytest.mark.anyio

V3 = "upscale_v3"
TEXTURE = "upscale_texture"

# (tool, field, bad value, text the error must contain: the bound or the allowed values)
CASES: list[tuple[str, str, Any, str]] = [
    (V3, "upscaleFactor", 0.5, "greater than or equal to 1"),
    (V3, "upscaleFactor", 17, "less than or equal to 16"),
    (
        V3,
        "style",
        "watercolor",
        "'standard', 'cartoon', 'anime', 'comic', 'minimalist', 'photography' or '3d-rendered'",
    ),
    (V3, "preset", "fast", "'precise', 'balanced' or 'creative'"),
    (V3, "styleImages", [f"asset_{i}" for i in range(11)], "at most 10 items"),
    (V3, "styleStrength", -0.1, "greater than or equal to 0"),
    (V3, "styleStrength", 3.5, "less than or equal to 3"),
    (V3, "tileStyle", "sometimes", "valid boolean"),
    (V3, "guidanceScale", -1, "greater than or equal to 0"),
    (V3, "guidanceScale", 10.5, "less than or equal to 10"),
    (V3, "controlnetConditioningScale", -0.01, "greater than or equal to 0"),
    (V3, "controlnetConditioningScale", 1.3, "less than or equal to 1.2"),
    (V3, "strength", 0.05, "greater than or equal to 0.1"),
    (V3, "strength", 1.5, "less than or equal to 1"),
    (V3, "fractality", -0.5, "greater than or equal to 0"),
    (V3, "fractality", 2, "less than or equal to 1"),
    (V3, "loraDetailsScale", -1.6, "greater than or equal to -1.5"),
    (V3, "loraDetailsScale", 1.6, "less than or equal to 1.5"),
    (V3, "seed", -1, "greater than or equal to 0"),
    (V3, "seed", 2147483648, "less than or equal to 2147483647"),
    (V3, "strengthDecay", 0.0, "greater than or equal to 0.1"),
    (V3, "strengthDecay", 1.1, "less than or equal to 1"),
    (V3, "overrideEmbeddings", "maybe", "valid boolean"),
    (V3, "prompt", 42, "valid string"),
    (V3, "negativePrompt", ["no"], "valid string"),
    (V3, "wait", -1, "greater than or equal to 0"),
    (V3, "image", "", "at least 1 character"),
    (TEXTURE, "upscaleFactor", 1, "greater than or equal to 2"),
    (TEXTURE, "upscaleFactor", 9, "less than or equal to 8"),
    (TEXTURE, "preset", "turbo", "'precise', 'balanced' or 'creative'"),
    (TEXTURE, "imagePrompt", [f"asset_{i}" for i in range(5)], "at most 4 items"),
    (TEXTURE, "imagePromptStrength", -0.1, "greater than or equal to 0"),
    (TEXTURE, "imagePromptStrength", 1.1, "less than or equal to 1"),
    (TEXTURE, "controlnetConditioningScale", -0.1, "greater than or equal to 0"),
    (TEXTURE, "controlnetConditioningScale", 1.01, "less than or equal to 1"),
    (TEXTURE, "strength", -0.2, "greater than or equal to 0"),
    (TEXTURE, "strength", 1.2, "less than or equal to 1"),
    (TEXTURE, "numInferenceSteps", 0, "greater than or equal to 1"),
    (TEXTURE, "numInferenceSteps", 51, "less than or equal to 50"),
    (TEXTURE, "numInferenceSteps", 2.5, "valid integer"),
    (TEXTURE, "detailsEnable", "lots", "valid boolean"),
    (TEXTURE, "baseModel", "SDXL", "'FLUX.1-dev' or 'FLUX.1-Krea-dev'"),
    (TEXTURE, "seed", -5, "greater than or equal to 0"),
    (TEXTURE, "seed", 2**31, "less than or equal to 2147483647"),
    (TEXTURE, "loras", "model_abc", "valid list"),
    (TEXTURE, "lorasScale", ["strong"], "valid number"),
]


@pytest.mark.parametrize(
    ("tool", "field", "value", "allowed"), CASES, ids=[f"{t}-{f}-{v!r}"[:60] for t, f, v, _ in CASES]
)
async def test_out_of_bounds_argument_is_refused_before_any_request(
    client: Client, api: RecordingTransport, tool: str, field: str, value: Any, allowed: str
) -> None:
    arguments = {"image": "asset_source", field: value}
    result = await client.call_tool(tool, arguments)

    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert f"\n{field}" in text, text  # pydantic puts the field's location on its own line
    assert allowed in text, text
    shown = [repr(value)[:20], str(value)[:20]] + ([repr(value[0])] if isinstance(value, list) else [])
    assert any(needle in text for needle in shown), text  # the bad value is quoted
    assert api.requests == []


@pytest.mark.parametrize("tool", [V3, TEXTURE])
async def test_unknown_argument_is_refused_and_the_allowed_ones_listed(
    client: Client, api: RecordingTransport, tool: str
) -> None:
    result = await client.call_tool(tool, {"image": "asset_source", "targetWidth": 2048})

    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert "targetWidth" in text and "unknown argument" in text
    assert "upscaleFactor" in text  # the allowed arguments are listed
    assert api.requests == []


@pytest.mark.parametrize("tool", [V3, TEXTURE])
async def test_missing_image_is_refused(client: Client, api: RecordingTransport, tool: str) -> None:
    result = await client.call_tool(tool, {"upscaleFactor": 2})

    assert result.is_error
    assert "\nimage\n  Field required" in result.content[0].text  # type: ignore[union-attr]
    assert api.requests == []


@pytest.mark.parametrize(
    ("loras", "scales"), [(["model_a"], []), ([], [0.5]), (["model_a", "model_b"], [1.0])]
)
async def test_loras_scale_needs_one_entry_per_lora(
    client: Client, api: RecordingTransport, loras: list[str], scales: list[float]
) -> None:
    result = await client.call_tool(TEXTURE, {"image": "asset_source", "loras": loras, "lorasScale": scales})

    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert f"lorasScale: has {len(scales)} entries but loras has {len(loras)}" in text
    assert api.requests == []


async def test_several_bad_arguments_are_reported_together(client: Client, api: RecordingTransport) -> None:
    result = await client.call_tool(
        V3, {"image": "asset_source", "upscaleFactor": 40, "style": "oil", "bogus": 1}
    )

    text = result.content[0].text  # type: ignore[union-attr]
    assert result.is_error and "3 validation errors" in text
    assert api.requests == []


@pytest.mark.parametrize("tool", [V3, TEXTURE])
async def test_the_handlers_given_parameter_is_no_argument(
    client: Client, api: RecordingTransport, tool: str
) -> None:
    """`given` (the names of the arguments set, filled by the server) can be neither passed nor seen."""
    result = await client.call_tool(tool, {"image": "asset_source", "given": ["preset"]})

    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert "\ngiven\n" in text and "unknown argument" in text
    allowed = text.split("the allowed arguments are: ", 1)[1].split(" [", 1)[0]
    assert "given" not in allowed.split(", ") and "image" in allowed.split(", ")
    assert api.requests == []


# --- every number finite, every type its own (holes 4 and 7) ------------------------------------------
#
# The fields are read from the committed schemas, so a number or a boolean added to any tool is
# covered without touching this file.

# The least each tool needs besides the argument under test (schema-valid; nothing is sent anyway).
BASE_ARGUMENTS: dict[str, dict[str, Any]] = {
    "upscale_v3": {"image": "asset_source"},
    "upscale_texture": {"image": "asset_source"},
    "upscale_batch": {"model": "upscale_v3", "images": ["asset_source"]},
    "get_job": {"jobId": "job_a"},
    "wait_for_jobs": {"jobIds": ["job_a"]},
    "download_assets": {"jobId": "job_a"},
    "upload_image": {"image": "asset_source"},
    "cancel_job": {"jobId": "job_a"},
    "list_jobs": {},
    "view_region": {"jobId": "job_a", "x": 0, "y": 0, "width": 8, "height": 8},
}


def _types(prop: dict[str, Any]) -> set[str]:
    """The JSON types a property allows (through anyOf, as pydantic writes `X | None`)."""
    if "anyOf" in prop:
        return set().union(*(_types(p) for p in prop["anyOf"]))
    return {prop["type"]} if "type" in prop else set()


def _arguments_of_type(*wanted: str) -> list[tuple[str, str, str]]:
    """(tool, argument, kind) for every argument of one of the `wanted` kinds: number, integer,
    boolean, or "number[]" (a list of numbers)."""
    found = []
    for tool in TOOL_NAMES:
        schema = json.loads((SCHEMAS / f"{tool}.json").read_text())["inputSchema"]
        for name, prop in schema["properties"].items():
            kinds = _types(prop)
            items = [p.get("items", {}) for p in [prop, *prop.get("anyOf", [])] if p.get("type") == "array"]
            if any(_types(item) & {"number", "integer"} for item in items):
                kinds.add("number[]")
            for kind in wanted:
                if kind in kinds:
                    found.append((tool, name, kind))
    return found


NUMBERS = _arguments_of_type("number", "integer", "number[]")
BOOLEANS = _arguments_of_type("boolean")


def test_the_type_tables_found_every_kind() -> None:
    assert ("upscale_texture", "lorasScale", "number[]") in NUMBERS
    assert ("upscale_v3", "strengthDecay", "number") in NUMBERS
    assert ("upscale_texture", "numInferenceSteps", "integer") in NUMBERS
    assert ("list_jobs", "limit", "integer") in NUMBERS and ("wait_for_jobs", "timeout", "number") in NUMBERS
    assert ("upscale_v3", "dryRun", "boolean") in BOOLEANS
    assert ("download_assets", "preview", "boolean") in BOOLEANS


def _with(tool: str, field: str, kind: str, value: Any) -> dict[str, Any]:
    arguments = dict(BASE_ARGUMENTS[tool])
    if kind == "number[]":
        arguments[field] = [value]
        if field == "lorasScale":
            arguments["loras"] = ["model_lora"]
    else:
        arguments[field] = value
    return arguments


async def call_over_the_wire(server: MCPServer[Upscaler], tool: str, arguments: dict[str, Any]) -> str:
    """The error text a stdio host gets for these arguments.

    The in-process client serializes arguments with pydantic, which writes NaN and Infinity as null;
    a host using Python's json writes them as the literals `NaN` and `Infinity`, and the server's
    JSON-RPC parser reads those back as floats. So the call is made the way stdio makes it: the
    request line parsed by the SDK's own message adapter, the arguments handed to the server's
    `call_tool` (what `_handle_call_tool` does; its text is `str` of the ToolError).
    """
    line = json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}
    )
    request = jsonrpc_message_adapter.validate_json(line, by_name=False)
    assert isinstance(request, JSONRPCRequest) and request.params is not None
    with pytest.raises(ToolError) as raised:
        await server.call_tool(tool, request.params["arguments"])
    assert not isinstance(raised.value, UnexpectedToolError), raised.value.__cause__
    return str(raised.value)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf], ids=["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize(("tool", "field", "kind"), NUMBERS, ids=[f"{t}-{f}" for t, f, _ in NUMBERS])
async def test_non_finite_numbers_are_refused_by_field_before_any_request(
    server: MCPServer[Upscaler], api: RecordingTransport, tool: str, field: str, kind: str, value: float
) -> None:
    text = await call_over_the_wire(server, tool, _with(tool, field, kind, value))

    assert f"\n{field}" in text, text
    assert "finite number" in text, text
    assert repr(value) in text, text  # the bad value, as pydantic shows it (nan, inf, -inf)
    assert api.requests == []


async def test_a_nan_loras_scale_uploads_nothing_and_blocks_nothing(
    server: MCPServer[Upscaler],
    client: Client,
    api: RecordingTransport,
    sample_image: Path,
    settings: Settings,
) -> None:
    """The reported case: a NaN scale used to be accepted, the image uploaded, then the call crashed and
    left an attempt that blocked the identical (fixed) request as "may have been billed"."""
    arguments = {"image": str(sample_image), "loras": ["model_lora"], "lorasScale": [math.nan], "wait": 0}
    text = await call_over_the_wire(server, TEXTURE, arguments)

    assert "\nlorasScale.0\n" in text and "finite number" in text, text
    assert api.requests == []  # not even the upload
    ledger = settings.state_dir / FILE_NAME
    if ledger.exists():  # nothing was written down as possibly billed
        with closing(sqlite3.connect(ledger)) as db:
            assert db.execute("SELECT COUNT(*) FROM attempts").fetchone() == (0,)
    result = await client.call_tool(TEXTURE, {**arguments, "lorasScale": [0.5]})
    assert not result.is_error, result.content


@pytest.mark.parametrize(("tool", "field", "kind"), NUMBERS, ids=[f"{t}-{f}" for t, f, _ in NUMBERS])
@pytest.mark.parametrize("value", [True, False])
async def test_a_boolean_is_never_a_number(
    client: Client, api: RecordingTransport, tool: str, field: str, kind: str, value: bool
) -> None:
    result = await client.call_tool(tool, _with(tool, field, kind, value))

    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert f"\n{field}" in text and ("valid number" in text or "valid integer" in text), text
    assert f"input_value={value}" in text, text
    assert api.requests == []


@pytest.mark.parametrize(("tool", "field", "kind"), BOOLEANS, ids=[f"{t}-{f}" for t, f, _ in BOOLEANS])
@pytest.mark.parametrize("value", ["false", "true", "False", "yes", "0", 0, 1, 1.0, None])
async def test_a_boolean_is_only_true_or_false(
    client: Client, api: RecordingTransport, tool: str, field: str, kind: str, value: Any
) -> None:
    result = await client.call_tool(tool, _with(tool, field, kind, value))

    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert f"\n{field}\n  Input should be a valid boolean: true or false" in text, text
    assert api.requests == []


@pytest.mark.parametrize(
    ("tool", "field", "value"),
    [(V3, "prompt", 7), (V3, "image", 12), (TEXTURE, "loras", [3]), ("get_job", "jobId", 123)],
)
async def test_a_number_is_never_text(
    client: Client, api: RecordingTransport, tool: str, field: str, value: Any
) -> None:
    arguments = {**BASE_ARGUMENTS[tool], field: value}
    result = await client.call_tool(tool, arguments)

    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert f"\n{field}" in text and "valid string" in text, text
    assert api.requests == []


async def test_a_number_written_as_text_is_read_as_that_number(
    client: Client, api: RecordingTransport, sample_image: Path
) -> None:
    """Some hosts quote numbers; a string that is exactly a JSON number stands for that number."""
    v3 = await client.call_tool(
        V3,
        {
            "image": str(sample_image),
            "upscaleFactor": "4",
            "guidanceScale": "6.5",
            "seed": "42",
            "dryRun": True,
        },
    )
    texture = await client.call_tool(
        TEXTURE,
        {
            "image": str(sample_image),
            "numInferenceSteps": "30",
            "upscaleFactor": "2.5e0",
            "loras": ["model_lora"],
            "lorasScale": "[0.5]",  # a whole list as JSON text, as Claude Desktop sends lists
            "dryRun": True,
        },
    )

    assert not v3.is_error and not texture.is_error, (v3.content, texture.content)
    bodies = [
        json.loads(r.content) for r in api.requests if r.method == "POST" and "/generate/" in r.url.path
    ]
    assert bodies[0] == {"image": bodies[0]["image"], "upscaleFactor": 4, "guidanceScale": 6.5, "seed": 42}
    assert bodies[1] == {
        "image": bodies[1]["image"],
        "numInferenceSteps": 30,
        "upscaleFactor": 2.5,
        "loras": ["model_lora"],
        "lorasScale": [0.5],
    }


async def test_a_whole_number_written_with_a_fraction_is_an_integer(
    client: Client, api: RecordingTransport, sample_image: Path
) -> None:
    """JSON Schema's "integer" includes 30.0; 30.5 is refused."""
    accepted = await client.call_tool(
        TEXTURE, {"image": str(sample_image), "numInferenceSteps": 30.0, "dryRun": True}
    )
    refused = await client.call_tool(TEXTURE, {"image": str(sample_image), "numInferenceSteps": "30.5"})

    assert not accepted.is_error, accepted.content
    assert refused.is_error
    text = refused.content[0].text  # type: ignore[union-attr]
    assert "\nnumInferenceSteps\n  Input should be a valid integer" in text, text


@pytest.mark.parametrize(
    "text",
    [" 4", "4 ", "4px", "0x10", "1_000", "+4", ".5", "4.", "NaN", "nan", "Infinity", "inf", "1e999", "", "٤"],
)
@pytest.mark.parametrize(("tool", "field"), [(V3, "upscaleFactor"), (TEXTURE, "numInferenceSteps")])
async def test_text_that_is_not_exactly_a_json_number_is_refused(
    client: Client, api: RecordingTransport, tool: str, field: str, text: str
) -> None:
    result = await client.call_tool(tool, {"image": "asset_source", field: text})

    assert result.is_error
    message = result.content[0].text  # type: ignore[union-attr]
    assert f"\n{field}\n  Input should be a" in message, message
    assert "valid number" in message or "valid integer" in message or "finite number" in message, message
    assert api.requests == []


@pytest.mark.parametrize(("tool", "field", "kind"), NUMBERS, ids=[f"{t}-{f}" for t, f, _ in NUMBERS])
def test_every_number_of_every_tool_reads_json_number_text(tool: str, field: str, kind: str) -> None:
    """The text rule is the server's, not a tool's: it holds for each number argument there is."""
    schema = json.loads((SCHEMAS / f"{tool}.json").read_text())["inputSchema"]["properties"][field]
    bounded = next((arm for arm in schema.get("anyOf", [schema]) if "minimum" in arm), schema)
    number = bounded.get("minimum", 1)
    arg_model = build_tool(load_tool(tool)).fn_metadata.arg_model

    read = arg_model.model_validate(_with(tool, field, kind, json.dumps(number)))
    refused = [_with(tool, field, kind, text) for text in (f" {number}", "true", "NaN")]

    value = getattr(read, field)
    assert (value[0] if kind == "number[]" else value) == number
    assert type(value[0] if kind == "number[]" else value) is (
        int if "integer" in (kind, bounded.get("type")) else float
    )
    for arguments in refused:
        with pytest.raises(ValidationError):
            arg_model.model_validate(arguments)
