"""The tool inventory: every tool the server registers, in the order hosts list them."""

from __future__ import annotations

from pathlib import Path

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

# Each tool's listed schema, committed and reviewed (tests/test_inventory.py checks them against the
# code; `UPDATE_SNAPSHOTS=1 pytest tests/test_inventory.py` rewrites them after a deliberate change).
SCHEMAS = Path(__file__).parent / "schemas"

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
