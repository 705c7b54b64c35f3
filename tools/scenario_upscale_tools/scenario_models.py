"""Scenario's two upscale models as the tools know them (the simulator has its own, fuller catalogue)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UpscaleModel:
    model_id: str
    tag: str  # short name used in output file names
    image_list_field: str  # the input holding extra reference images


UPSCALE_V3 = UpscaleModel(model_id="model_upscale-v3", tag="upscale-v3", image_list_field="styleImages")
TEXTURE_UPSCALE = UpscaleModel(
    model_id="model_sc-upscale-flux-texture", tag="texture", image_list_field="imagePrompt"
)
MODELS = {model.model_id: model for model in (UPSCALE_V3, TEXTURE_UPSCALE)}
