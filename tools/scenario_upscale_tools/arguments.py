"""What a tool handler is given: the shared argument types, `Given`, and the context through which it
reaches the service.

Plain `float`, `int`, `bool` and `str`: `build_tool` (scenario_upscale_mcp/app.py) makes every tool's
arguments strict and finite. A boolean is only true or false, text only a string, a number never a
boolean and never NaN or Infinity; the one conversion is a number sent as text that is exactly a JSON
number ("4", "0.25"), read as that number.
"""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context
from pydantic import Field

from scenario_upscale_mcp.service import Upscaler

ToolContext = Context[Upscaler, Any]


def upscaler_of(ctx: ToolContext) -> Upscaler:
    """The service, as the server's lifespan made it."""
    upscaler: Upscaler = ctx.request_context.lifespan_context
    return upscaler


# --- argument types shared by several tools ----------------------------------------------------------

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
`Context`. The model tools use it to send only what the caller set (see `upscale.run_upscale`).
"""
