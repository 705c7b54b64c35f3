"""The tool inventory: every tool the server registers, in the order hosts list them."""

from __future__ import annotations

from scenario_upscale_tools import get_job, upscale_texture, upscale_v3
from scenario_upscale_tools.common import ToolSpec

TOOLS: tuple[ToolSpec, ...] = (
    upscale_v3.TOOL,
    upscale_texture.TOOL,
    get_job.TOOL,
)
