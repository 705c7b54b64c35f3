"""The two models the simulator runs (SCENARIO_API.md §1): their inputs, as `GET /models/{id}`
lists them and generate validates them, and their (made-up) cost; `GET /models/{id}` itself."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from scenario_upscale_mcp.sandbox.errors import ApiError

_MODELS_PUBLISHED_AT = "2025-01-01T00:00:00.000Z"  # Made up

# The input types of the JSON API (`GET /models/{id}`), not the docs' prose ("assetId", "assetId[]", ...).
INPUT_TYPES = (
    "boolean",
    "file",
    "file_array",
    "inputs_array",
    "model",
    "model_array",
    "number",
    "number_array",
    "string",
    "string_array",
)
_FILE_TYPES = frozenset({"file", "file_array"})


@dataclass(frozen=True)
class ModelInput:
    """One input of a model, as `GET /models/{id}` lists it and generate validates it."""

    name: str
    type: str  # one of INPUT_TYPES; the simulated models use file, file_array, model_array, number_array,
    # string, number and boolean
    description: str
    default: Any = None
    min: float | None = None
    max: float | None = None
    allowed_values: tuple[str, ...] | None = None
    max_length: int | None = None  # item count, for arrays
    required: bool = False

    def __post_init__(self) -> None:
        if self.type not in INPUT_TYPES:
            raise ValueError(f"{self.name}: {self.type!r} is not an input type of the API")

    @property
    def is_array(self) -> bool:
        return self.type.endswith("_array")

    def to_json(self) -> dict[str, Any]:
        """The input in the JSON API's shape: `required` is a rule object, present only when required."""
        described: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            # "file and file_array inputs always expose a kind: when a model does not declare one,
            # image is returned" (the SDK's ModelInput).
            "kind": "image" if self.type in _FILE_TYPES else None,
            "default": self.default,
            "min": self.min,
            "max": self.max,
            "allowedValues": list(self.allowed_values) if self.allowed_values else None,
            "maxLength": self.max_length,
            "required": {"always": True} if self.required else None,
            "description": self.description,
        }
        return {key: value for key, value in described.items() if value is not None}


@dataclass(frozen=True)
class ModelSpec:
    id: str
    name: str
    inputs: tuple[ModelInput, ...]
    # Made up: cost = base_cost + ceil(cost_per_output_megapixel * input MP * upscaleFactor²),
    # i.e. a fixed fee plus a price per megapixel of nominal output. Scenario does
    # not publish its formula; only the shape (bigger output costs more) is plausible.
    base_cost: int
    cost_per_output_megapixel: float

    def input(self, name: str) -> ModelInput:
        return next(spec for spec in self.inputs if spec.name == name)

    def to_json(self) -> dict[str, Any]:
        """The model as `GET /models/{id}` shows it: every field the SDK's model type requires, and inputs."""
        return {
            "id": self.id,
            "name": self.name,
            # Made up where Scenario publishes nothing: Scenario's own upscalers are public custom
            # models (run through /generate/custom), trained and ready.
            "type": "custom",
            "custom": True,
            "capabilities": ["img2img"],
            "source": "scenario",
            "privacy": "public",
            "status": "trained",
            "collectionIds": [],
            "exampleAssetIds": [],
            "tags": [],
            "trainingImagesNumber": 0,
            "createdAt": _MODELS_PUBLISHED_AT,
            "updatedAt": _MODELS_PUBLISHED_AT,
            "inputs": [spec.to_json() for spec in self.inputs],
        }

    def cost(self, width: int, height: int, upscale_factor: float) -> int:
        output_megapixels = width * height / 1_000_000 * upscale_factor**2
        # round() first so float noise (4.0000000001) does not add a unit.
        return self.base_cost + math.ceil(round(self.cost_per_output_megapixel * output_megapixels, 6))


_PRESETS = ("precise", "balanced", "creative")
_SEED = ModelInput("seed", "number", "Seed used for reproduction", min=0, max=2147483647)
_IMAGE = ModelInput("image", "file", "Image to upscale", required=True)

