"""upscale_v3: Scenario Upscale V3 (`model_upscale-v3`), every documented input."""

from __future__ import annotations

from typing import Annotated, Literal

from mcp.types import ToolAnnotations
from pydantic import Field

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
from scenario_upscale_tools.scenario_models import UPSCALE_V3
from scenario_upscale_tools.spending_guard import ConfirmCost
from scenario_upscale_tools.upscale import Options, UpscaleToolResult, run_upscale

Style = Literal["standard", "cartoon", "anime", "comic", "minimalist", "photography", "3d-rendered"]
Preset = Literal["precise", "balanced", "creative"]


async def upscale_v3(
    ctx: ToolContext,
    given: Given,
    image: ImageArgument,
    style: Annotated[Style, Field(description="The style to optimize for.")] = "standard",
    upscaleFactor: Annotated[float, Field(ge=1, le=16, description="Scale factor; 1 only refines.")] = 2,
    preset: Annotated[Preset, Field(description="A set of parameters.")] = "precise",
    styleImages: Annotated[
        list[MoreImages] | None,
        Field(max_length=10, description="Images whose style to follow, like `image`."),
    ] = None,
    styleStrength: Annotated[
        float, Field(ge=0, le=3, description="How closely to follow the style images.")
    ] = 0.5,
    tileStyle: Annotated[
        bool,
        Field(description="Match source and style-image tiles (for similar compositions)."),
    ] = False,
    prompt: Annotated[str, Field(description="Text guiding the enhancement.")] = "",
    negativePrompt: Annotated[str, Field(description="What to avoid.")] = "",
    guidanceScale: Annotated[
        float, Field(ge=0, le=10, description="Higher favors the prompt over the image.")
    ] = 6,
    controlnetConditioningScale: Annotated[
        float,
        Field(ge=0, le=1.2, description="Higher keeps the input's structure."),
    ] = 0.8,
    strength: Annotated[float, Field(ge=0.1, le=1, description="Creativity.")] = 0.1,
    fractality: Annotated[
        float,
        Field(ge=0, le=1, description="Adds fractal-like details."),
    ] = 0,
    loraDetailsScale: Annotated[
        float, Field(ge=-1.5, le=1.5, description="More (+) or fewer (-) details.")
    ] = 0,
    seed: Annotated[int | None, Field(ge=0, le=2147483647, description="Random if unset.")] = None,
    strengthDecay: Annotated[
        float,
        Field(
            ge=0.1,
            le=1,
            description="Creativity kept per stage (upscaleFactor > 2).",
        ),
    ] = 0.8,
    overrideEmbeddings: Annotated[bool, Field(description="Drop the extra style embeddings.")] = False,
    dryRun: DryRun = False,
    wait: Wait = 45,
    outputDir: OutputDir = None,
    allowDuplicate: AllowDuplicate = False,
    confirmCost: ConfirmCost = None,
) -> UpscaleToolResult:
    """Upscale an image up to 16x with Scenario Upscale V3 (model_upscale-v3), with a style, preset,
    style images or prompt. For seamless textures, use upscale_texture.

    Paid (dryRun=true quotes the cost). Saves the result; returns its path, cost and a preview.
    """
    inputs = {
        "image": image,
        "style": style,
        "upscaleFactor": upscaleFactor,
        "preset": preset,
        "styleImages": styleImages,
        "styleStrength": styleStrength,
        "tileStyle": tileStyle,
        "prompt": prompt,
        "negativePrompt": negativePrompt,
        "guidanceScale": guidanceScale,
        "controlnetConditioningScale": controlnetConditioningScale,
        "strength": strength,
        "fractality": fractality,
        "loraDetailsScale": loraDetailsScale,
        "seed": seed,
        "strengthDecay": strengthDecay,
        "overrideEmbeddings": overrideEmbeddings,
    }
    options = Options(
        dry_run=dryRun,
        wait=wait,
        output_dir=outputDir,
        allow_duplicate=allowDuplicate,
        confirm_cost=confirmCost,
    )
    return await run_upscale(ctx, UPSCALE_V3, inputs, given, options)


TOOL = ToolSpec(
    fn=upscale_v3,
    title="Upscale image (Scenario Upscale V3)",
    annotations=ToolAnnotations(
        read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
    ),
)
