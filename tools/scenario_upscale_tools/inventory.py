"""The tool inventory: every tool the server registers, in the order hosts list them, and what a tool
module declares to be registered (its `ToolSpec`).

Tools are named here, not imported: each is the `TOOL` of the module of the same name, imported
on its first call. Hosts are shown the committed schemas in `schemas/`, so start-up imports none
of the tools' code (tests/test_inventory.py keeps those schemas equal to the code's).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scenario_upscale_mcp.viewer.resource import viewer_meta

if TYPE_CHECKING:
    from mcp.types import ToolAnnotations

# Each tool's listed schema, committed and reviewed (`UPDATE_SNAPSHOTS=1 pytest tests/test_inventory.py`
# rewrites them after a deliberate change).
SCHEMAS = Path(__file__).parent / "schemas"

TOOL_NAMES: tuple[str, ...] = (
    "upscale_v3",
    "upscale_texture",
    "upscale_batch",
    "get_job",
    "wait_for_jobs",
    "download_assets",
    "upload_image",
    "cancel_job",
    "list_jobs",
    "view_region",
)

# The tools whose answers the viewer shows (MCP Apps: a host that renders apps opens it beside the answer;
# the others ignore the key, and the answer is the same either way), and those that only serve the viewer
# (hidden from the model by hosts that render apps; not in the README's table nor the bundle's list).
SHOWN_IN_VIEWER = frozenset({"upscale_v3", "upscale_texture", "wait_for_jobs", "download_assets"})
APP_ONLY = frozenset({"view_region"})


@dataclass(frozen=True)
class ToolSpec:
    """A tool as registered: its handler (whose signature is the input schema, whose docstring is the
    description) and its metadata."""

    fn: Callable[..., Any]
    title: str
    annotations: ToolAnnotations

    @property
    def name(self) -> str:
        return self.fn.__name__

    @property
    def description(self) -> str:
        return prose(self.fn.__doc__)

    @property
    def meta(self) -> dict[str, Any] | None:
        return tool_meta(self.name)


def tool_meta(name: str) -> dict[str, Any] | None:
    """The tool's `_meta` as listed: its binding to the viewer, if it has one."""
    if name not in SHOWN_IN_VIEWER | APP_ONLY:
        return None
    return viewer_meta(app_only=name in APP_ONLY)


def for_the_model(meta: dict[str, Any] | None) -> bool:
    """Whether a tool with this listed `_meta` is the model's to call: not an app-only one (MCP Apps'
    `_meta.ui.visibility` without "model")."""
    ui = (meta or {}).get("ui")
    visibility = ui.get("visibility") if isinstance(ui, dict) else None
    return visibility is None or "model" in visibility


def prose(docstring: str | None) -> str:
    """A docstring as every assistant reads it: no source indentation, each paragraph on one line,
    paragraphs separated by a blank line."""
    paragraphs = inspect.cleandoc(docstring or "").split("\n\n")
    return "\n\n".join(" ".join(paragraph.split()) for paragraph in paragraphs if paragraph.strip())


def load_tool(name: str) -> ToolSpec:
    """The tool's handler and metadata, importing its module."""
    spec: ToolSpec = importlib.import_module(f"scenario_upscale_tools.{name}").TOOL
    return spec


def load_all() -> list[ToolSpec]:
    return [load_tool(name) for name in TOOL_NAMES]
