"""upscale_texture through the MCP client, against the sandbox API served in-process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from scenario_upscale_mcp.sandbox.app import Sandbox
from tests.conftest import RecordingTransport
from tests.images import png_bytes

pytestmark = pytest.mark.anyio


def generate_body(api: RecordingTransport) -> dict[str, Any]:
    [request] = [r for r in api.requests if r.method == "POST" and r.url.path.startswith("/v1/generate/")]
    assert request.url.path == "/v1/generate/custom/model_sc-upscale-flux-texture"
    body: dict[str, Any] = json.loads(request.content)
    return body


async def test_upscales_a_texture_and_saves_it_under_a_descriptive_name(
    client: Client, sample_image: Path, folders: dict[str, Path]
) -> None:
    result = await client.call_tool(
        "upscale_texture", {"image": str(sample_image), "upscaleFactor": 4, "wait": 20}
    )

    assert not result.is_error, result.content
    job = result.structured_content
    assert job is not None and job["status"] == "success"
    assert job["model"] == "model_sc-upscale-flux-texture"
    [output] = job["outputs"]
    path = Path(output["path"])
    assert path.parent == folders["output"] and path.name.startswith("castle_texture_x4_")
    assert (output["width"], output["height"]) == (256, 192)


async def test_sends_every_documented_input_with_loras_and_image_prompts(
    client: Client, api: RecordingTransport, sample_image: Path, sandbox: Sandbox
) -> None:
    guide = sandbox.add_asset(png_bytes(32, 32), "guide.png")
    inputs = {  # sent as given, under the same names
        "upscaleFactor": 2.5,
        "preset": "creative",
        "loras": ["model_lora_a", "https://example.com/lora.safetensors"],
        "lorasScale": [0.8, 1.2],
        "prompt": "mossy stone",
        "imagePromptStrength": 0.3,
        "controlnetConditioningScale": 0.5,
        "strength": 0.2,
        "numInferenceSteps": 30,
        "detailsEnable": False,
        "baseModel": "FLUX.1-Krea-dev",
        "seed": 123,
    }
    result = await client.call_tool(
        "upscale_texture",
        {"image": str(sample_image), **inputs, "imagePrompt": [guide, str(sample_image)], "wait": 0},
    )

    assert not result.is_error, result.content
    body = generate_body(api)
    # The local file goes up once, and its asset id stands for it in both places.
    assert body == {"image": body["image"], **inputs, "imagePrompt": [guide, body["image"]]}
    assert body["image"] in sandbox.assets


async def test_a_call_with_only_the_image_sends_only_the_image(
    client: Client, api: RecordingTransport, sandbox: Sandbox
) -> None:
    """The API applies the preset and the documented defaults itself (SCENARIO_API.md §1, Presets)."""
    asset = sandbox.add_asset(png_bytes(), "a.png")
    result = await client.call_tool("upscale_texture", {"image": asset, "wait": 0})

    assert not result.is_error, result.content
    assert generate_body(api) == {"image": asset}
    assert [r.url.path for r in api.requests] == ["/v1/generate/custom/model_sc-upscale-flux-texture"]


async def test_the_listed_schema_still_shows_every_documented_default(client: Client) -> None:
    [tool] = [tool for tool in (await client.list_tools()).tools if tool.name == "upscale_texture"]
    defaults = {name: prop.get("default") for name, prop in tool.input_schema["properties"].items()}

    assert defaults == {
        "image": None, "upscaleFactor": 2, "preset": "balanced", "loras": [], "lorasScale": [], "prompt": "",
        "imagePrompt": None, "imagePromptStrength": 0.6, "controlnetConditioningScale": 0.4, "strength": 0.4,
        "numInferenceSteps": 28, "detailsEnable": True, "baseModel": "FLUX.1-dev", "seed": None,
        "dryRun": False, "wait": 45, "outputDir": None, "allowDuplicate": False, "confirmCost": None,
    }  # fmt: skip


@pytest.mark.parametrize("dry_run", [False, True], ids=["submitted", "dry-run"])
async def test_a_preset_alone_is_sent_alone_so_the_api_applies_it(
    client: Client, api: RecordingTransport, sandbox: Sandbox, dry_run: bool
) -> None:
    asset = sandbox.add_asset(png_bytes(), "a.png")
    result = await client.call_tool(
        "upscale_texture", {"image": asset, "preset": "creative", "dryRun": dry_run, "wait": 0}
    )

    assert not result.is_error, result.content
    assert generate_body(api) == {"image": asset, "preset": "creative"}
    assert (sandbox.jobs == {}) is dry_run


@pytest.mark.parametrize("dry_run", [False, True], ids=["submitted", "dry-run"])
async def test_a_value_equal_to_its_default_is_sent_when_the_caller_sets_it(
    client: Client, api: RecordingTransport, sandbox: Sandbox, dry_run: bool
) -> None:
    arguments = {
        "upscaleFactor": 2,
        "baseModel": "FLUX.1-dev",
        "loras": [],
        "lorasScale": [],
        "detailsEnable": True,
    }
    asset = sandbox.add_asset(png_bytes(), "a.png")
    result = await client.call_tool(
        "upscale_texture", {"image": asset, **arguments, "dryRun": dry_run, "wait": 0}
    )

    assert not result.is_error, result.content
    assert generate_body(api) == {"image": asset, **arguments}


async def test_an_unset_factor_still_names_the_file_x2(
    client: Client, api: RecordingTransport, sample_image: Path
) -> None:
    result = await client.call_tool("upscale_texture", {"image": str(sample_image), "wait": 20})

    assert not result.is_error, result.content
    assert set(generate_body(api)) == {"image"}
    job = result.structured_content
    assert job is not None and job["status"] == "success"
    [output] = job["outputs"]
    assert Path(output["path"]).name.startswith("castle_texture_x2_")


async def test_a_dry_run_with_a_local_file_uploads_it_but_submits_nothing(
    client: Client, api: RecordingTransport, sample_image: Path, sandbox: Sandbox
) -> None:
    result = await client.call_tool("upscale_texture", {"image": str(sample_image), "dryRun": True})

    assert not result.is_error, result.content
    assert result.structured_content is not None and result.structured_content["creativeUnitsCost"] > 0
    assert sandbox.jobs == {}
    assert "would cost" in result.content[0].text  # type: ignore[union-attr]
    assert generate_body(api) == {"image": generate_body(api)["image"]}  # only what was set
