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
    ImageReference,
    OutputDir,
    ToolContext,
    Wait,
)
from scenario_upscale_tools.inventory import ToolSpec
from scenario_upscale_tools.scenario_models import TEXTURE_UPSCALE
from scenario_upscale_tools.upscale import Options, UpscaleToolResult, run_upscale

Preset = Literal["precise", "balanced", "creative"]
BaseModelName = Literal["FLUX.1-dev", "FLUX.1-Krea-dev"]


async def upscale_texture(
    ctx: ToolContext,
    given: Given,
    image: ImageReference,
    upscaleFactor: Annotated[
        float, Field(ge=2, le=8, description="Scaling factor, 2 to 8. Tiling is preserved by the model.")
    ] = 2,
    preset: Annotated[Preset, Field(description="A preset that applies a set of parameters.")] = "balanced",
    loras: Annotated[
        list[Annotated[str, Field(min_length=1)]],
        Field(description="LoRA models to apply: Scenario model ids or URLs."),
    ] = [],  # noqa: B006 - pydantic copies defaults; the schema must show the documented [].
    lorasScale: Annotated[
        list[float],
        Field(description="One scale per entry of `loras`, in the same order (no published range)."),
    ] = [],  # noqa: B006
    prompt: Annotated[str, Field(description="Text guiding the upscale.")] = "",
    imagePrompt: Annotated[
        list[ImageReference] | None,
        Field(
            max_length=4,
            description="Up to 4 style guide images (asset ids or local files, like `image`).",
        ),
    ] = None,
    imagePromptStrength: Annotated[
        float, Field(ge=0, le=1, description="How strongly the style guide images steer the result.")
    ] = 0.6,
    controlnetConditioningScale: Annotated[
        float,
        Field(ge=0, le=1, description="Structure preservation: higher keeps the result closer to the input."),
    ] = 0.4,
    strength: Annotated[
        float, Field(ge=0, le=1, description="Creativity: higher changes the image more.")
    ] = 0.4,
    numInferenceSteps: Annotated[
        int, Field(ge=1, le=50, description="Denoising steps: more is slower and can be more detailed.")
    ] = 28,
    detailsEnable: Annotated[bool, Field(description="Add fine details.")] = True,
    baseModel: Annotated[
        BaseModelName,
        Field(description="FLUX.1-dev for stylized textures, FLUX.1-Krea-dev for realistic ones."),
    ] = "FLUX.1-dev",
    seed: Annotated[
        int | None, Field(ge=0, le=2147483647, description="Seed for reproducible results; random if unset.")
    ] = None,
    dryRun: DryRun = False,
    wait: Wait = 45,
    outputDir: OutputDir = None,
    allowDuplicate: AllowDuplicate = False,
) -> UpscaleToolResult:
    """Upscale a texture with Scenario Texture Upscale (model_sc-upscale-flux-texture): 2x to 8x on FLUX,
    keeping seamless tiling, with optional LoRAs, a prompt and style guide images.

    Submits a paid job, waits up to `wait` seconds with progress, saves the result to the output folder
    and returns its path, size, cost and a preview. Use dryRun=true first to see the cost in creative
    units. For illustrations, photos and general images, prefer upscale_v3.
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
    options = Options(dry_run=dryRun, wait=wait, output_dir=outputDir, allow_duplicate=allowDuplicate)
    return await run_upscale(ctx, TEXTURE_UPSCALE, inputs, given, options)


TOOL = ToolSpec(
    fn=upscale_texture,
    title="Upscale texture (Scenario Texture Upscale)",
    annotations=ToolAnnotations(
        read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
    ),
)
