"""An in-memory simulator of the parts of Scenario's REST API this project uses.

It serves the tests, the demo, and anyone who wants to try the MCP server
without a Scenario account. It follows ``docs/SCENARIO_API.md``: the two upscale
models and their input validation, assets and a signed CDN, the multipart
upload flow, generate (with dry runs), jobs that move through the real statuses
over wall time and are listed in pages, and the documented error shapes. Knobs on
:class:`Faults` inject the failures a client must survive (plan limit, a plan
without the action, a model the plan lacks, 5xx, accepted-then-500, slow
answers, failed jobs, expired URLs, truncated downloads).

Its answers follow Scenario's official SDK (scenario-sdk, generated from the
OpenAPI spec): ``tests/test_api_contract.py`` parses every one of them under the
SDK's response types with validation on. The one exception is the dry run's
HTTP 269, whose ``"job": {}`` is what the real API sends (SCENARIO_API.md §1).

It says it is a simulator wherever it answers: every response carries
``x-scenario-sandbox: simulator``, ``GET /`` says so, and injected faults say
they are simulated. It stands alone (starlette, uvicorn, Pillow, stdlib): it
imports nothing from the rest of the project, so it cannot drift along with the
client it is meant to check.

What is made up (the real API does not publish it) is marked ``Made up`` below:
the cost formula, the timeline of job statuses, and error texts.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import hmac
import ipaddress
import itertools
import json
import logging
import math
import secrets
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from io import BytesIO
from typing import Any

import anyio
import uvicorn
from PIL import Image
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["SANDBOX_HEADER", "Faults", "Sandbox", "main", "serve_in_thread"]

logger = logging.getLogger(__name__)

SANDBOX_HEADER = "x-scenario-sandbox"

JOB_TYPE = "inference"  # every sandbox job runs a model (the type cancel is documented for)
TERMINAL_STATUSES = frozenset({"success", "failure", "canceled"})
JOB_STATUSES = (
    "pending",
    "queued",
    "warming-up",
    "in-progress",
    "finalizing",
    "success",
    "failure",
    "canceled",
)

# Made up: where each status starts, as a fraction of `job_seconds`. Failing
# jobs fail where "finalizing" would start; successful ones end at 1.0.
_TIMELINE: tuple[tuple[str, float], ...] = (
    ("pending", 0.0),
    ("queued", 0.05),
    ("warming-up", 0.15),
    ("in-progress", 0.30),
    ("finalizing", 0.85),
)
_IN_PROGRESS_START = 0.30
_FINALIZING_START = 0.85

CDN_URL_TTL_SECONDS = 24 * 3600  # "valid for at least 24 h" (SCENARIO_API.md §4)
PART_URL_TTL_SECONDS = 3600
MIN_PART_BYTES = 5 * 1024 * 1024  # S3's minimum for every part but the last
MAX_PARTS = 10_000
DEFAULT_PAGE_SIZE = 50  # GET /jobs: "default value is 50, maximum value is 100, minimum value is 1"
MAX_PAGE_SIZE = 100
_CDN_CHUNK_BYTES = 1024 * 1024

ACCEPTED_IMAGE_TYPES = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/gif",
        "image/svg+xml",
        "image/webp",
        "image/avif",
        "image/tiff",
        "image/heif",
        "image/heic",
    }
)
# targetFormat of POST /assets/{id}/download -> (Pillow format, MIME type): the SDK's image formats
# that Pillow writes. The SDK's others ("heif", "svg", and 3D, audio and video formats) are refused.
_DOWNLOAD_FORMATS: dict[str, tuple[str, str]] = {
    "png": ("PNG", "image/png"),
    "jpeg": ("JPEG", "image/jpeg"),
    "jpg": ("JPEG", "image/jpeg"),
    "webp": ("WEBP", "image/webp"),
    "gif": ("GIF", "image/gif"),
    "tif": ("TIFF", "image/tiff"),
    "tiff": ("TIFF", "image/tiff"),
}
Image.init()
if "AVIF" in Image.SAVE:  # Pillow builds without libavif cannot write it.
    _DOWNLOAD_FORMATS["avif"] = ("AVIF", "image/avif")
_OTHER_SDK_FORMATS = frozenset(
    {"avif", "heif", "svg", "glb", "fbx", "obj", "mp3", "mp4"} - _DOWNLOAD_FORMATS.keys()
)
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}

# Made up: who owns what the simulator creates (the real API names the caller's user and team).
SANDBOX_AUTHOR_ID = "user_sandbox"
SANDBOX_OWNER_ID = "team_sandbox"
_MODELS_PUBLISHED_AT = "2025-01-01T00:00:00.000Z"  # Made up

# Made up: what an image asset offers in Scenario's editor (the SDK lists these values, not which apply).
_IMAGE_EDIT_CAPABILITIES = (
    "DETECTION",
    "GENERATIVE_FILL",
    "PIXELATE",
    "PROMPT_EDITING",
    "REFINE",
    "REFRAME",
    "REMOVE_BACKGROUND",
    "SEGMENTATION",
    "UPSCALE",
    "VECTORIZATION",
)

# The query parameters the SDK sends, by route (its *_params.py types name them).
_GENERATE_QUERY = ("dryRun", "ipDetection", "projectId")
_DRY_RUN_VALUES = ("true", "api")
_JOBS_QUERY = (
    "authorId",
    "createdAfter",
    "hideResults",
    "pageSize",
    "paginationToken",
    "projectId",
    "status",
    "type",
    "types",
    "updatedAfter",
    "workflowId",
)

_SIMULATED_FAILURE_ERROR = "Simulated failure: the sandbox was told to fail this job (fail_next_jobs)."
_SIMULATED_FAILURE_HINT = (
    "This failure was injected by the scenario-upscale-mcp sandbox, not Scenario. Submit the job again."
)


# ---------------------------------------------------------------------------
# Models (SCENARIO_API.md §1)
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# Faults and records
# ---------------------------------------------------------------------------


@dataclass
class Faults:
    """Knobs to inject faults. Tests set them directly or through `POST /_sandbox/faults`.

    Counters (`fail_next_jobs`, `server_errors`, ...) count down as they fire.

    `plan_limit` caps the jobs in flight: a generate beyond it answers 429 PlanLimitReachedError
    with `actionLimit` set to it. `plan_limit=0` is a plan that does not include the action at all
    (`actionLimit: 0`): every generate is refused, and waiting does not help. `restricted_models`
    lists model ids the plan lacks: generating with one answers 403 ModelAccessRestrictedError.
    `empty_job_pages` makes the next listings of jobs answer an empty page that still carries a
    `nextPaginationToken` (to the same place), which the SDK says the real API may do.
    """

    plan_limit: int | None = None
    fail_next_jobs: int = 0
    server_errors: int = 0
    accept_then_500: int = 0
    latency_seconds: float = 0.0
    expire_urls: bool = False
    cancel_refused: bool = True
    truncate_downloads: int = 0
    retry_after_seconds: float | None = None
    restricted_models: list[str] = field(default_factory=list)
    empty_job_pages: int = 0


# The JSON kind of each Faults field, for `POST /_sandbox/faults` (a test checks it covers them all).
_FAULT_KINDS: dict[str, tuple[str, bool]] = {  # name -> (kind, None allowed)
    "plan_limit": ("int", True),
    "fail_next_jobs": ("int", False),
    "server_errors": ("int", False),
    "accept_then_500": ("int", False),
    "latency_seconds": ("float", False),
    "expire_urls": ("bool", False),
    "cancel_refused": ("bool", False),
    "truncate_downloads": ("int", False),
    "retry_after_seconds": ("float", True),
    "restricted_models": ("model ids", False),
    "empty_job_pages": ("int", False),
}


@dataclass
class SandboxAsset:
    id: str
    filename: str  # the last segment of its CDN URL
    data: bytes  # the one stored copy; everything else slices it
    mime_type: str
    width: int
    height: int
    created_at: datetime
    source: str = "uploaded"  # the SDK's asset source: "uploaded", or "upscale" for a job's output
    parent_job_id: str | None = None  # the job that produced it


@dataclass
class CdnObject:
    """A URL-only object (a format conversion): served by the CDN, not an asset."""

    filename: str
    data: bytes
    mime_type: str


@dataclass
class RenderedOutput:
    data: bytes
    width: int
    height: int
    done_at: datetime


@dataclass
class SandboxJob:
    id: str
    model_id: str
    inputs: dict[str, Any]
    cost: int
    created_at: datetime
    started: float  # time.monotonic() at creation: the timeline is measured from here
    duration: float  # the sandbox's job_seconds when the job was created: later changes leave it alone
    will_fail: bool
    sequence: int = 0  # creation order, ties of createdAt included: the sort key of GET /jobs
    status: str = "pending"
    progress: float = 0.0
    history: list[tuple[str, datetime]] = field(default_factory=list)
    asset_ids: list[str] = field(default_factory=list)
    error: str | None = None
    hint: str | None = None
    # Set by the render thread; the job reads them when it reaches the end of its timeline.
    rendered: RenderedOutput | None = None
    render_error: str | None = None

    @property
    def updated_at(self) -> datetime:
        return self.history[-1][1]

    def reached(self, status: str) -> bool:
        return any(seen == status for seen, _ in self.history)

    def to_api(self) -> dict[str, Any]:
        """The job as `GET /jobs/{jobId}` shows it (as of the last API read)."""
        metadata: dict[str, Any] = {"input": self.inputs}
        if self.status == "success":
            metadata["assetIds"] = list(self.asset_ids)
        if self.error is not None:
            metadata["error"] = self.error
        if self.hint is not None:
            metadata["hint"] = self.hint
        return {
            "jobId": self.id,
            "jobType": JOB_TYPE,
            "authorId": SANDBOX_AUTHOR_ID,
            "ownerId": SANDBOX_OWNER_ID,
            "status": self.status,
            "progress": self.progress,
            "statusHistory": [{"status": status, "date": _iso(at)} for status, at in self.history],
            "metadata": metadata,
            "billing": {"cuCost": self.cost, "cuDiscount": 0},
            "createdAt": _iso(self.created_at),
            "updatedAt": _iso(self.updated_at),
        }


@dataclass
class SandboxUpload:
    id: str
    file_name: str
    content_type: str | None
    file_size: int
    part_count: int
    kind: str
    created_at: datetime
    part_urls: list[dict[str, Any]]
    status: str = "pending"
    parts: dict[int, bytes] = field(default_factory=dict)
    parts_received: int = 0  # every accepted PUT, re-sent parts included
    completed_at: float | None = None  # monotonic
    # Worked out when "complete" is called, revealed by a later read (see _advance_upload).
    outcome: SandboxAsset | str | None = None
    entity_id: str | None = None
    error_message: str | None = None
    updated_at: datetime | None = None


class ApiError(Exception):
    """An error answer in the observed shape `{"reason", "name", "details"}`."""

    def __init__(self, status: int, name: str, reason: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.name = name
        self.reason = reason
        self.details = details


def _bad_request(reason: str, **details: Any) -> ApiError:
    return ApiError(400, "BadRequestError", reason, details or None)


def _asset_not_found(asset_id: str, field_name: str | None = None) -> ApiError:
    details: dict[str, Any] = {"assetId": asset_id}
    if field_name is not None:
        details["field"] = field_name
    return ApiError(404, "NotFoundError", "Asset not found", details)


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(16)}"


def _shown(value: float) -> str:
    """Numbers as a person writes them: 16, not 16.0; 2147483647, not 2.14748e+09."""
    return str(int(value)) if float(value).is_integer() else str(value)


def _is_number(value: Any) -> bool:
    # bool is an int in Python but not a number in JSON.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _safe_filename(name: str, fallback: str) -> str:
    cleaned = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "._-") else "_" for ch in name)
    cleaned = cleaned.strip("._")
    return cleaned[:120] or fallback


def _sniff_image(data: bytes) -> tuple[str, int, int] | None:
    """(MIME type, width, height) if Pillow can read `data` as an image, else None."""
    try:
        with Image.open(BytesIO(data)) as image:
            image_format, (width, height) = image.format, image.size
            image.verify()
    except Exception:  # Pillow reports bad data through many exception types.
        return None
    if image_format is None:
        return None
    mime = "image/jpeg" if image_format == "MPO" else Image.MIME.get(image_format, "application/octet-stream")
    return mime, width, height


def _upscaled_png(data: bytes, factor: float, max_edge: int) -> tuple[bytes, int, int]:
    """The image really resized with LANCZOS by `factor`, long edge capped at `max_edge`, as PNG."""
    with Image.open(BytesIO(data)) as opened:
        image: Image.Image = opened
        if image.mode not in ("RGB", "RGBA", "L", "LA"):
            # Palette images would be resized with NEAREST; convert so LANCZOS applies.
            image = image.convert("RGBA" if image.has_transparency_data else "RGB")
        width, height = image.size
        target = (max(1, round(width * factor)), max(1, round(height * factor)))
        longest = max(target)
        if longest > max_edge:
            # A simulator limit, not Scenario's: keeps memory and time bounded on a laptop.
            scale = max_edge / longest
            target = (max(1, round(target[0] * scale)), max(1, round(target[1] * scale)))
        resized = image.resize(target, Image.Resampling.LANCZOS)
        out = BytesIO()
        # Fast compression: outputs can reach 8192², and speed matters more than size here.
        resized.save(out, "PNG", compress_level=1)
    return out.getvalue(), target[0], target[1]


def _converted(data: bytes, pillow_format: str) -> bytes:
    with Image.open(BytesIO(data)) as opened:
        image: Image.Image = opened
        if pillow_format == "JPEG" and image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        elif image.mode not in ("RGB", "RGBA", "L", "LA"):
            image = image.convert("RGBA" if image.has_transparency_data else "RGB")
        out = BytesIO()
        image.save(out, pillow_format)
    return out.getvalue()


def _decode_base64_image(text: str) -> tuple[bytes, str]:
    """The bytes of `POST /assets`'s "image", and its form: "data_url" or "base64".

    Scenario's own clients send a data URL (`data:<mime>;base64,<...>`); the SDK's docs say base64.
    Both are accepted, line-wrapped base64 too, as a Node server's Buffer.from() would.
    """
    form = "base64"
    if text.startswith("data:"):
        header, _, text = text.partition(",")
        if not header.endswith(";base64"):
            raise _bad_request('"image" data URL must be base64-encoded', field="image")
        form = "data_url"
    try:
        return base64.b64decode("".join(text.split()), validate=True), form
    except (binascii.Error, ValueError):
        raise _bad_request('"image" is not valid base64', field="image") from None


async def _json_object(request: Request, *, optional: bool = False) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip() and optional:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        raise _bad_request("Request body must be valid JSON") from None
    if not isinstance(value, dict):
        raise _bad_request("Request body must be a JSON object")
    return value


def _reject_unknown_query(request: Request, allowed: tuple[str, ...]) -> None:
    """Query parameters outside the SDK's names for this route are refused, not ignored.

    A misspelt one (`dry_run`, `page_size`) would otherwise change what the call does without a word.
    """
    for key in request.query_params:
        if key not in allowed:
            raise _bad_request(
                f'Unknown query parameter "{key}"; allowed: {", ".join(allowed)}',
                field=key,
                allowed=list(allowed),
            )


def _bool_query(request: Request, name: str) -> bool | None:
    text = request.query_params.get(name)
    if text is None:
        return None
    if text not in ("true", "false"):
        raise _bad_request(f'"{name}" must be true or false (got {text!r})', field=name)
    return text == "true"


def _date_query(request: Request, name: str) -> datetime | None:
    text = request.query_params.get(name)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _bad_request(f'"{name}" must be an ISO 8601 date (got {text!r})', field=name) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _page_size(request: Request) -> int:
    text = request.query_params.get("pageSize")
    if text is None:
        return DEFAULT_PAGE_SIZE
    try:
        size = int(text)
    except ValueError:
        size = 0
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise _bad_request(
            f'"pageSize" must be an integer between 1 and {MAX_PAGE_SIZE} (got {text!r})',
            field="pageSize",
            min=1,
            max=MAX_PAGE_SIZE,
        )
    return size


# The sort key of each order of GET /jobs: [sequence], or [updatedAt, sequence].
_ORDER_KEY_TYPES: dict[str, tuple[type, ...]] = {"createdAt": (int,), "updatedAt": (str, int)}


def _pagination_token(order: str, key: list[Any]) -> str:
    """An opaque token: where the next page starts in the given order."""
    raw = json.dumps({"order": order, "after": key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _after_key(request: Request, order: str) -> list[Any] | None:
    token = request.query_params.get("paginationToken")
    if token is None:
        return None
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        after = decoded["after"] if isinstance(decoded, dict) and decoded.get("order") == order else None
        shape = _ORDER_KEY_TYPES[order]
        if (
            isinstance(after, list)
            and len(after) == len(shape)
            and all(type(item) is kind for item, kind in zip(after, shape, strict=True))
        ):
            return after
    except (binascii.Error, ValueError):
        pass
    raise _bad_request(
        '"paginationToken" is not a token from a previous page of this listing', field="paginationToken"
    )


def _reject_unknown_fields(body: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for key in body:
        if key not in allowed:
            raise _bad_request(
                f'Unknown field "{key}"; allowed fields: {", ".join(allowed)}',
                field=key,
                allowed=list(allowed),
            )


def _xml_error(status: int, code: str, message: str) -> Response:
    # The CDN and the part URLs are object storage, which answers in S3's XML, not Scenario's JSON.
    body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    return Response(body, status_code=status, media_type="application/xml")


Handler = Callable[[Request], Awaitable[Response]]


# ---------------------------------------------------------------------------
# The simulator
# ---------------------------------------------------------------------------


class Sandbox:
    """The simulated API.

    `app` is the ASGI app. `faults` holds the fault knobs. `requests` logs
    (method, path) of every request, control routes included. `jobs`, `assets`,
    `uploads` and `cdn_objects` (format conversions) are the in-memory stores.

    Job statuses are computed lazily from wall time when a job is read through
    the API, so `jobs[id].status` may lag until the next read.
    """

    def __init__(self, *, job_seconds: float = 6.0, max_output_edge: int = 8192) -> None:
        self.job_seconds = job_seconds
        self.max_output_edge = max_output_edge
        self.faults = Faults()
        self.requests: list[tuple[str, str]] = []
        self.route_counts: Counter[str] = Counter()
        self.jobs: dict[str, SandboxJob] = {}
        self.assets: dict[str, SandboxAsset] = {}
        self.uploads: dict[str, SandboxUpload] = {}
        self.cdn_objects: dict[str, CdnObject] = {}
        # How each `POST /assets` sent its image, in order: "data_url" or "base64" (bare).
        self.asset_image_forms: list[str] = []
        self._job_sequence = itertools.count(1)
        self._secret = secrets.token_bytes(32)
        # Made up: how long an upload stays "validating" after "complete".
        self._import_delay = min(1.0, max(job_seconds, 0.0) / 10)
        self.app = Starlette(
            routes=self._routes(),
            middleware=[Middleware(_RecordRequests, sandbox=self)],
            exception_handlers={HTTPException: _route_not_found, Exception: _unexpected_error},
        )

    def add_asset(self, data: bytes, name: str | None = None) -> str:
        """Store an image directly, as if uploaded earlier; return its asset id (for test setup)."""
        sniffed = _sniff_image(data)
        if sniffed is None:
            raise ValueError("not an image Pillow can read")
        asset = self._new_asset(data, *sniffed, name)
        self.assets[asset.id] = asset
        return asset.id

    def api_request_count(self) -> int:
        """Requests that would reach Scenario's infrastructure: /v1, the CDN and the part URLs."""
        return sum(1 for _, path in self.requests if path.startswith(("/v1/", "/cdn/", "/_parts/")))

    def _routes(self) -> list[Route]:
        api = self._api
        return [
            Route("/", self._index, methods=["GET"]),
            Route("/v1/models/{modelId}", api(self._get_model, public_token_ok=True), methods=["GET"]),
            Route("/v1/assets", api(self._post_asset), methods=["POST"]),
            Route("/v1/assets/{assetId}", api(self._get_asset), methods=["GET"]),
            Route("/v1/assets/{assetId}/download", api(self._download_asset), methods=["POST"]),
            Route("/v1/generate/custom/{modelId}", api(self._generate), methods=["POST"]),
            Route("/v1/jobs", api(self._list_jobs), methods=["GET"]),
            Route("/v1/jobs/{jobId}", api(self._get_job), methods=["GET"]),
            Route("/v1/jobs/{jobId}/action", api(self._job_action), methods=["POST"]),
            Route("/v1/uploads", api(self._create_upload), methods=["POST"]),
            Route("/v1/uploads/{uploadId}", api(self._get_upload), methods=["GET"]),
            Route("/v1/uploads/{uploadId}/action", api(self._upload_action), methods=["POST"]),
            Route("/cdn/{key}/{filename}", self._cdn, methods=["GET"]),
            Route("/_parts/{uploadId}/{number:int}", self._put_part, methods=["PUT"]),
            Route("/_sandbox/state", self._state, methods=["GET"]),
            Route("/_sandbox/faults", self._set_faults, methods=["POST"]),
            Route("/_sandbox/reset", self._reset, methods=["POST"]),
        ]

    # -- the /v1 wrapper: faults, auth, error shape -------------------------

    def _api(self, handler: Handler, *, public_token_ok: bool = False) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                response = await self._checked(handler, request, public_token_ok)
            except ApiError as error:
                response = self._error_response(error)
            if self.faults.latency_seconds > 0:
                # After the work, before the answer: a slow answer to a generate
                # that was nonetheless accepted is what makes client timeouts risky.
                await anyio.sleep(self.faults.latency_seconds)
            return response

        return endpoint

    async def _checked(self, handler: Handler, request: Request, public_token_ok: bool) -> Response:
        if self.faults.server_errors > 0:
            self.faults.server_errors -= 1
            raise ApiError(500, "InternalServerError", "Internal server error (simulated by the sandbox)")
        self._authenticate(request, public_token_ok)
        return await handler(request)

    def _authenticate(self, request: Request, public_token_ok: bool) -> None:
        header = request.headers.get("authorization", "")
        if public_token_ok and header == "public-auth-token":
            return
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                key, sep, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
            except (binascii.Error, ValueError):
                key, sep, secret = "", "", ""
            if key and sep and secret:
                return
        raise ApiError(
            401,
            "UnauthorizedError",
            "Missing or invalid credentials: send HTTP Basic auth with API_KEY:API_SECRET "
            "(the sandbox accepts any non-empty pair)",
        )

    def _error_response(self, error: ApiError) -> Response:
        body: dict[str, Any] = {"reason": error.reason, "name": error.name}
        if error.details:
            body["details"] = error.details
        headers = {}
        retry_after = self.faults.retry_after_seconds
        if retry_after is not None and (error.status == 429 or error.status >= 500):
            # Sent as given, decimals included, so tests can ask for short waits.
            headers["Retry-After"] = _shown(retry_after)
        return JSONResponse(body, status_code=error.status, headers=headers)

    # -- models -------------------------------------------------------------

    def _model(self, model_id: str) -> ModelSpec:
        model = MODELS.get(model_id)
        if model is None:
            raise ApiError(404, "NotFoundError", "Model not found", {"modelId": model_id})
        return model

    async def _get_model(self, request: Request) -> Response:
        return JSONResponse({"model": self._model(request.path_params["modelId"]).to_json()})

    # -- assets and the CDN --------------------------------------------------

    def _asset(self, asset_id: str) -> SandboxAsset:
        asset = self.assets.get(asset_id)
        if asset is None:
            raise _asset_not_found(asset_id)
        return asset

    def _new_asset(
        self,
        data: bytes,
        mime_type: str,
        width: int,
        height: int,
        name: str | None,
        *,
        parent_job_id: str | None = None,
    ) -> SandboxAsset:
        asset_id = _new_id("asset")
        extension = _EXTENSIONS.get(mime_type, mime_type.rpartition("/")[2] or "bin")
        filename = _safe_filename(name or "", f"{asset_id}.{extension}")
        # Made up: an upscale job's outputs have the source "upscale"; uploads are "uploaded".
        source = "uploaded" if parent_job_id is None else "upscale"
        return SandboxAsset(asset_id, filename, data, mime_type, width, height, _now(), source, parent_job_id)

    def _sign(self, resource: str, expires: int) -> str:
        return hmac.new(self._secret, f"{resource}\n{expires}".encode(), hashlib.sha256).hexdigest()

    def _signature_ok(self, resource: str, request: Request) -> tuple[bool, int]:
        try:
            expires = int(request.query_params.get("expires", ""))
        except ValueError:
            return False, 0
        expected = self._sign(resource, expires)
        return hmac.compare_digest(expected, request.query_params.get("sig", "")), expires

    def _cdn_url(self, request: Request, key: str, filename: str) -> str:
        # Built from the request's own base URL so it works on a real port and under ASGITransport.
        expires = int(time.time()) + CDN_URL_TTL_SECONDS
        signature = self._sign(f"{key}/{filename}", expires)
        return f"{request.base_url}cdn/{key}/{filename}?expires={expires}&sig={signature}"

    def _asset_json(self, request: Request, asset: SandboxAsset) -> dict[str, Any]:
        metadata: dict[str, Any] = {"kind": "image", "type": asset.source, "name": asset.filename}
        if asset.parent_job_id is not None:
            metadata["parentJobId"] = asset.parent_job_id
        return {
            "id": asset.id,
            "url": self._cdn_url(request, asset.id, asset.filename),
            "mimeType": asset.mime_type,
            "kind": "image",
            "status": "success",
            "source": asset.source,
            "metadata": metadata,
            "properties": {"size": len(asset.data), "width": asset.width, "height": asset.height},
            "privacy": "private",
            "authorId": SANDBOX_AUTHOR_ID,
            "ownerId": SANDBOX_OWNER_ID,
            "collectionIds": [],
            "tags": [],
            "editCapabilities": list(_IMAGE_EDIT_CAPABILITIES),
            "createdAt": _iso(asset.created_at),
            "updatedAt": _iso(asset.created_at),
        }

    async def _post_asset(self, request: Request) -> Response:
        body = await _json_object(request)
        _reject_unknown_fields(body, ("image", "name"))
        image, name = body.get("image"), body.get("name")
        if not isinstance(image, str) or not image:
            raise _bad_request(
                '"image" is required: a data URL (data:<mime>;base64,...) or base64', field="image"
            )
        if not isinstance(name, str):  # Required in the SDK's AssetUploadParams.
            raise _bad_request('"name" is required: the file name, a string', field="name")
        data, form = _decode_base64_image(image)
        self.asset_image_forms.append(form)
        sniffed = await run_in_threadpool(_sniff_image, data)
        if sniffed is None:
            raise _bad_request('"image" is not a supported image', field="image")
        asset = self._new_asset(data, *sniffed, name)
        self.assets[asset.id] = asset
        return JSONResponse({"asset": self._asset_json(request, asset)})

    async def _get_asset(self, request: Request) -> Response:
        asset = self._asset(request.path_params["assetId"])
        return JSONResponse({"asset": self._asset_json(request, asset)})

    async def _download_asset(self, request: Request) -> Response:
        asset = self._asset(request.path_params["assetId"])
        body = await _json_object(request, optional=True)
        _reject_unknown_fields(body, ("targetFormat",))
        target = body.get("targetFormat")
        if target is None:
            return JSONResponse(
                {"url": self._cdn_url(request, asset.id, asset.filename), "mimeType": asset.mime_type}
            )
        if isinstance(target, str) and target in _OTHER_SDK_FORMATS:
            raise _bad_request(
                f"The sandbox cannot convert an image to {target} (the real API may); "
                f"it converts to {', '.join(_DOWNLOAD_FORMATS)}",
                field="targetFormat",
                allowedValues=list(_DOWNLOAD_FORMATS),
            )
        if not isinstance(target, str) or target not in _DOWNLOAD_FORMATS:
            raise _bad_request(
                f'"targetFormat" must be one of {", ".join(_DOWNLOAD_FORMATS)} (got {target!r})',
                field="targetFormat",
                allowedValues=list(_DOWNLOAD_FORMATS),
            )
        pillow_format, mime_type = _DOWNLOAD_FORMATS[target]
        if mime_type == asset.mime_type:
            return JSONResponse(
                {"url": self._cdn_url(request, asset.id, asset.filename), "mimeType": mime_type}
            )
        # Converted once per (asset, format) and kept, so repeated downloads share one copy.
        key = f"{asset.id}.{target}"
        converted = self.cdn_objects.get(key)
        if converted is None:
            data = await run_in_threadpool(_converted, asset.data, pillow_format)
            stem = asset.filename.rpartition(".")[0] or asset.filename
            converted = CdnObject(f"{stem}.{target}", data, mime_type)
            self.cdn_objects[key] = converted
        return JSONResponse({"url": self._cdn_url(request, key, converted.filename), "mimeType": mime_type})

    async def _cdn(self, request: Request) -> Response:
        key, filename = request.path_params["key"], request.path_params["filename"]
        valid, expires = self._signature_ok(f"{key}/{filename}", request)
        if not valid:
            return _xml_error(403, "AccessDenied", "Access Denied")
        if self.faults.expire_urls or expires < time.time():
            return _xml_error(403, "AccessDenied", "Request has expired")
        stored: SandboxAsset | CdnObject | None = self.assets.get(key) or self.cdn_objects.get(key)
        if stored is None:
            return _xml_error(404, "NoSuchKey", "The specified key does not exist.")
        data, size = stored.data, len(stored.data)
        if self.faults.truncate_downloads > 0:
            self.faults.truncate_downloads -= 1
            # The headers promise every byte; the body stops halfway. Over a real
            # socket uvicorn then drops the connection, as a broken transfer would.
            data = data[: size // 2]
        headers = {"Content-Length": str(size), "Cache-Control": "private, max-age=86400"}
        return StreamingResponse(_chunks(data), media_type=stored.mime_type, headers=headers)

    # -- generate -------------------------------------------------------------

    def _validated_inputs(self, model: ModelSpec, body: dict[str, Any]) -> dict[str, Any]:
        """The inputs as the real API keeps them, or an ApiError naming the first bad field."""
        names = [spec.name for spec in model.inputs]
        for key in body:
            if key not in names:
                raise _bad_request(
                    f'Unknown field "{key}" for {model.id}; allowed fields: {", ".join(names)}',
                    field=key,
                    allowed=names,
                )
        accepted: dict[str, Any] = {}
        for spec in model.inputs:
            if spec.name not in body:
                if spec.required:
                    raise _bad_request(f'"{spec.name}" is required', field=spec.name)
                continue
            value = body[spec.name]
            if spec.is_array and not isinstance(value, list):
                continue  # The real API silently drops a bare scalar where an array is expected.
            self._check_value(spec, value)
            accepted[spec.name] = value
        return accepted

    def _check_value(self, spec: ModelInput, value: Any) -> None:
        name = spec.name
        if spec.type == "file":
            if not isinstance(value, str) or not value:
                raise _bad_request(f'"{name}" must be an asset id (asset_...)', field=name)
            if value not in self.assets:
                raise _asset_not_found(value, name)
        elif spec.type == "string":
            if not isinstance(value, str):
                raise _bad_request(f'"{name}" must be a string', field=name)
            if spec.allowed_values and value not in spec.allowed_values:
                raise _bad_request(
                    f'"{name}" must be one of {", ".join(spec.allowed_values)} (got {value!r})',
                    field=name,
                    allowedValues=list(spec.allowed_values),
                )
        elif spec.type == "boolean":
            if not isinstance(value, bool):
                raise _bad_request(f'"{name}" must be a boolean (true or false)', field=name)
        elif spec.type == "number":
            self._check_number(spec, name, value)
        else:
            self._check_array(spec, value)

    def _check_number(self, spec: ModelInput, name: str, value: Any) -> None:
        low, high = spec.min, spec.max
        if low is not None and high is not None:
            wanted = f"a number between {_shown(low)} and {_shown(high)}"
        else:
            wanted = "a number"
        if not _is_number(value) or (low is not None and value < low) or (high is not None and value > high):
            raise _bad_request(f'"{name}" must be {wanted} (got {value!r})', field=name, min=low, max=high)

    def _check_array(self, spec: ModelInput, items: list[Any]) -> None:
        name = spec.name
        if spec.max_length is not None and len(items) > spec.max_length:
            raise _bad_request(
                f'"{name}" accepts at most {spec.max_length} items (got {len(items)})',
                field=name,
                maxLength=spec.max_length,
            )
        for index, item in enumerate(items):
            item_name = f"{name}[{index}]"
            if spec.type == "number_array":
                if not _is_number(item):
                    raise _bad_request(f'"{item_name}" must be a number (got {item!r})', field=name)
            elif not isinstance(item, str) or not item:
                raise _bad_request(f'"{item_name}" must be a non-empty string (got {item!r})', field=name)
            elif spec.type == "file_array" and item not in self.assets:
                raise _asset_not_found(item, name)

    async def _generate(self, request: Request) -> Response:
        _reject_unknown_query(request, _GENERATE_QUERY)
        dry_run = request.query_params.get("dryRun")
        if dry_run is not None and dry_run not in _DRY_RUN_VALUES:
            # Anything else might be taken for a real run: refused rather than billed.
            raise _bad_request(
                f'"dryRun" must be one of {", ".join(_DRY_RUN_VALUES)} (got {dry_run!r})',
                field="dryRun",
                allowedValues=list(_DRY_RUN_VALUES),
            )
        _bool_query(request, "ipDetection")  # Accepted and ignored: detection runs on Enterprise plans only.
        model = self._model(request.path_params["modelId"])
        # Made up: a model the plan lacks is refused before anything else, dry runs included.
        self._check_model_access(model)
        inputs = self._validated_inputs(model, await _json_object(request))
        source = self.assets[inputs["image"]]
        factor = float(inputs.get("upscaleFactor", model.input("upscaleFactor").default))
        cost = model.cost(source.width, source.height, factor)
        costs = {
            "creativeUnitsCost": cost,
            "creativeUnitsDiscount": 0,
            "costDetails": {"custom-generation": cost},
        }
        if dry_run is not None:
            # The real API's 269 carries an empty job (SCENARIO_API.md §1), outside the SDK's types.
            return JSONResponse({**costs, "job": {}}, status_code=269)
        self._enforce_plan_limit()
        job = self._start_job(model, inputs, source, factor, cost)
        if self.faults.accept_then_500 > 0:
            self.faults.accept_then_500 -= 1
            logger.info("sandbox: job %s accepted and billed, answering 500 (accept_then_500)", job.id)
            raise ApiError(500, "InternalServerError", "Internal server error (simulated by the sandbox)")
        return JSONResponse({"job": job.to_api(), **costs})

    def _check_model_access(self, model: ModelSpec) -> None:
        if model.id not in self.faults.restricted_models:
            return
        raise ApiError(
            403,
            "ModelAccessRestrictedError",
            f"Your plan does not include the model {model.id}; upgrade to use it (simulated by the sandbox)",
            # Made up: how a plan is named in `requiredPlan`.
            {"modelId": model.id, "requiredPlan": "pro"},
        )

    def _enforce_plan_limit(self) -> None:
        limit = self.faults.plan_limit
        if limit is None:
            return
        for job in self.jobs.values():
            self._advance(job)
        in_flight = sum(1 for job in self.jobs.values() if job.status not in TERMINAL_STATUSES)
        if in_flight < limit:
            return
        if limit == 0:
            reason = (
                "Your plan does not include parallel custom jobs: upgrade the plan to run this model "
                "(simulated by the sandbox)"
            )
        else:
            reason = (
                f"Your plan allows {limit} custom jobs in parallel; wait for a running job to finish "
                "(simulated by the sandbox)"
            )
        # The shape of a live capture (SCENARIO_API.md §5): actionValue is the count in use.
        details = {
            "actionName": "parallel-custom-jobs",
            "actionLimit": limit,
            "actionValue": in_flight,
            "limitScope": "team",
        }
        raise ApiError(429, "PlanLimitReachedError", reason, details)

    def _start_job(
        self, model: ModelSpec, inputs: dict[str, Any], source: SandboxAsset, factor: float, cost: int
    ) -> SandboxJob:
        will_fail = self.faults.fail_next_jobs > 0
        if will_fail:
            self.faults.fail_next_jobs -= 1
        created = _now()
        job = SandboxJob(
            id=_new_id("job"),
            model_id=model.id,
            inputs=inputs,
            cost=cost,
            created_at=created,
            started=time.monotonic(),
            duration=max(self.job_seconds, 0.0),
            will_fail=will_fail,
            sequence=next(self._job_sequence),
            history=[("pending", created)],
        )
        self.jobs[job.id] = job
        if not will_fail:
            # Rendered off the event loop from the start; the job cannot succeed before it is done.
            threading.Thread(
                target=self._render, args=(job, source.data, factor), name=f"sandbox-{job.id}", daemon=True
            ).start()
        return job

    def _render(self, job: SandboxJob, data: bytes, factor: float) -> None:
        try:
            png, width, height = _upscaled_png(data, factor, self.max_output_edge)
        except Exception as exc:  # Any Pillow failure becomes a failed job, as a model crash would.
            logger.warning("sandbox: could not upscale the input of %s: %s", job.id, exc)
            job.render_error = f"Simulated upscale failed: {exc}"
            return
        job.rendered = RenderedOutput(png, width, height, _now())

    # -- jobs ---------------------------------------------------------------

    def _job(self, job_id: str) -> SandboxJob:
        job = self.jobs.get(job_id)
        if job is None:
            raise ApiError(404, "NotFoundError", "Job not found", {"jobId": job_id})
        self._advance(job)
        return job

    def _advance(self, job: SandboxJob) -> None:
        """Bring a job up to date with the time elapsed since it was created."""
        if job.status in TERMINAL_STATUSES:
            return
        elapsed = time.monotonic() - job.started
        fraction = elapsed / job.duration if job.duration > 0 else math.inf
        for status, start in _TIMELINE:
            if fraction < start or job.reached(status):
                continue
            reached_at = job.created_at + timedelta(seconds=start * job.duration)
            if status == "finalizing" and job.will_fail:
                job.error, job.hint = _SIMULATED_FAILURE_ERROR, _SIMULATED_FAILURE_HINT
                self._set_status(job, "failure", reached_at)
                return
            self._set_status(job, status, reached_at)
        if fraction >= 1.0:
            if job.render_error is not None:
                job.error = job.render_error
                job.hint = "The sandbox could not process this image; try another file."
                self._set_status(job, "failure", _now())
                return
            if job.rendered is not None:
                self._finish_successfully(job)
                return
            # Still rendering: stay in "finalizing", as a real job does while its outputs are written.
        if job.status == "in-progress":
            share = (fraction - _IN_PROGRESS_START) / (_FINALIZING_START - _IN_PROGRESS_START)
            job.progress = round(0.9 * min(max(share, 0.0), 1.0), 3)
        elif job.status == "finalizing":
            share = (fraction - _FINALIZING_START) / (1.0 - _FINALIZING_START)
            job.progress = round(0.9 + 0.09 * min(max(share, 0.0), 1.0), 3)

    def _set_status(self, job: SandboxJob, status: str, at: datetime) -> None:
        job.status = status
        job.history.append((status, at))

    def _finish_successfully(self, job: SandboxJob) -> None:
        rendered = job.rendered
        assert rendered is not None
        asset = self._new_asset(
            rendered.data, "image/png", rendered.width, rendered.height, None, parent_job_id=job.id
        )
        self.assets[asset.id] = asset
        job.asset_ids = [asset.id]
        job.rendered = None  # The asset now holds the bytes; keep one reference.
        nominal_end = job.created_at + timedelta(seconds=job.duration)
        job.progress = 1.0
        self._set_status(job, "success", max(nominal_end, rendered.done_at))

    async def _get_job(self, request: Request) -> Response:
        return JSONResponse({"job": self._job(request.path_params["jobId"]).to_api()})

    async def _list_jobs(self, request: Request) -> Response:
        """`GET /jobs`, with the SDK's query parameters (`jobs.list`): newest first, in pages."""
        _reject_unknown_query(request, _JOBS_QUERY)
        query = request.query_params
        page_size = _page_size(request)
        status = query.get("status")
        if status is not None and status not in JOB_STATUSES:
            raise _bad_request(
                f'"status" must be one of {", ".join(JOB_STATUSES)} (got {status!r})',
                field="status",
                allowedValues=list(JOB_STATUSES),
            )
        types: list[str] | None = None
        if "types" in query:  # comma separated; "if types is defined, type will be ignored"
            types = query["types"].split(",")
        elif "type" in query:
            types = [query["type"]]
        workflow_id, author_id = query.get("workflowId"), query.get("authorId")
        created_after = _date_query(request, "createdAfter")
        updated_after = _date_query(request, "updatedAfter")
        _bool_query(request, "hideResults")  # Accepted and ignored: the sandbox hides no results.
        # These filters sort by update date, so a creation-date bound makes no sense with them.
        by_update = status is not None or types is not None or workflow_id is not None
        if created_after is not None and by_update:
            raise _bad_request(
                '"createdAfter" is only allowed without "status", "type", "types" and "workflowId" '
                '(which sort jobs by update date): use "updatedAfter" with them',
                field="createdAfter",
            )
        if updated_after is not None and not by_update:
            raise _bad_request(
                '"updatedAfter" is only allowed with "status", "type", "types" or "workflowId": '
                'without them jobs are sorted by creation date, use "createdAfter"',
                field="updatedAfter",
            )
        order = "updatedAt" if by_update else "createdAt"
        after = _after_key(request, order)
        rows: list[tuple[list[Any], SandboxJob]] = []
        for job in self.jobs.values():
            self._advance(job)
            # Inclusive, so a client that noted the time just before posting always finds its job.
            if created_after is not None and job.created_at < created_after:
                continue
            if updated_after is not None and job.updated_at < updated_after:
                continue
            if status is not None and job.status != status:
                continue
            if types is not None and JOB_TYPE not in types:
                continue
            if workflow_id is not None:
                continue  # The sandbox runs no workflows.
            if author_id is not None and author_id != SANDBOX_AUTHOR_ID:
                continue
            key: list[Any] = [_iso(job.updated_at), job.sequence] if by_update else [job.sequence]
            if after is None or key < after:
                rows.append((key, job))
        rows.sort(key=lambda row: row[0], reverse=True)
        if rows and self.faults.empty_job_pages > 0:
            # "A page can hold fewer jobs than pageSize, or none, while nextPaginationToken is set"
            # (the SDK's jobs.list): a token to the same place, just above the first row.
            self.faults.empty_job_pages -= 1
            first = rows[0][0]
            return JSONResponse(
                {"jobs": [], "nextPaginationToken": _pagination_token(order, [*first[:-1], first[-1] + 1])}
            )
        page = rows[:page_size]
        body: dict[str, Any] = {"jobs": [job.to_api() for _, job in page]}
        if len(rows) > page_size:
            body["nextPaginationToken"] = _pagination_token(order, page[-1][0])
        return JSONResponse(body)

    async def _job_action(self, request: Request) -> Response:
        job = self._job(request.path_params["jobId"])
        body = await _json_object(request)
        _reject_unknown_fields(body, ("action",))
        if body.get("action") != "cancel":
            raise _bad_request('"action" must be "cancel"', field="action")
        if self.faults.cancel_refused:
            raise _bad_request("Cannot cancel this type of job")
        if job.status in TERMINAL_STATUSES:
            raise _bad_request(f"Cannot cancel a job whose status is {job.status}", status=job.status)
        self._set_status(job, "canceled", _now())
        return JSONResponse({"job": job.to_api()})

    # -- multipart uploads (SCENARIO_API.md §3) ---------------------------

    def _upload(self, upload_id: str) -> SandboxUpload:
        upload = self.uploads.get(upload_id)
        if upload is None:
            raise ApiError(404, "NotFoundError", "Upload not found", {"uploadId": upload_id})
        self._advance_upload(upload)
        return upload

    async def _create_upload(self, request: Request) -> Response:
        body = await _json_object(request)
        _reject_unknown_fields(body, ("fileName", "contentType", "fileSize", "parts", "kind"))
        file_name, content_type = body.get("fileName"), body.get("contentType")
        file_size, part_count, kind = body.get("fileSize"), body.get("parts"), body.get("kind")
        if not isinstance(file_name, str) or not file_name:
            raise _bad_request('"fileName" is required', field="fileName")
        if content_type is not None and content_type not in ACCEPTED_IMAGE_TYPES:
            raise _bad_request(
                f'"contentType" must be one of {", ".join(sorted(ACCEPTED_IMAGE_TYPES))} '
                f"(got {content_type!r})",
                field="contentType",
            )
        if not isinstance(file_size, int) or isinstance(file_size, bool) or file_size < 1:
            raise _bad_request('"fileSize" must be a positive integer (bytes)', field="fileSize")
        if (
            not isinstance(part_count, int)
            or isinstance(part_count, bool)
            or not 1 <= part_count <= MAX_PARTS
        ):
            raise _bad_request(f'"parts" must be an integer between 1 and {MAX_PARTS}', field="parts")
        if kind != "image":
            raise _bad_request(f'"kind" must be "image" (got {kind!r})', field="kind")
        created = _now()
        upload_id = _new_id("upload")
        expires = int(time.time()) + PART_URL_TTL_SECONDS
        part_urls = []
        for number in range(1, part_count + 1):
            signature = self._sign(f"{upload_id}/{number}", expires)
            part_urls.append(
                {
                    "number": number,
                    "url": f"{request.base_url}_parts/{upload_id}/{number}?expires={expires}&sig={signature}",
                    "expires": _iso(datetime.fromtimestamp(expires, UTC)),
                }
            )
        upload = SandboxUpload(
            id=upload_id,
            file_name=file_name,
            content_type=content_type,
            file_size=file_size,
            part_count=part_count,
            kind=kind,
            created_at=created,
            part_urls=part_urls,
            updated_at=created,
        )
        self.uploads[upload_id] = upload
        return JSONResponse({"upload": self._upload_json(upload)})

    async def _put_part(self, request: Request) -> Response:
        upload_id, number = request.path_params["uploadId"], request.path_params["number"]
        checksum_headers = [name for name in request.headers if name.lower().startswith("x-amz-checksum-")]
        if checksum_headers or "x-amz-sdk-checksum-algorithm" in request.headers:
            # Scenario's presigned part URLs do not sign checksums, so S3 refuses them.
            return _xml_error(400, "InvalidRequest", "Checksum headers are not signed in this presigned URL")
        if "authorization" in request.headers:
            # S3 refuses a second auth mechanism on a presigned URL (and the API secret must not go there).
            return _xml_error(400, "InvalidArgument", "Only one auth mechanism allowed")
        valid, expires = self._signature_ok(f"{upload_id}/{number}", request)
        if not valid:
            return _xml_error(
                403, "SignatureDoesNotMatch", "The request signature we calculated does not match"
            )
        if expires < time.time():
            return _xml_error(403, "AccessDenied", "Request has expired")
        data = await request.body()
        upload = self.uploads.get(upload_id)
        # Checked after reading the body: "complete" may have been called meanwhile.
        if upload is None or upload.status != "pending":
            return _xml_error(404, "NoSuchUpload", "The specified upload does not exist.")
        if not 1 <= number <= upload.part_count:
            return _xml_error(
                400, "InvalidArgument", f"Part number must be between 1 and {upload.part_count}"
            )
        upload.parts[number] = data
        upload.parts_received += 1
        etag = hashlib.md5(data, usedforsecurity=False).hexdigest()
        return Response(status_code=200, headers={"ETag": f'"{etag}"'})

    async def _upload_action(self, request: Request) -> Response:
        upload = self._upload(request.path_params["uploadId"])
        body = await _json_object(request)
        _reject_unknown_fields(body, ("action",))
        if body.get("action") != "complete":
            raise _bad_request('"action" must be "complete"', field="action")
        if upload.status != "pending":
            raise _bad_request(f"Upload is already {upload.status}", status=upload.status)
        upload.status, upload.updated_at = "validating", _now()
        upload.completed_at = time.monotonic()
        upload.outcome = await run_in_threadpool(self._assemble, upload)
        return JSONResponse({"upload": self._upload_json(upload)})

    def _assemble(self, upload: SandboxUpload) -> SandboxAsset | str:
        """The asset the parts make, or why they make none. Runs in a worker thread."""
        missing = [number for number in range(1, upload.part_count + 1) if number not in upload.parts]
        if missing:
            return f"Parts never uploaded: {missing}"
        for number in range(1, upload.part_count):
            if len(upload.parts[number]) < MIN_PART_BYTES:
                return (
                    f"Part {number} is {len(upload.parts[number])} bytes; every part but the last "
                    f"must be at least {MIN_PART_BYTES} bytes (5 MiB)"
                )
        received = sum(len(part) for part in upload.parts.values())
        if received != upload.file_size:
            return f"Received {received} bytes but fileSize is {upload.file_size}"
        data = b"".join(upload.parts[number] for number in range(1, upload.part_count + 1))
        upload.parts.clear()  # The joined bytes become the asset's one stored copy.
        sniffed = _sniff_image(data)
        if sniffed is None:
            return "The uploaded file is not a supported image"
        return self._new_asset(data, *sniffed, upload.file_name)

    def _advance_upload(self, upload: SandboxUpload) -> None:
        if upload.status != "validating" or upload.outcome is None or upload.completed_at is None:
            return
        if time.monotonic() < upload.completed_at + self._import_delay:
            return
        if isinstance(upload.outcome, SandboxAsset):
            self.assets[upload.outcome.id] = upload.outcome
            upload.status, upload.entity_id = "imported", upload.outcome.id
        else:
            upload.status, upload.error_message = "failed", upload.outcome
        upload.outcome, upload.updated_at = None, _now()

    def _upload_json(self, upload: SandboxUpload) -> dict[str, Any]:
        described: dict[str, Any] = {
            "id": upload.id,
            "status": upload.status,
            "source": "multipart",
            "fileName": upload.file_name,
            "contentType": upload.content_type,
            "fileSize": upload.file_size,
            "kind": upload.kind,
            "partsCount": upload.part_count,
            "parts": upload.part_urls,
            "authorId": SANDBOX_AUTHOR_ID,
            "ownerId": SANDBOX_OWNER_ID,
            "entityId": upload.entity_id,
            "errorMessage": upload.error_message,
            "createdAt": _iso(upload.created_at),
            "updatedAt": _iso(upload.updated_at or upload.created_at),
        }
        return {key: value for key, value in described.items() if value is not None}

    async def _get_upload(self, request: Request) -> Response:
        return JSONResponse({"upload": self._upload_json(self._upload(request.path_params["uploadId"]))})

    # -- outside the API: index and control routes -------------------------

    async def _index(self, request: Request) -> Response:
        return JSONResponse(
            {
                "simulator": True,
                "name": "scenario-upscale-mcp sandbox",
                "message": "This is the scenario-upscale-mcp simulator, not Scenario's API. "
                "Nothing here is billed and no image leaves this machine.",
                "apiBaseUrl": f"{request.base_url}v1",
                "models": list(MODELS),
            }
        )

    async def _state(self, request: Request) -> Response:
        uploads = {
            upload.id: {"status": upload.status, "partsReceived": upload.parts_received}
            for upload in self.uploads.values()
        }
        return JSONResponse(
            {
                "simulator": True,
                "faults": asdict(self.faults),
                "requestCount": len(self.requests),
                "apiRequestCount": self.api_request_count(),
                "requestsPerRoute": dict(self.route_counts),
                "jobs": list(self.jobs),
                "assets": len(self.assets),
                "assetImageForms": list(self.asset_image_forms),
                "uploads": uploads,
            }
        )

    async def _set_faults(self, request: Request) -> Response:
        try:
            body = await _json_object(request)
            changes = {name: _fault_value(name, value) for name, value in body.items()}
        except ApiError as error:
            return self._error_response(error)
        for name, value in changes.items():
            setattr(self.faults, name, value)
        logger.info("sandbox: faults now %s", asdict(self.faults))
        return JSONResponse({"faults": asdict(self.faults)})

    async def _reset(self, request: Request) -> Response:
        # In place, so code holding `sandbox.faults` sees the reset.
        for fault in fields(Faults):
            setattr(self.faults, fault.name, getattr(Faults(), fault.name))
        self.requests.clear()
        self.route_counts.clear()
        self.asset_image_forms.clear()
        return JSONResponse({"faults": asdict(self.faults)})


def _fault_value(name: str, value: Any) -> Any:
    if name not in _FAULT_KINDS:
        raise _bad_request(f'Unknown fault "{name}"; known: {", ".join(_FAULT_KINDS)}', field=name)
    kind, nullable = _FAULT_KINDS[name]
    if value is None and nullable:
        return None
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if kind == "float" and _is_number(value) and value >= 0:
        return float(value)
    if kind == "model ids":
        if isinstance(value, list) and all(isinstance(item, str) and item in MODELS for item in value):
            return list(value)
        raise _bad_request(f'Fault "{name}" must be a list of model ids among: {", ".join(MODELS)}')
    raise _bad_request(f'Fault "{name}" must be a non-negative {kind}' + (" or null" if nullable else ""))


async def _chunks(data: bytes) -> AsyncIterator[memoryview]:
    # Slices of a memoryview share the stored bytes: a 256 MB asset is never copied per request.
    view = memoryview(data)
    for start in range(0, len(view), _CDN_CHUNK_BYTES):
        yield view[start : start + _CDN_CHUNK_BYTES]


async def _route_not_found(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    headers = exc.headers if isinstance(exc, HTTPException) else None  # e.g. Allow on a 405
    name = {404: "NotFoundError", 405: "MethodNotAllowedError"}.get(status, "BadRequestError")
    reason = f"No such route in the sandbox: {request.method} {request.url.path}"
    return JSONResponse({"reason": reason, "name": name}, status_code=status, headers=headers)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    # Runs outside the middleware stack, so it sets the sandbox header itself.
    logger.error("sandbox: unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    body = {"reason": "Unexpected error in the sandbox simulator", "name": "InternalServerError"}
    return JSONResponse(body, status_code=500, headers={SANDBOX_HEADER: "simulator"})


class _RecordRequests:
    """Logs every request and marks every response as the simulator's."""

    def __init__(self, app: ASGIApp, sandbox: Sandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        self.sandbox.requests.append((method, path))

        async def send_marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (SANDBOX_HEADER.encode(), b"simulator")]
            await send(message)

        try:
            await self.app(scope, receive, send_marked)
        finally:
            route = scope.get("route")  # set by the router once it has matched
            self.sandbox.route_counts[f"{method} {getattr(route, 'path', path)}"] += 1


# ---------------------------------------------------------------------------
# Running it
# ---------------------------------------------------------------------------


def _require_loopback(host: str) -> None:
    # The simulator accepts any credentials: it must never listen beyond this machine.
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"The sandbox only listens on loopback addresses, not {host!r}")


@contextmanager
def serve_in_thread(sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run uvicorn in a daemon thread on loopback; yield the API base URL; stop on exit.

    The URL looks like "http://127.0.0.1:54321/v1"; port 0 picks a free port.
    """
    _require_loopback(host)
    config = uvicorn.Config(
        sandbox.app,
        host=host,
        port=port,
        http="h11",
        ws="none",
        lifespan="off",
        access_log=False,
        log_config=None,  # leave the host process's logging alone
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="scenario-sandbox", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"The sandbox server did not start on {host}:{port}")
        time.sleep(0.01)
    bound_port = server.servers[0].sockets[0].getsockname()[1]
    url_host = f"[{host}]" if ":" in host else host
    try:
        yield f"http://{url_host}:{bound_port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def main(argv: list[str] | None = None) -> None:
    """`python -m scenario_upscale_mcp.sandbox --port N [--job-seconds S]`: serve until Ctrl-C.

    Logs the base URL to stderr (stdout stays free, as everywhere in this project).
    """
    parser = argparse.ArgumentParser(
        prog="python -m scenario_upscale_mcp.sandbox",
        description="Serve the scenario-upscale-mcp simulator of Scenario's API on loopback.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default)")
    parser.add_argument("--job-seconds", type=float, default=6.0, help="how long a job takes (default 6)")
    parser.add_argument("--max-output-edge", type=int, default=8192, help="long-edge cap of outputs, px")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    sandbox = Sandbox(job_seconds=args.job_seconds, max_output_edge=args.max_output_edge)
    with serve_in_thread(sandbox, args.host, args.port) as base_url:
        logger.info("Scenario API simulator (not Scenario's API) listening at %s", base_url)
        logger.info("Use SCENARIO_BASE_URL=%s and any non-empty API key and secret. Ctrl-C stops.", base_url)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            logger.info("stopping the sandbox")


if __name__ == "__main__":
    main()
