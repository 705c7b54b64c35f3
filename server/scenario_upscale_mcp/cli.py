"""Command line: `scenario-upscale-mcp` serves MCP over stdio; `demo` and `sandbox` are for people.

Only `demo` writes to stdout: when serving, stdout is the MCP protocol, so everything else logs to
stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys


def configure_logging() -> None:
    """Log to stderr, before the server is built (the SDK's own basicConfig then leaves it alone)."""
    level = os.environ.get("SCENARIO_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        level=level if level in logging.getLevelNamesMapping() else "INFO",
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # httpx2 logs every URL at INFO, and signed asset URLs are credentials of a kind.
    logging.getLogger("httpx2").setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="scenario-upscale-mcp",
        description="MCP server for Scenario's upscale models. With no command it serves MCP over stdio.",
    )
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="serve MCP over stdio (the default)")
    demo = commands.add_parser(
        "demo", help="upscale sample images through the server, against the built-in simulator"
    )
    demo.add_argument("images", nargs="*", help="images to upscale (default: the samples in examples/)")
    demo.add_argument(
        "--output-dir", help="where to save the results (default: a 'demo' folder in the output folder)"
    )
    sandbox = commands.add_parser("sandbox", help="run the Scenario API simulator on loopback")
    sandbox.add_argument("--port", type=int, default=8787)
    sandbox.add_argument("--job-seconds", type=float, default=6.0)
    args = parser.parse_args(argv)

    if args.command == "demo":
        from scenario_upscale_mcp.demo import run_demo

        sys.exit(run_demo(args.images, args.output_dir))
    configure_logging()
    if args.command == "sandbox":
        from scenario_upscale_mcp import sandbox as simulator

        simulator.main(["--port", str(args.port), "--job-seconds", str(args.job_seconds)])
        return
    from scenario_upscale_mcp.app import create_server

    create_server().run()
