"""upscale_v3: Scenario Upscale V3 (`model_upscale-v3`), every documented input."""

from __future__ import annotations

from typing import Annotated, Literal

from mcp.types import ToolAnnotations
from pydantic import Field

from scenario_upscale_tools.arguments import (
    AllowDuplicate,
    DryRun,
    Given,
    ImageReference,
    OutputDir,
    ToolContext,
    Wait,
)
from scenario_upscale_tools.inventory import ToolSpec
from scenario_upscale_tools.scenario_models import UPSCALE_V3
from scenario_upscale_tools.upscale import Options, UpscaleToolResult, run_upscale

Style = Literal["standard", "cartoon", "anime", "comic", "minimalist", "photography", "3d-rendered"]
Preset = Literal["precise", "balanced", "creative"]


async def upscale_v3(
    ctx: ToolContext,
    given: Given,
    image: ImageReference,
    style: Annotated[
        Style, Field(description="Optimizes the settings for the output to match this style.")
    ] = "standard",
    upscaleFactor: Annotated[
        float, Field(ge=1, le=16, description="Scaling factor, 1 to 16. 1 is a refinement step only.")
    ] = 2,
    preset: Annotated[Preset, Field(description="A preset that applies a set of parameters.")] = "precise",
    styleImages: Annotated[
        list[ImageReference] | None,
        Field(
            max_length=10,
            description="Up to 10 images whose style to follow (asset ids or local files, like `image`).",
        ),
    ] = None,
    styleStrength: Annotated[
        float, Field(ge=0, le=3, description="How closely the result follows the style images' style.")
    ] = 0.5,
    tileStyle: Annotated[
        bool,
        Field(
            description=(
                "Match tiles of the source with tiles of the style images for a more coherent style "
                "transfer; works best with style images of similar composition."
            )
        ),
    ] = False,
    prompt: Annotated[str, Field(description="Text guiding the enhancement.")] = "",
    negativePrompt: Annotated[str, Field(description="What to avoid in the result.")] = "",
    guidanceScale: Annotated[
        float, Field(ge=0, le=10, description="Higher values prioritize the prompt over the image.")
    ] = 6,
    controlnetConditioningScale: Annotated[
        float,
        Field(
            ge=0, le=1.2, description="Structure preservation: higher keeps the result closer to the input."
        ),
    ] = 0.8,
    strength: Annotated[
        float, Field(ge=0.1, le=1, description="Creativity: higher adds more imaginative elements.")
    ] = 0.1,
    fractality: Annotated[
        float,
        Field(ge=0, le=1, description="Adds small fractal-like details, possibly repeating across tiles."),
    ] = 0,
    loraDetailsScale: Annotated[
        float, Field(ge=-1.5, le=1.5, description="Enhances (positive) or reduces (negative) the details.")
    ] = 0,
    seed: Annotated[
        int | None, Field(ge=0, le=2147483647, description="Seed for reproducible results; random if unset.")
    ] = None,
    strengthDecay: Annotated[
        float,
        Field(
            ge=0.1,
            le=1,
            description="Creativity kept at each enhancement stage; only used when upscaleFactor > 2.",
        ),
    ] = 0.8,
    overrideEmbeddings: Annotated[
        bool, Field(description="Remove the extra custom embeddings used to guide the style.")
    ] = False,
    dryRun: DryRun = False,
    wait: Wait = 45,
    outputDir: OutputDir = None,
    allowDuplicate: AllowDuplicate = False,
) -> UpscaleToolResult:
    """Upscale an image with Scenario Upscale V3 (model_upscale-v3): general-purpose upscaling up to 16x
    with a style (standard, cartoon, anime, comic, minimalist, photography, 3d-rendered), a preset, optional
    style images and a prompt.

    Submits a paid job, waits up to `wait` seconds with progress, saves the result to the output folder
    and returns its path, size, cost and a preview. Use dryRun=true first to see the cost in creative
    units. For seamless textures, prefer upscale_texture.
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
    options = Options(dry_run=dryRun, wait=wait, output_dir=outputDir, allow_duplicate=allowDuplicate)
    return await run_upscale(ctx, UPSCALE_V3, inputs, given, options)


TOOL = ToolSpec(
    fn=upscale_v3,
    title="Upscale image (Scenario Upscale V3)",
    annotations=ToolAnnotations(
        read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
    ),
)