UPSCALE_V3 = ModelSpec(
    id="model_upscale-v3",
    name="Scenario Upscale V3",
    base_cost=2,
    cost_per_output_megapixel=1.0,
    inputs=(
        _IMAGE,
        ModelInput(
            "style",
            "string",
            "Selecting a custom style will optimize settings for the output image "
            "to match the selected style",
            default="standard",
            allowed_values=(
                "standard",
                "cartoon",
                "anime",
                "comic",
                "minimalist",
                "photography",
                "3d-rendered",
            ),
        ),
        ModelInput(
            "upscaleFactor",
            "number",
            "Scaling factor (when target width not specified). If 1, then it's a refinement step only",
            default=2,
            min=1,
            max=16,
        ),
        ModelInput(
            "preset",
            "string",
            "Select a preset to apply a set of parameters",
            default="precise",
            allowed_values=_PRESETS,
        ),
        ModelInput("styleImages", "file_array", "Images whose style the output should follow", max_length=10),
        ModelInput(
            "styleStrength",
            "number",
            "Higher fidelity keeps the enhanced image's style closely aligned with the style images.",
            default=0.5,
            min=0,
            max=3,
        ),
        ModelInput(
            "tileStyle",
            "boolean",
            "If set to true, during the upscaling process, the model will match tiles of the source image "
            "with tiles of the style image.",
            default=False,
        ),
        ModelInput("prompt", "string", "Prompt", default=""),
        ModelInput("negativePrompt", "string", "Negative prompt", default=""),
        ModelInput(
            "guidanceScale",
            "number",
            "Higher fidelity prioritizes the prompt over the image",
            default=6,
            min=0,
            max=10,
        ),
        ModelInput(
            "controlnetConditioningScale",
            "number",
            "Higher fidelity keeps the enhanced image closer to the original structure of the input image",
            default=0.8,
            min=0,
            max=1.2,
        ),
        ModelInput(
            "strength",
            "number",
            "Higher creativity levels introduce extra imaginative elements to enhanced images",
            default=0.1,
            min=0.1,
            max=1,
        ),
        ModelInput(
            "fractality",
            "number",
            "Fractality will add small fractal-like details, possibly repeating intricated patterns "
            "and repeating these details across tiles",
            default=0,
            min=0,
            max=1,
        ),
        ModelInput(
            "loraDetailsScale",
            "number",
            "Enhances or reduces the intensity of the details",
            default=0,
            min=-1.5,
            max=1.5,
        ),
        _SEED,
        ModelInput(
            "strengthDecay",
            "number",
            "The degree of creativity retained at each stage of the enhancement process "
            "(only applies for scale factors above 2)",
            default=0.8,
            min=0.1,
            max=1,
        ),
        ModelInput(
            "overrideEmbeddings",
            "boolean",
            "Removes any additional custom embeddings used to guide the 'Style'",
            default=False,
        ),
    ),
)

TEXTURE_UPSCALE = ModelSpec(
    id="model_sc-upscale-flux-texture",
    name="Scenario Texture Upscale",
    base_cost=4,
    cost_per_output_megapixel=2.0,
    inputs=(
        _IMAGE,
        ModelInput("upscaleFactor", "number", "Upscale factor", default=2, min=2, max=8),
        ModelInput(
            "preset",
            "string",
            "Select a preset to apply a set of parameters",
            default="balanced",
            allowed_values=_PRESETS,
        ),
        ModelInput("loras", "model_array", "List of one or more LoRA model IDs or URLs.", default=[]),
        ModelInput("lorasScale", "number_array", "Scales for the LoRA weights", default=[]),
        ModelInput("prompt", "string", "Prompt", default=""),
        ModelInput(
            "imagePrompt",
            "file_array",
            "Upload up to 4 images to guide the style of the output.",
            max_length=4,
        ),
        ModelInput(
            "imagePromptStrength",
            "number",
            "Higher fidelity keeps the enhanced image's style closely aligned with the style images",
            default=0.6,
            min=0,
            max=1,
        ),
        ModelInput(
            "controlnetConditioningScale",
            "number",
            "Higher values better preserve the structure of the input image.",
            default=0.4,
            min=0,
            max=1,
        ),
        ModelInput(
            "strength",
            "number",
            "Higher values introduce more imaginative elements to the output image.",
            default=0.4,
            min=0,
            max=1,
        ),
        ModelInput(
            "numInferenceSteps",
            "number",
            "The number of steps for the generation",
            default=28,
            min=1,
            max=50,
        ),
        ModelInput("detailsEnable", "boolean", "Enhances fine details in the output image.", default=True),
        ModelInput(
            "baseModel",
            "string",
            "Use FLUX.1-dev for stylized images, and FLUX.1-Krea-dev for realistic images.",
            default="FLUX.1-dev",
            allowed_values=("FLUX.1-dev", "FLUX.1-Krea-dev"),
        ),
        _SEED,
    ),
)

MODELS: dict[str, ModelSpec] = {model.id: model for model in (UPSCALE_V3, TEXTURE_UPSCALE)}


def model_named(model_id: str) -> ModelSpec:
    model = MODELS.get(model_id)
    if model is None:
        raise ApiError(404, "NotFoundError", "Model not found", {"modelId": model_id})
    return model


async def get_model(request: Request) -> Response:
    """`GET /models/{modelId}`."""
    return JSONResponse({"model": model_named(request.path_params["modelId"]).to_json()})
