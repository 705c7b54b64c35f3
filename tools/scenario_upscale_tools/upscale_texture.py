"""upscale_texture: Scenario Texture Upscale (`model_sc-upscale-flux-texture`), every documented input."""

from __future__ import annotations

from typing import Annotated, Literal

from mcp.types import ToolAnnotations
from pydantic import Field

from scenario_upscale_mcp.api.errors import InputError
from scenario_upscale_tools.arguments import (
    AllowDuplicate,
    DryRun,
    Given,
    ImageArgument,
    MoreImages,
    OutputDir,
    ToolContext,
    Wait,
)
from scenario_upscale_tools.inventory import ToolSpec
from scenario_upscale_tools.scenario_models import TEXTURE_UPSCALE
from scenario_upscale_tools.spending_guard import ConfirmCost
from scenario_upscale_tools.upscale import Options, UpscaleToolResult, run_upscale

Preset = Literal["precise", "balanced", "creative"]
BaseModelName = Literal["FLUX.1-dev", "FLUX.1-Krea-dev"]


async def upscale_texture(
    ctx: ToolContext,
    given: Given,
    image: ImageArgument,
    upscaleFactor: Annotated[float, Field(ge=2, le=8, description="Scale factor; tiling is kept.")] = 2,
    preset: Annotated[Preset, Field(description="A set of parameters.")] = "balanced",
    loras: Annotated[
        list[Annotated[str, Field(min_length=1)]],
        Field(description="LoRAs: model ids or URLs."),
    ] = [],  # noqa: B006 - pydantic copies defaults; the schema must show the documented [].
    lorasScale: Annotated[
        list[float],
        Field(description="One scale per entry of `loras`."),
    ] = [],  # noqa: B006
    prompt: Annotated[str, Field(description="Text guiding the upscale.")] = "",
    imagePrompt: Annotated[
        list[MoreImages] | None,
        Field(max_length=4, description="Style guide images, like `image`."),
    ] = None,
    imagePromptStrength: Annotated[
        float, Field(ge=0, le=1, description="How much imagePrompt steers.")
    ] = 0.6,
    controlnetConditioningScale: Annotated[
        float,
        Field(ge=0, le=1, description="Higher keeps the input's structure."),
    ] = 0.4,
    strength: Annotated[float, Field(ge=0, le=1, description="Creativity.")] = 0.4,
    numInferenceSteps: Annotated[int, Field(ge=1, le=50, description="Denoising steps.")] = 28,
    detailsEnable: Annotated[bool, Field(description="Add fine details.")] = True,
    baseModel: Annotated[
        BaseModelName,
        Field(description="FLUX.1-dev: stylized; FLUX.1-Krea-dev: realistic."),
    ] = "FLUX.1-dev",
    seed: Annotated[int | None, Field(ge=0, le=2147483647, description="Random if unset.")] = None,
    dryRun: DryRun = False,
    wait: Wait = 45,
    outputDir: OutputDir = None,
    allowDuplicate: AllowDuplicate = False,
    confirmCost: ConfirmCost = None,
) -> UpscaleToolResult:
    """Upscale a seamless texture 2x to 8x with Scenario Texture Upscale (model_sc-upscale-flux-texture),
    keeping tiling, with LoRAs, a prompt or style images. For other images, use upscale_v3.

    Paid (dryRun=true quotes the cost). Saves the result; returns its path, cost and a preview.
    """
    if len(lorasScale) != len(loras):
        raise InputError(
            f"lorasScale: has {len(lorasScale)} entries but loras has {len(loras)}; give exactly one scale "
            "per LoRA, in the same order (or leave both empty)."
        )
    inputs = {
        "image": image,
        "upscaleFactor": upscaleFactor,
        "preset": preset,
        "loras": loras,
        "lorasScale": lorasScale,
        "prompt": prompt,
        "imagePrompt": imagePrompt,
        "imagePromptStrength": imagePromptStrength,
        "controlnetConditioningScale": controlnetConditioningScale,
        "strength": strength,
        "numInferenceSteps": numInferenceSteps,
        "detailsEnable": detailsEnable,
        "baseModel": baseModel,
        "seed": seed,
    }
    options = Options(
        dry_run=dryRun,
        wait=wait,
        output_dir=outputDir,
        allow_duplicate=allowDuplicate,
        confirm_cost=confirmCost,
    )
    return await run_upscale(ctx, TEXTURE_UPSCALE, inputs, given, options)


TOOL = ToolSpec(
    fn=upscale_texture,
    title="Upscale texture (Scenario Texture Upscale)",
    annotations=ToolAnnotations(
        read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
    ),
)
