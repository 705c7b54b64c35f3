"""Command line: `scenario-upscale-mcp` serves MCP (over stdio, or streamable HTTP with `--transport
http`; the serving is `serving/`); `demo`, `check` and `sandbox` are for people. Here: the arguments,
the dispatch, the logging and the exit status.

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
    from pathlib import Path

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

    from scenario_upscale_mcp import __version__

    parser = argparse.ArgumentParser(
        prog="scenario-upscale-mcp",
        parents=[_serving_options(None)],
        description=(
            "MCP server for Scenario's upscale models. With no command it serves MCP over stdio, "
            "as host apps (Claude Desktop, Claude Code, Cursor, VS Code) start it."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser(
        "serve",
        parents=[_serving_options(argparse.SUPPRESS)],
        help="serve MCP (the default)",
        description="Serve MCP over stdio (the default) or streamable HTTP at http://HOST:PORT/mcp.",
    )
    # A folder list as separate arguments: that is how an MCP Bundle's host passes a `directory`
    # setting with `multiple: true` (it substitutes a list into `args` only, never into an env value).
    serve.add_argument(
        "--allowed-dirs",
        nargs="*",
        metavar="DIR",
        help="folders images may be read from, instead of SCENARIO_ALLOWED_DIRS; every argument after "
        "it is one (none: SCENARIO_ALLOWED_DIRS, or your home folder)",
    )
    demo = commands.add_parser(
        "demo",
        help="upscale sample images through the server, against the built-in simulator",
        description=(
            "Start the simulator, spawn the server over stdio as a host would, and upscale the sample "
            "images (or yours) with both models. Never uses your credentials unless you pass --real."
        ),
    )
    demo.add_argument(
        "images", nargs="*", help="images to upscale (default: the sample images shipped with the package)"
    )
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
    # The simulator's one command line: its options are defined here and nowhere else.
    sandbox = commands.add_parser(
        "sandbox",
        help="run the Scenario API simulator on loopback",
        description=(
            "Serve the built-in simulator of Scenario's API on loopback until Ctrl-C: no account, "
            "nothing billed. Point SCENARIO_BASE_URL at the URL it logs (http://127.0.0.1:PORT/v1): "
            "the server sees that it is the simulator (a loopback address whose answers say so), needs "
            "no API key or secret (and never sends yours to it), and keeps these jobs in the sandbox "
            "ledger, apart from your real ones."
        ),
    )
    sandbox.add_argument(
        "--host",
        type=_loopback_host,
        default="127.0.0.1",
        help="loopback address to listen on (default 127.0.0.1; the simulator accepts any credentials, "
        "so it never listens beyond this machine)",
    )
    sandbox.add_argument("--port", type=int, default=8787, help="port (default 8787; 0 picks a free one)")
    sandbox.add_argument(
        "--job-seconds",
        type=float,
        default=6.0,
        help="how long a simulated job takes from submission to its result (default 6)",
    )
    keeping = sandbox.add_mutually_exclusive_group()
    keeping.add_argument(
        "--state-dir",
        help="folder where the simulator keeps its assets, jobs and uploads, so they outlive it (default: "
        "the one servers run with SCENARIO_SANDBOX=1 use, 'sandbox/simulator' in SCENARIO_STATE_DIR or the "
        "per-user data folder: this simulator and those servers see one simulated account)",
    )
    keeping.add_argument(
        "--in-memory",
        action="store_true",
        help="keep nothing on disk: every asset and job is forgotten when the simulator stops",
    )
    sandbox.add_argument(
        "--max-output-edge",
        type=int,
        default=8192,
        help="cap on the long edge of results, in pixels (default 8192: keeps memory bounded)",
    )
    return parser


def _serving_options(suppress: str | None) -> argparse.ArgumentParser:
    """The serving options, accepted before the command (`--transport http serve`) and after it
    (`serve --transport http`), and with no command at all.

    The main parser holds the defaults; `serve` is given these with `suppress` (argparse.SUPPRESS) as
    every default, so only the options written after it are set there: a default of its own would
    overwrite the value given before the command.
    """
    import argparse

    def default(value: object) -> object:
        return value if suppress is None else suppress

    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--transport",
        choices=("stdio", "http"),
        default=default("stdio"),
        help="stdio (default: for host apps that start the server) or http (streamable HTTP at /mcp)",
    )
    options.add_argument(
        "--host",
        default=default(DEFAULT_HTTP_HOST),
        help=f"with --transport http: address to listen on (default {DEFAULT_HTTP_HOST}; anything else "
        "exposes the server, which has no authentication, to the network)",
    )
    options.add_argument(
        "--port",
        type=int,
        default=default(DEFAULT_HTTP_PORT),
        help=f"with --transport http: port (default {DEFAULT_HTTP_PORT}; 0 picks a free one, which is logged)",
    )
    return options


def _loopback_host(host: str) -> str:
    """`sandbox --host`: refused at parsing unless it is a loopback address (the simulator's rule)."""
    import argparse

    from scenario_upscale_mcp.sandbox.serving import require_loopback

    try:
        require_loopback(host)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return host


def _simulator_state_dir(given: str | None) -> Path:
    """`sandbox --state-dir`, or the folder the server's own simulator uses (SCENARIO_SANDBOX=1)."""
    from pathlib import Path

    if given is not None:
        return Path(given).expanduser().resolve()
    from pydantic import ValidationError

    from scenario_upscale_mcp.config import Settings

    try:
        return Settings().simulator_state_dir
    except ValidationError as exc:
        fields = ", ".join(".".join(str(part) for part in error["loc"]) for error in exc.errors())
        sys.exit(
            f"scenario-upscale-mcp sandbox: invalid configuration ({fields}); fix those SCENARIO_* variables"
        )


def main(argv: list[str] | None = None) -> None:
    arguments = sys.argv[1:] if argv is None else argv
    if not arguments:
        # How host apps start it: straight to serving over stdio, without building the parser.
        from scenario_upscale_mcp.serving.stdio import serve_stdio

        configure_logging()
        _exit_with(serve_stdio())
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
        from scenario_upscale_mcp.check.command import check_command

        sys.exit(check_command(sandbox=args.sandbox))
    configure_logging()
    if args.command == "sandbox":
        from scenario_upscale_mcp.sandbox.app import Sandbox
        from scenario_upscale_mcp.sandbox.persistence import StateFolderError
        from scenario_upscale_mcp.sandbox.serving import serve_until_interrupted

        state_dir = None if args.in_memory else _simulator_state_dir(args.state_dir)
        try:
            simulator = Sandbox(
                job_seconds=args.job_seconds, max_output_edge=args.max_output_edge, state_dir=state_dir
            )
        except StateFolderError as exc:
            sys.exit(f"scenario-upscale-mcp sandbox: {exc} (choose another with --state-dir, or --in-memory)")
        with simulator:
            serve_until_interrupted(simulator, args.host, args.port)
        return
    if getattr(args, "allowed_dirs", None):
        os.environ["SCENARIO_ALLOWED_DIRS"] = os.pathsep.join(args.allowed_dirs)
    if args.transport == "http":
        from scenario_upscale_mcp.serving.http import serve_http

        _exit_with(serve_http(args.host, args.port))
        return
    from scenario_upscale_mcp.serving.stdio import serve_stdio

    _exit_with(serve_stdio())


def _exit_with(status: int) -> None:
    if status:
        sys.exit(status)
