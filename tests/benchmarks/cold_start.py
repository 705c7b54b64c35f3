"""Cold start: spawn → initialize → tools/list answered, against a bare mcp 2.x MCPServer with one tool;
and the first call: an `upscale_v3` dry run against the built-in simulator (which that first call
also starts) a second after tools/list, beside a second identical call, so the first call's own
cost shows.

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
from PIL import Image

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


async def time_first_and_second_call(params: StdioServerParameters, image: Path) -> tuple[float, float]:
    """How long the first `upscale_v3` dry run takes, and the second (warm) one, in seconds.

    The first is made a second after tools/list, as an assistant reads the list before it calls a
    tool; everything made on first use (the tool's models, the settings, the simulator, the SDK
    unless it was warmed meanwhile, the ledger, the upload) is in it.
    """
    arguments = {"image": str(image), "dryRun": True}
    async with Client(params, mode="legacy", read_timeout_seconds=60) as client:
        await client.list_tools()
        await anyio.sleep(1.0)
        started = time.perf_counter()
        first = await client.call_tool("upscale_v3", arguments)
        first_s = time.perf_counter() - started
        started = time.perf_counter()
        second = await client.call_tool("upscale_v3", arguments)
        second_s = time.perf_counter() - started
    assert not first.is_error and not second.is_error, first.content
    return first_s, second_s


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
        image = Path(folder) / "sample.png"
        Image.new("RGB", (64, 64), (120, 90, 60)).save(image)
        sandboxed = StdioServerParameters(
            command=sys.executable,
            args=["-m", "scenario_upscale_mcp"],
            env={**env, "SCENARIO_SANDBOX": "1", "SCENARIO_ALLOWED_DIRS": folder},
        )
        timings["first dry run"] = []
        timings["second dry run"] = []
        for _ in range(runs):
            for name, params in candidates.items():
                timings[name].append(await time_to_tools_list(params))
            first, second = await time_first_and_second_call(sandboxed, image)
            timings["first dry run"].append(first)
            timings["second dry run"].append(second)
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
    first, second = medians["first dry run"], medians["second dry run"]
    print(f"  first upscale_v3 dry run {first * 1000:.0f} ms, the second {second * 1000:.0f} ms")
    return {
        "bare_ms": bare * 1000,
        "ours_ms": ours * 1000,
        "ratio": ours / bare,
        "first_call_ms": first * 1000,
        "second_call_ms": second * 1000,
    }


if __name__ == "__main__":
    main()
