"""Every documented bound of both models, enforced before any request (SCENARIO_API.md §1).

Each case breaks exactly one rule; the error must name the field and what is allowed, and the API
must receive nothing at all.
"""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client

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
