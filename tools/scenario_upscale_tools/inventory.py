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
)


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
