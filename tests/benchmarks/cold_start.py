"""Cold start: spawn → initialize → tools/list answered, against a bare mcp 2.x MCPServer with one tool.

Both servers are spawned the same way, alternately, in one run, so machine noise hits both alike.
Prints the medians and their ratio (goal: ≤ 1.05).

    python -m tests.benchmarks.cold_start [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

BARE_SERVER = '''
from mcp.server.mcpserver import MCPServer

server = MCPServer("bare")


@server.tool()
def echo(text: str) -> str:
    """Echo the text."""
    return text


server.run()
'''


async def time_to_tools_list(params: StdioServerParameters) -> float:
    started = time.perf_counter()
    async with Client(params, mode="legacy", read_timeout_seconds=60) as client:
        tools = await client.list_tools()
        elapsed = time.perf_counter() - started
    assert tools.tools, "the server listed no tools"
    return elapsed


async def measure(runs: int) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as folder:
        bare_script = Path(folder) / "bare_server.py"
        bare_script.write_text(BARE_SERVER)
        env = {"SCENARIO_STATE_DIR": folder, "SCENARIO_OUTPUT_DIR": folder, "SCENARIO_LOG_LEVEL": "WARNING"}
        candidates = {
            "bare MCPServer (1 tool)": StdioServerParameters(command=sys.executable, args=[str(bare_script)]),
            "scenario-upscale-mcp": StdioServerParameters(
                command=sys.executable, args=["-m", "scenario_upscale_mcp"], env=env
            ),
        }
        timings: dict[str, list[float]] = {name: [] for name in candidates}
        for params in candidates.values():  # warm the OS file cache for both, untimed
            await time_to_tools_list(params)
        for _ in range(runs):
            for name, params in candidates.items():
                timings[name].append(await time_to_tools_list(params))
    return timings


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    timings = anyio.run(measure, args.runs)
    medians = {name: statistics.median(values) for name, values in timings.items()}
    bare, ours = medians["bare MCPServer (1 tool)"], medians["scenario-upscale-mcp"]
    print(f"cold start, spawn → tools/list, median of {args.runs} alternating runs")
    for name, values in timings.items():
        print(
            f"  {name:26s} median {statistics.median(values) * 1000:7.1f} ms   min {min(values) * 1000:7.1f} ms"
        )
    print(f"  ratio {ours / bare:.3f} (goal ≤ 1.05)")
    return {"bare_ms": bare * 1000, "ours_ms": ours * 1000, "ratio": ours / bare}


if __name__ == "__main__":
    main()
