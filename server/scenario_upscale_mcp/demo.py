"""`scenario-upscale-mcp demo`: see the server work end to end, with no account.

It starts the API simulator on loopback, spawns the server over stdio exactly as a host app would,
upscales the sample images with both models through MCP tool calls, shows progress from the MCP
progress notifications, and prints a table of what was saved where. This module is a client, not the
server, so it prints to stdout.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters

from scenario_upscale_mcp.config import Settings

DEMO_CALLS = (
    ("upscale_v3", {"upscaleFactor": 2, "style": "standard"}),
    ("upscale_texture", {"upscaleFactor": 2}),
)
SAMPLES = Path(__file__).resolve().parents[2] / "examples" / "images"


def run_demo(images: list[str], output_dir: str | None) -> int:
    """Return the process exit code: 0 when every upscale succeeded."""
    paths = [Path(image).expanduser().resolve() for image in images] or sorted(SAMPLES.glob("*.png"))
    missing = [path for path in paths if not path.is_file()]
    if not paths or missing:
        shown = ", ".join(map(str, missing)) or f"no sample images in {SAMPLES}"
        print(
            f"demo: cannot find {shown}. Pass image paths: scenario-upscale-mcp demo IMAGE...",
            file=sys.stderr,
        )
        return 2
    folder = Path(output_dir).expanduser().resolve() if output_dir else Settings().output_dir / "demo"
    try:
        return anyio.run(_demo, paths, folder)
    except KeyboardInterrupt:
        return 130


async def _demo(paths: list[Path], folder: Path) -> int:
    from scenario_upscale_mcp.sandbox import Sandbox, serve_in_thread

    print("Scenario upscale demo — against the built-in simulator (no account, nothing billed).")
    with serve_in_thread(Sandbox(job_seconds=4.0)) as base_url, tempfile.TemporaryDirectory() as state_dir:
        env = {
            "SCENARIO_SANDBOX": "1",
            "SCENARIO_BASE_URL": base_url,
            "SCENARIO_OUTPUT_DIR": str(folder),
            "SCENARIO_ALLOWED_DIRS": os.pathsep.join(sorted({str(path.parent) for path in paths})),
            "SCENARIO_STATE_DIR": state_dir,
            "SCENARIO_LOG_LEVEL": "WARNING",
        }
        server = StdioServerParameters(command=sys.executable, args=["-m", "scenario_upscale_mcp"], env=env)
        rows: list[tuple[str, str, str, str, str]] = []
        failures = 0
        async with Client(server) as client:
            for path in paths:
                for tool, arguments in DEMO_CALLS:
                    label = f"{path.name} · {tool}"

                    async def show(
                        progress: float, total: float | None, message: str | None, label: str = label
                    ) -> None:
                        print(f"  {label}: {message or f'{progress:.0%}'}", flush=True)

                    print(f"{label}: submitting…", flush=True)
                    result = await client.call_tool(
                        tool, {"image": str(path), "wait": 120, **arguments}, progress_callback=show
                    )
                    if result.is_error or not result.structured_content:
                        failures += 1
                        print(f"{label}: FAILED — {_text(result.content)}", file=sys.stderr)
                        continue
                    rows.extend(_rows(path.name, tool, result.structured_content))
    _print_table(rows)
    print(f"\nResults are in {folder}")
    if failures:
        print(f"{failures} upscale(s) failed.", file=sys.stderr)
        return 1
    return 0


def _text(content: list[Any]) -> str:
    return " ".join(getattr(block, "text", "") for block in content).strip()


def _rows(source: str, tool: str, job: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    cost = job.get("creativeUnitsCost")
    return [
        (
            source,
            tool,
            Path(output["path"]).name,
            f"{output['width']}×{output['height']}",
            f"{output['bytes'] / 1024:,.0f} KiB · {cost:g} CU"
            if cost is not None
            else f"{output['bytes'] / 1024:,.0f} KiB",
        )
        for output in job.get("outputs", [])
    ]


def _print_table(rows: list[tuple[str, str, str, str, str]]) -> None:
    header = ("source", "tool", "saved as", "size", "bytes · cost")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    print()
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
