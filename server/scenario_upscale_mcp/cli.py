"""Command line: `scenario-upscale-mcp` serves MCP (over stdio, or streamable HTTP with `--transport
http`); `demo`, `check` and `sandbox` are for people.

Only `demo` and `check` write to stdout: when serving over stdio, stdout is the MCP protocol, so
everything else logs to stderr.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

logger = logging.getLogger(__name__)

DEFAULT_HTTP_HOST = "127.0.0.1"
DEFAULT_HTTP_PORT = 8000


def configure_logging() -> None:
    """Log to stderr, before the server is built (the SDK's own basicConfig then leaves it alone)."""
    level = os.environ.get("SCENARIO_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        level=level if level in logging.getLevelNamesMapping() else "INFO",
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # httpx logs every URL at INFO, and signed asset URLs are credentials of a kind; Scenario's SDK
    # logs whole request bodies (inline images included) at DEBUG.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("scenario_sdk").setLevel(logging.WARNING)


def build_parser() -> argparse.ArgumentParser:
    import argparse  # only when there are arguments: host apps start the server with none

    parser = argparse.ArgumentParser(
        prog="scenario-upscale-mcp",
        description=(
            "MCP server for Scenario's upscale models. With no command it serves MCP over stdio, "
            "as host apps (Claude Desktop, Claude Code, Cursor, VS Code) start it."
        ),
    )
    parser.add_argument(
        "--transport",
        choices=("stdio", "http"),
        default="stdio",
        help="stdio (default: for host apps that start the server) or http (streamable HTTP at /mcp)",
    )
    parser.add_argument(
        "--host",
        default=DEFAULT_HTTP_HOST,
        help=f"with --transport http: address to listen on (default {DEFAULT_HTTP_HOST}; anything else "
        "exposes the server, which has no authentication, to the network)",
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_HTTP_PORT, help="with --transport http: port (default 8000)"
    )
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="serve MCP (the default)")
    demo = commands.add_parser(
        "demo",
        help="upscale sample images through the server, against the built-in simulator",
        description=(
            "Start the simulator, spawn the server over stdio as a host would, and upscale the sample "
            "images (or yours) with both models. Never uses your credentials unless you pass --real."
        ),
    )
    demo.add_argument("images", nargs="*", help="images to upscale (default: the samples in examples/images)")
    demo.add_argument(
        "--output-dir", help="where to save the results (default: a 'demo' folder in the output folder)"
    )
    demo.add_argument(
        "--real",
        action="store_true",
        help="use Scenario's API with your credentials (billed): shows the cost first and asks before submitting",
    )
    demo.add_argument(
        "--yes", action="store_true", help="with --real: submit after showing the cost, without asking"
    )
    demo.add_argument("--concurrency", type=int, default=4, help="upscales in flight at once (default 4)")
    demo.add_argument("--job-seconds", type=float, default=4.0, help=argparse.SUPPRESS)
    check = commands.add_parser(
        "check",
        help="check your credentials, access to both models, their live input schemas and a price",
        description=(
            "Check the setup against Scenario's API, one line per check with the fix for each failure: "
            "the credentials, access to both models, the models' live input schemas against the tools', "
            "and the price of a 2x upscale of a small sample (dry run: nothing is billed). "
            "Exits 0 when every check passes, 1 otherwise."
        ),
    )
    check.add_argument(
        "--sandbox",
        action="store_true",
        help="check against the built-in simulator instead (no account needed, your credentials unused)",
    )
    sandbox = commands.add_parser("sandbox", help="run the Scenario API simulator on loopback")
    sandbox.add_argument("--port", type=int, default=8787)
    sandbox.add_argument("--job-seconds", type=float, default=6.0)
    return parser


def main(argv: list[str] | None = None) -> None:
    arguments = sys.argv[1:] if argv is None else argv
    if not arguments:
        # How host apps start it: straight to serving over stdio, without building the parser.
        serve_stdio()
        return
    args = build_parser().parse_args(arguments)

    if args.command == "demo":
        from scenario_upscale_mcp.demo import DemoOptions, run_demo

        sys.exit(
            run_demo(
                DemoOptions(
                    images=args.images,
                    output_dir=args.output_dir,
                    real=args.real,
                    yes=args.yes,
                    concurrency=args.concurrency,
                    job_seconds=args.job_seconds,
                )
            )
        )
    if args.command == "check":
        from scenario_upscale_mcp.check import check_command

        sys.exit(check_command(sandbox=args.sandbox))
    configure_logging()
    if args.command == "sandbox":
        from scenario_upscale_mcp import sandbox as simulator

        simulator.main(["--port", str(args.port), "--job-seconds", str(args.job_seconds)])
        return
    if args.transport == "http":
        serve_http(args.host, args.port)
        return
    serve_stdio()


def serve_stdio() -> None:
    configure_logging()
    from scenario_upscale_mcp.app import create_server

    create_server().run()


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str) -> str | None:
    """What to shout when the HTTP server would be reachable from other machines; None on loopback."""
    if is_loopback(host):
        return None
    return (
        f"\n!!! WARNING: serving MCP over HTTP on {host}, reachable from other machines. !!!\n"
        "This server has no authentication: anyone who can reach this port can run paid upscales with\n"
        "your Scenario credentials, and read and write images in the allowed and output folders.\n"
        "Put it behind a reverse proxy that authenticates users and terminates TLS, or bind 127.0.0.1.\n"
    )


def serve_http(host: str, port: int) -> None:
    """Streamable HTTP at http://HOST:PORT/mcp, for hosts that connect by URL (remote hosts, teams).

    uvicorn is run here rather than through `MCPServer.run("streamable-http")` so that its logs go
    through this process's logging (stderr) instead of uvicorn's own configuration (access log on stdout).
    """
    import uvicorn

    from scenario_upscale_mcp.app import create_server

    warning = exposure_warning(host)
    if warning:
        print(
            warning, file=sys.stderr, flush=True
        )  # not through logging: SCENARIO_LOG_LEVEL must not hide it
    # On loopback the SDK turns on DNS-rebinding protection (Host and Origin must be loopback).
    app = create_server().streamable_http_app(host=host)
    url_host = f"[{host}]" if ":" in host else host
    logger.info("serving MCP over streamable HTTP at http://%s:%d/mcp", url_host, port)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,  # keep the logging configured above: stderr, SCENARIO_LOG_LEVEL
        access_log=False,
        timeout_graceful_shutdown=5,
    )
