"""The server as tests and benchmarks drive it: spawned over stdio against a simulator, and what its
tool calls return."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from mcp import StdioServerParameters
from mcp.types import CallToolResult


def stdio_params(base_url: str, folder: Path, **env: str) -> StdioServerParameters:
    """`python -m scenario_upscale_mcp` as a host spawns it, against the simulator at `base_url`: it reads
    images from folder/images, saves results in folder/output and keeps its state in folder/state
    (`env` adds variables or overrides these)."""
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "scenario_upscale_mcp"],
        env={
            "SCENARIO_SANDBOX": "1",
            "SCENARIO_BASE_URL": base_url,
            "SCENARIO_ALLOWED_DIRS": str(folder / "images"),
            "SCENARIO_OUTPUT_DIR": str(folder / "output"),
            "SCENARIO_STATE_DIR": str(folder / "state"),
            "SCENARIO_LOG_LEVEL": "WARNING",
            **env,
        },
    )


def structured(result: CallToolResult) -> dict[str, Any]:
    """The structured content of a call that succeeded (failing the test, showing the content, otherwise)."""
    assert not result.is_error, result.content
    content: dict[str, Any] | None = result.structured_content
    assert content is not None, result.content
    return content
