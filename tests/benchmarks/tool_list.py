"""The tool list's weight: the bytes of every tool's input schema and description, as compact JSON.

Every conversation carries them (hosts put the tool list in the model's context), so they are kept lean:
tests/test_tool_list_size.py holds them under a budget. Measured on the committed schemas, which are
what the server lists (tests/test_inventory.py keeps them equal to the code's); no server is spawned.

App-only tools (MCP Apps' `_meta.ui.visibility: ["app"]`: view_region, which serves the viewer) are
measured apart: hosts that render apps hide them from the model, so they are not in its budget. A host
without Apps lists them to the model like any tool, so they are kept lean too, under a budget of their
own. The `_meta` binding a tool to the viewer is not counted (hosts do not give it to the model).

    python -m tests.benchmarks.tool_list
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from scenario_upscale_tools.inventory import SCHEMAS, TOOL_NAMES, for_the_model

BUDGET_BYTES = 11_500  # the model's tools together (9,000 before upscale_batch and confirmCost)
PER_TOOL_BYTES = 3_200  # any one tool, the model tools included
APP_ONLY_BUDGET_BYTES = 1_500  # the app-only tools together (view_region)


def listed_bytes(input_schema: dict[str, Any], description: str | None) -> int:
    """A tool's weight: its input schema as compact JSON, plus its description (UTF-8)."""
    schema = json.dumps(input_schema, separators=(",", ":"), ensure_ascii=False)
    return len(schema.encode()) + len((description or "").encode())


def measure(*, app_only: bool = False) -> dict[str, int]:
    """Each tool's weight, by name, from the committed schemas: the model's tools, or the app-only ones."""
    sizes: dict[str, int] = {}
    for name in TOOL_NAMES:
        stored = json.loads((SCHEMAS / f"{name}.json").read_text())
        if for_the_model(stored.get("_meta")) == app_only:
            continue
        sizes[name] = listed_bytes(stored["inputSchema"], stored["description"])
    return sizes


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argparse.ArgumentParser(prog="python -m tests.benchmarks.tool_list", description=__doc__).parse_args(argv)
    sizes = measure()
    for name, size in sizes.items():
        print(f"  {name:16s} {size:6,d} bytes")
    total = sum(sizes.values())
    print(f"  {'total':16s} {total:6,d} bytes (budget {BUDGET_BYTES:,d})")
    app_only = measure(app_only=True)
    for name, size in app_only.items():
        print(f"  {name:16s} {size:6,d} bytes (app-only: hidden from the model where apps render)")
    app_total = sum(app_only.values())
    print(f"  {'app-only total':16s} {app_total:6,d} bytes (budget {APP_ONLY_BUDGET_BYTES:,d})", flush=True)
    return {
        "total_bytes": total,
        "largest_bytes": max(sizes.values()),
        "per_tool": sizes,
        "app_only_bytes": app_total,
        "app_only": app_only,
    }


if __name__ == "__main__":
    main()
