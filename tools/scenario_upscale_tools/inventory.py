"""The tool inventory: every tool the server registers, in the order hosts list them."""

from __future__ import annotations

from scenario_upscale_tools import (
    cancel_job,
    download_assets,
    get_job,
    list_jobs,
    upload_image,
    upscale_texture,
    upscale_v3,
    wait_for_jobs,
)
from scenario_upscale_tools.common import ToolSpec

TOOLS: tuple[ToolSpec, ...] = (
    upscale_v3.TOOL,
    upscale_texture.TOOL,
    get_job.TOOL,
    wait_for_jobs.TOOL,
    download_assets.TOOL,
    upload_image.TOOL,
    cancel_job.TOOL,
    list_jobs.TOOL,
)
