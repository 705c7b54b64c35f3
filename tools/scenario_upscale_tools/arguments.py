"""What a tool handler is given: the shared argument types, `Given`, and the context through which it
reaches the service.

Plain `float`, `int`, `bool` and `str`: `build_tool` (building.py) makes every tool's
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

# The model tools' arguments that are the call's, not the model's: not sent to Scenario, not in its
# schema (`check` compares the rest with it), and upscale_batch's own rather than its `parameters`.
CALL_OPTIONS = frozenset({"dryRun", "wait", "outputDir", "allowDuplicate", "confirmCost"})

# Said once per tool, on `image`; other image arguments say "like `image`" (the tool list stays lean:
# tests/test_tool_list_size.py).
IMAGE_REFERENCE_HELP = (
    "Asset id, local file (absolute, ~/ or file://; in SCENARIO_ALLOWED_DIRS), https URL or data: URI "
    "(JPEG, PNG, GIF, WebP, AVIF, TIFF)."
)
# No length bound: a data: URI is as long as its image; its decoded size is capped instead.
ImageReference = Annotated[str, Field(min_length=1, description=IMAGE_REFERENCE_HELP)]
"""upload_image's `image`, with the help on image references."""
ImageArgument = Annotated[str, Field(min_length=1, description="The image, as upload_image's `image`.")]
"""A model tool's `image`: the help is upload_image's."""
MoreImages = Annotated[str, Field(min_length=1)]
"""An item of a list of images: the list's description refers to `image` for the help."""
JobIdText = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_-]+$")]
"""A job id, undescribed: for an argument that describes it itself."""
JobId = Annotated[JobIdText, Field(description="A job id from an upscale tool.")]
DryRun = Annotated[
    bool,
    Field(description="Only quote the cost; submit nothing."),
]
Wait = Annotated[
    float,
    Field(
        ge=0,
        le=3600,
        description=("Seconds to wait; then the job goes on (see wait_for_jobs)."),
    ),
]
AllowDuplicate = Annotated[
    bool,
    Field(description="Resubmit even if an identical job ran in the last 10 min."),
]
OutputDir = Annotated[
    str | None,
    Field(description="Save folder: in the output folder (default) or SCENARIO_ALLOWED_DIRS."),
]
# For tools that save a job submitted earlier: by default, where that job's upscale call asked.
LaterOutputDir = Annotated[
    str | None,
    Field(description="Save folder (in the output folder or SCENARIO_ALLOWED_DIRS); default: the job's own."),
]


class _GivenMarker:
    def __repr__(self) -> str:
        return "GIVEN"


GIVEN = _GivenMarker()
Given = Annotated[frozenset[str], GIVEN]
"""A handler parameter that is not a tool argument: the names of the arguments the caller actually
gave, whatever their values (the others took their defaults).

`build_tool` (building.py) leaves a parameter of this type out of the input schema
and fills it on every call from the validated arguments' `model_fields_set`, the way the SDK fills
`Context`. The model tools use it to send only what the caller set (see `upscale.run_upscale`).
"""
