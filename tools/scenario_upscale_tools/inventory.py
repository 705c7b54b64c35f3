"""The tool inventory: every tool the server registers, in the order hosts list them.

Tools are named here, not imported: each is the `TOOL` of the module of the same name, imported
on its first call. Hosts are shown the committed schemas in `schemas/`, so start-up imports none
of the tools' code (tests/test_inventory.py keeps those schemas equal to the code's).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scenario_upscale_tools.common import ToolSpec

# Each tool's listed schema, committed and reviewed (`UPDATE_SNAPSHOTS=1 pytest tests/test_inventory.py`
# rewrites them after a deliberate change).
SCHEMAS = Path(__file__).parent / "schemas"

TOOL_NAMES: tuple[str, ...] = (
    "upscale_v3",
    "upscale_texture",
    "get_job",
    "wait_for_jobs",
    "download_assets",
    "upload_image",
    "cancel_job",
    "list_jobs",
)


def load_tool(name: str) -> ToolSpec:
    """The tool's handler and metadata, importing its module."""
    spec: ToolSpec = importlib.import_module(f"scenario_upscale_tools.{name}").TOOL
    return spec


def load_all() -> list[ToolSpec]:
    return [load_tool(name) for name in TOOL_NAMES]
