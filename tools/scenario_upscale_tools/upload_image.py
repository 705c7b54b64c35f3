"""upload_image: turn an image (local file, https URL or data: URI) into a Scenario asset id."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from scenario_upscale_mcp.images.sources import scratch_folder
from scenario_upscale_tools.arguments import ImageReference, ToolContext, upscaler_of
from scenario_upscale_tools.inventory import ToolSpec
from scenario_upscale_tools.views import ResultModel, tool_result


class UploadResult(ResultModel):
    assetId: str = Field(description="The asset id, usable as image, styleImages or imagePrompt.")
    width: int | None = Field(default=None, description="Pixels.")
    height: int | None = Field(default=None, description="Pixels.")
    bytes: int | None = Field(default=None, description="File size in bytes.")
    reused: bool = Field(
        description="True when the same content had been uploaded before and was not sent again."
    )


async def upload_image(ctx: ToolContext, image: ImageReference) -> Annotated[CallToolResult, UploadResult]:
    """Upload an image once to get an asset id to reuse as `image`, `styleImages` or `imagePrompt`; the
    same content is never uploaded twice.
    """
    upscaler = upscaler_of(ctx)
    with scratch_folder() as scratch:
        resolved = (await upscaler.resolve_images({"image": image}, Path(scratch)))["image"]
    local = resolved.image
    result = UploadResult(
        assetId=resolved.asset_id,
        width=local.width if local else None,
        height=local.height if local else None,
        bytes=local.size if local else None,
        reused=not resolved.uploaded,
    )
    if local is None:
        summary = f"{resolved.asset_id} is already an asset id; nothing to upload."
    else:
        how = "was already uploaded" if result.reused else "uploaded"
        summary = f"{resolved.stem} ({local.width}×{local.height}, {local.size:,} bytes) {how}: {resolved.asset_id}."
    return await tool_result(result, summary)


TOOL = ToolSpec(
    fn=upload_image,
    title="Upload an image to Scenario",
    annotations=ToolAnnotations(
        read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=True
    ),
)
