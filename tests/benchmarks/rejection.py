"""Rejecting bad input: time per refused call and HTTP requests made (goal: none, under 5 ms).

The server runs in-process behind the MCP client (no JSON-RPC framing, so the time is the server's
own work plus a thin dispatch), with an HTTP transport that counts every request. Reference, same
run: a bare mcp 2.x MCPServer refusing an out-of-range argument of its one tool.

    python -m tests.benchmarks.rejection [--calls 300]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import anyio
import httpx
from mcp import Client
from mcp.server.mcpserver import MCPServer
from pydantic import Field

from scenario_upscale_mcp.app import create_server
from scenario_upscale_mcp.config import Settings

BAD_CALLS: list[tuple[str, str, dict[str, Any]]] = [
    ("out of range", "upscale_v3", {"image": "asset_a", "upscaleFactor": 40}),
    ("not allowed", "upscale_v3", {"image": "asset_a", "style": "oil-painting"}),
    ("unknown argument", "upscale_texture", {"image": "asset_a", "scale": 4}),
    ("loras mismatch", "upscale_texture", {"image": "asset_a", "loras": ["model_x"], "lorasScale": []}),
    ("file outside roots", "upscale_v3", {"image": "/etc/hostname"}),
    ("private URL", "upload_image", {"image": "https://10.0.0.1/a.png"}),
]


def bare_server() -> MCPServer:
    server = MCPServer("bare")

    @server.tool()
    def scale(factor: Annotated[int, Field(ge=1, le=16)]) -> int:
        """Echo a bounded number."""
        return factor

    return server


async def time_calls(client: Client, tool: str, arguments: dict[str, Any], calls: int) -> float:
    timings = []
    for _ in range(calls):
        started = time.perf_counter()
        result = await client.call_tool(tool, arguments)
        timings.append(time.perf_counter() - started)
        assert result.is_error
    return statistics.median(timings)


async def run(calls: int) -> dict[str, Any]:
    requests: list[httpx.Request] = []

    def count(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(500)

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        settings = Settings(api_key="k", api_secret="s", output_dir=root, allowed_dirs=[root], state_dir=root)
        per_kind: dict[str, float] = {}
        async with Client(create_server(settings, transport=httpx.MockTransport(count))) as client:
            for label, tool, arguments in BAD_CALLS:
                per_kind[label] = await time_calls(client, tool, arguments, calls)
        async with Client(bare_server()) as client:
            reference = await time_calls(client, "scale", {"factor": 40}, calls)
    return {"per_kind": per_kind, "reference": reference, "requests": len(requests)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description="time to refuse bad input")
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args(argv)
    before = logging.root.manager.disable
    logging.disable(logging.INFO)  # the SDK logs every refusal at INFO
    try:
        figures = anyio.run(run, args.calls)
    finally:
        logging.disable(before)
    print(f"refusing bad input, median of {args.calls} calls each (in-process client)")
    for label, seconds in figures["per_kind"].items():
        print(f"  {label:20s} {seconds * 1000:6.2f} ms")
    print(f"  {'bare MCPServer':20s} {figures['reference'] * 1000:6.2f} ms (reference: out-of-range int)")
    print(
        f"  HTTP requests made: {figures['requests']} (goal 0); slowest {max(figures['per_kind'].values()) * 1000:.2f} ms (goal < 5 ms)"
    )
    return figures


if __name__ == "__main__":
    main()
