"""What the tools share: the server state they reach, argument types, the job shape, registration metadata."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field

from scenario_upscale_mcp.api.answers import Job
from scenario_upscale_mcp.outputs.writing import SavedFile
from scenario_upscale_mcp.state import AppState

ToolContext = Context[AppState, Any]


def app_state(ctx: ToolContext) -> AppState:
    state: AppState = ctx.request_context.lifespan_context
    return state


@dataclass(frozen=True)
class ModelSpec:
    model_id: str
    tag: str  # short name used in output file names
    image_list_field: str  # the input holding extra reference images


UPSCALE_V3 = ModelSpec(model_id="model_upscale-v3", tag="upscale-v3", image_list_field="styleImages")
TEXTURE_UPSCALE = ModelSpec(
    model_id="model_sc-upscale-flux-texture", tag="texture", image_list_field="imagePrompt"
)
MODELS = {spec.model_id: spec for spec in (UPSCALE_V3, TEXTURE_UPSCALE)}


@dataclass(frozen=True)
class ToolSpec:
    """A tool as registered: its handler (whose signature is the input schema) and its metadata."""

    fn: Callable[..., Any]
    title: str
    annotations: ToolAnnotations

    @property
    def name(self) -> str:
        return self.fn.__name__


# --- argument types ----------------------------------------------------------------------------------
#
# Plain `float`, `int`, `bool` and `str`: `build_tool` (scenario_upscale_mcp/app.py) makes every tool's
# arguments strict and finite. A boolean is only true or false, text only a string, a number never a
# boolean and never NaN or Infinity; the one conversion is a number sent as text that is exactly a JSON
# number ("4", "0.25"), read as that number.

IMAGE_REFERENCE_HELP = (
    "an asset id (asset_...); a local image file as an absolute path, a ~/ path or a file:// URI "
    "(must be under SCENARIO_ALLOWED_DIRS); an https:// URL on a public host; or a data: URI. Files, "
    "URLs and data URIs are uploaded for you (JPEG, PNG, GIF, WebP, AVIF or TIFF)"
)
# No length bound: a data: URI is as long as its image; its decoded size is capped instead.
ImageReference = Annotated[str, Field(min_length=1, description=f"Image: {IMAGE_REFERENCE_HELP}.")]
JobId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="A job id as returned by an upscale tool (e.g. job_abc123).",
    ),
]
DryRun = Annotated[
    bool,
    Field(
        description="If true, only return the cost estimate in creative units; nothing is submitted or billed."
    ),
]
Wait = Annotated[
    float,
    Field(
        ge=0,
        le=3600,
        description=(
            "Seconds to wait for the job before answering (0 = answer at once with the job id). The "
            "default stays under desktop hosts' ~60 s tool-call limit; a job still running after it keeps "
            "running and can be picked up with get_job."
        ),
    ),
]
AllowDuplicate = Annotated[
    bool,
    Field(
        description=(
            "Submit even if an identical request is still running or succeeded in the last 10 minutes. "
            "By default that earlier job is returned instead, so a retried call is never billed twice."
        )
    ),
]
OutputDir = Annotated[
    str | None,
    Field(
        description=(
            "Folder to save results in: absolute, ~/..., or relative to the server's output folder. Must be "
            "inside the output folder or SCENARIO_ALLOWED_DIRS. Default: the output folder."
        )
    ),
]


class _GivenMarker:
    def __repr__(self) -> str:
        return "GIVEN"


GIVEN = _GivenMarker()
Given = Annotated[frozenset[str], GIVEN]
"""A handler parameter that is not a tool argument: the names of the arguments the caller actually
gave, whatever their values (the others took their defaults).

`build_tool` (scenario_upscale_mcp/app.py) leaves a parameter of this type out of the input schema
and fills it on every call from the validated arguments' `model_fields_set`, the way the SDK fills
`Context`. The model tools use it to send only what the caller set (see `upscale_flow.run_upscale`).
"""


# --- the job shape, the same in every result ---------------------------------------------------------


class ResultModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OutputFile(ResultModel):
    assetId: str = Field(description="The output's Scenario asset id.")
    path: str | None = Field(default=None, description="Where the file was saved; null until saved.")
    mimeType: str | None = None
    width: int | None = None
    height: int | None = None
    bytes: int | None = Field(default=None, description="File size in bytes.")

    @classmethod
    def saved(cls, asset_id: str, file: SavedFile) -> OutputFile:
        return cls(
            assetId=asset_id,
            path=str(file.path),
            mimeType=file.mime_type,
            width=file.width,
            height=file.height,
            bytes=file.bytes,
        )


class JobView(ResultModel):
    jobId: str | None = Field(description="The Scenario job id (null for a dry run, which creates no job).")
    model: str = Field(description="The model id, e.g. model_upscale-v3.")
    status: str = Field(
        description=(
            "The API's status: pending, queued, warming-up, in-progress, finalizing, success, failure or "
            "canceled. Also not-submitted (a dry run), not-found (the API does not know the job id) and "
            "unknown (the job could not be checked just now)."
        )
    )
    progress: float = Field(ge=0, le=1, description="0 to 1.")
    creativeUnitsCost: float | None = Field(default=None, description="Cost in creative units, when known.")
    error: str | None = Field(default=None, description="The API's error message for a failed job, verbatim.")
    hint: str | None = Field(default=None, description="The API's hint for a failed job, verbatim.")
    outputs: list[OutputFile] = Field(default_factory=list)
    notice: str | None = Field(
        default=None,
        description="What the server has to add: e.g. an earlier identical job was returned, or saving failed.",
    )

    @classmethod
    def of(
        cls,
        job: Job,
        model: str,
        *,
        cost: float | None = None,
        outputs: list[OutputFile] | None = None,
        notice: str | None = None,
    ) -> JobView:
        if cost is None and job.billing is not None:
            cost = job.billing.cu_cost
        if outputs is None:
            outputs = [OutputFile(assetId=asset_id) for asset_id in job.metadata.asset_ids]
        return cls(
            jobId=job.job_id,
            model=model,
            status=job.status,
            progress=min(1.0, max(0.0, job.progress)),
            creativeUnitsCost=cost,
            error=job.metadata.error,
            hint=job.metadata.hint,
            outputs=outputs,
            notice=notice,
        )


def structured_result(view: BaseModel, summary: str) -> CallToolResult:
    """A tool answer: the model as structured content, and a short sentence for the assistant to read."""
    return CallToolResult(
        content=[TextContent(text=summary)], structured_content=view.model_dump(mode="json")
    )


def job_summary(view: JobView) -> str:
    """One line on a job as it stands."""
    text = f"Job {view.jobId} ({view.model}) is {view.status}"
    if view.status not in ("success", "failure", "canceled"):
        text += f" at {view.progress:.0%}"
    if view.creativeUnitsCost is not None:
        text += f"; cost {view.creativeUnitsCost:g} creative units"
    if view.error:
        text += f". Error: {view.error}"
    if view.hint:
        text += f" Hint: {view.hint}"
    if view.outputs:
        text += f". Outputs: {', '.join(o.path or o.assetId for o in view.outputs)}"
    text += "."
    if view.notice:
        text += f" {view.notice}"
    return text
