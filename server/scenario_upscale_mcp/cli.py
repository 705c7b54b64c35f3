"""Command line: `scenario-upscale-mcp` serves MCP (over stdio, or streamable HTTP with `--transport
http`); `demo`, `check` and `sandbox` are for people.

Only `demo` and `check` write to stdout: when serving over stdio, stdout is the MCP protocol, so
everything else logs to stderr.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING, Any, cast

import anyio

if TYPE_CHECKING:
    import argparse
    from types import FrameType

    import anyio.abc
    from anyio.from_thread import BlockingPortal
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
    from mcp.server.mcpserver import MCPServer
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)

DEFAULT_HTTP_HOST = "127.0.0.1"
DEFAULT_HTTP_PORT = 8000
# After SIGINT/SIGTERM, how long uvicorn waits for requests before cancelling them: a backstop, since
# `StopRequestsOnSignal` cancels the MCP requests in flight at once.
HTTP_GRACEFUL_SHUTDOWN_SECONDS = 5


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
        from scenario_upscale_mcp.check import check_command

        sys.exit(check_command(sandbox=args.sandbox))
    configure_logging()
    if args.command == "sandbox":
        from scenario_upscale_mcp import sandbox as simulator

        simulator.main(["--port", str(args.port), "--job-seconds", str(args.job_seconds)])
        return
    if args.transport == "http":
        _exit_with(serve_http(args.host, args.port))
        return
    _exit_with(serve_stdio())


def _exit_with(status: int) -> None:
    if status:
        sys.exit(status)


def stopped_status(signum: int) -> int:
    """The exit status after a stop by `signum`: 128 + its number (130 for SIGINT, 143 for SIGTERM),
    what a shell reports for a process the signal ended, so parents see the same status as before the
    server handled signals, now with everything cleaned up."""
    return 128 + signum


def serve_stdio() -> int:
    """Serve MCP over stdio until stdin closes (exit status 0) or SIGINT/SIGTERM stops it (130/143).

    A signal stops the server the way closing stdin does (see `_serve_stdio`): in-flight tool calls are
    cancelled, so their cleanup runs (a download's temporary file is removed), then the lifespan
    closes the HTTP client, the ledger and the simulator.
    """
    configure_logging()
    try:
        from scenario_upscale_mcp.app import create_server

        stopped_by = anyio.run(_serve_stdio, create_server())
    except KeyboardInterrupt:
        # Ctrl-C before the signal handlers are installed, or on Windows (no asyncio signal handlers):
        # asyncio's own SIGINT handling cancelled the run, which `StdinLines` lets end at once.
        logger.info("SIGINT: stopped")
        return stopped_status(signal.SIGINT)
    return 0 if stopped_by is None else stopped_status(stopped_by)


async def _serve_stdio(server: MCPServer[Any]) -> int | None:
    """Serve over stdio; return the signal that stopped the server, or None if stdin closed.

    Why not `server.run()`: the SDK's stdio transport reads stdin with `readline` in a worker thread
    that cannot be cancelled, so until a line or EOF arrives nothing can end the server: Ctrl-C was
    deferred until Enter (through a pipe, forever), and SIGTERM, unhandled, killed the process on the
    spot, leaving a download's temporary file behind. Here stdin is read by `StdinLines` instead, whose
    thread is never waited for, and SIGINT/SIGTERM (through anyio's signal receiver, which runs the
    handling in the event loop, not in a signal handler) end that input as if stdin had closed. That
    is the SDK's own, tested way out: the server stops reading, cancels in-flight requests (their
    cleanup runs), leaves its lifespan (the API client, the ledger and the simulator close) and the
    transport restores fd 0/1. A second signal cancels everything at once, for a stop stuck in cleanup.
    """
    from mcp.server.stdio import stdio_server

    stopped_by: list[int] = []
    async with anyio.create_task_group() as group, StdinLines.open() as lines:

        async def on_signal(signum: int) -> None:
            name = signal.Signals(signum).name
            if stopped_by:
                logger.warning("%s again: stopping without waiting for cleanup", name)
                group.cancel_scope.cancel()
                return
            stopped_by.append(signum)
            logger.info("%s: stopping (in-flight calls are cancelled)", name)
            lines.end()

        await group.start(_receive_stop_signals, on_signal)
        # `stdin=` replaces only the SDK's reading of stdin; stdout is still claimed by the SDK.
        async with stdio_server(stdin=cast("anyio.AsyncFile[str]", lines)) as (read_stream, write_stream):
            logger.info("serving MCP over stdio: closing stdin, SIGINT or SIGTERM stops it")
            # What `MCPServer.run_stdio_async` does, with the input above.
            lowlevel = server._lowlevel_server
            await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())
        group.cancel_scope.cancel()  # the signal receiver
    return stopped_by[0] if stopped_by else None


async def _receive_stop_signals(
    on_signal: Callable[[int], Awaitable[None]],
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    if sys.platform == "win32":
        # No asyncio signal handlers on Windows: Ctrl-C is asyncio's KeyboardInterrupt (see serve_stdio).
        task_status.started()
        return
    try:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            task_status.started()
            async for signal_number in signals:
                await on_signal(signal_number)
    finally:
        # The server has stopped and the process is ending: one more Ctrl-C ends it at once, as SIGTERM
        # does, instead of raising KeyboardInterrupt somewhere in the last of the teardown.
        signal.signal(signal.SIGINT, signal.SIG_DFL)


class StdinLines:
    """The protocol's input, stdin's lines, read so that the server never waits for the reading thread.

    A daemon thread reads the pipe on a private copy of fd 0 and hands each line to the event loop;
    `__anext__` only waits on a memory stream, so it is cancelled at once, and `end()` ends the input
    like EOF while the thread may still be blocked in `read` (it dies with the process: a daemon thread
    does not hold up the exit, unlike the SDK's worker thread). While serving, fd 0 points at the null
    device, as the SDK does when it reads stdin itself, so nothing else in the process, nor a
    subprocess, can read the protocol's bytes; it is restored on exit.
    """

    def __init__(self, lines: MemoryObjectReceiveStream[str], sender: MemoryObjectSendStream[str]) -> None:
        self._lines = lines
        self._sender = sender
        self._ended = False

    @classmethod
    @asynccontextmanager
    async def open(cls) -> AsyncIterator[StdinLines]:
        import threading

        from anyio.from_thread import BlockingPortal

        private_fd = _claim_stdin()
        sender, lines = anyio.create_memory_object_stream[str](0)
        reader: threading.Thread | None = None
        try:
            async with BlockingPortal() as portal:
                try:
                    with sender, lines:
                        reader = threading.Thread(
                            target=_pump_lines,
                            args=(private_fd, portal, sender),
                            name="stdin-reader",
                            daemon=True,
                        )
                        reader.start()
                        yield cls(lines, sender)
                finally:
                    # The streams are closed, so a line still being handed over fails instead of waiting.
                    with anyio.CancelScope(shield=True):
                        await portal.stop(cancel_remaining=True)
        finally:
            os.dup2(private_fd, 0)
            _rebind_windows_stdin()
            if reader is None or not reader.is_alive():
                os.close(private_fd)  # else the thread may still be blocked on it: left to the exit

    def end(self) -> None:
        """End the input as EOF would (a line the thread is still handing over is dropped)."""
        self._ended = True
        self._sender.close()

    def __aiter__(self) -> StdinLines:
        return self

    async def __anext__(self) -> str:
        try:
            line = await self._lines.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None
        if self._ended:
            raise StopAsyncIteration
        return line


def _claim_stdin() -> int:
    """Duplicate fd 0 above the standard descriptors (not inherited), then point fd 0 at the null device."""
    if sys.platform == "win32":
        private_fd = os.dup(0)
    else:
        import fcntl

        private_fd = fcntl.fcntl(0, fcntl.F_DUPFD_CLOEXEC, 3)
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(null, 0)
    finally:
        os.close(null)
    _rebind_windows_stdin()
    return private_fd


def _rebind_windows_stdin() -> None:
    """On Windows, point the standard input handle (what subprocesses inherit) at fd 0, as the SDK does."""
    if sys.platform == "win32":
        from mcp.os.win32.utilities import rebind_std_handle_to_fd

        with suppress(OSError):
            rebind_std_handle_to_fd(0)


def _pump_lines(fd: int, portal: BlockingPortal, sender: MemoryObjectSendStream[str]) -> None:
    """Thread: read lines from `fd` and send them, decoded as UTF-8 like the SDK does; EOF closes `sender`.

    Ends quietly when the server has stopped listening (stream closed, portal stopped)."""
    with suppress(Exception):
        try:
            for line in _read_lines(fd):
                portal.call(sender.send, line.decode("utf-8", errors="replace"))
        finally:
            portal.call(sender.close)


def _read_lines(fd: int) -> Iterator[bytes]:
    """The lines read from `fd`, each with its newline (the last one may lack it), until EOF."""
    pending = bytearray()
    while chunk := os.read(fd, 1 << 16):
        start = 0
        while (newline := chunk.find(b"\n", start)) >= 0:
            pending += chunk[start : newline + 1]
            yield bytes(pending)
            pending.clear()
            start = newline + 1
        pending += chunk[start:]
    if pending:
        yield bytes(pending)


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


def serve_http(host: str, port: int) -> int:
    """Streamable HTTP at http://HOST:PORT/mcp, for hosts that connect by URL (remote hosts, teams).

    Returns the exit status: 0, or 130/143 after SIGINT/SIGTERM.

    uvicorn is run here rather than through `MCPServer.run("streamable-http")` so that its logs go
    through this process's logging (stderr) instead of uvicorn's own configuration (access log on stdout).
    """
    import uvicorn

    warning = exposure_warning(host)
    if warning:
        print(
            warning, file=sys.stderr, flush=True
        )  # not through logging: SCENARIO_LOG_LEVEL must not hide it
    # While it serves, uvicorn handles SIGINT and SIGTERM itself: it stops accepting, waits for the
    # requests in flight (which `StopRequestsOnSignal` cancels at once: an MCP tool call or event
    # stream would otherwise hold the stop for the whole `timeout_graceful_shutdown`), runs the app's
    # shutdown (sessions end, the lifespan closes the API client, the ledger and the simulator), then
    # restores the handlers it found and raises the signal again. Those handlers are these: they turn
    # the signal into `_StoppedBySignal`, so the process exits with 130/143 like the stdio server,
    # where uvicorn's re-raised SIGTERM alone would kill it before Python's own exit (and SIGINT would
    # exit 0). A signal before uvicorn has started stops the start the same way.
    previous = {number: signal.signal(number, _raise_stopped) for number in STOP_SIGNALS}
    try:
        from scenario_upscale_mcp.app import create_server

        # On loopback the SDK turns on DNS-rebinding protection (Host and Origin must be loopback).
        app = StopRequestsOnSignal(create_server().streamable_http_app(host=host))
        url_host = f"[{host}]" if ":" in host else host
        logger.info("serving MCP over streamable HTTP at http://%s:%d/mcp", url_host, port)
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_config=None,  # keep the logging configured above: stderr, SCENARIO_LOG_LEVEL
            access_log=False,
            timeout_graceful_shutdown=HTTP_GRACEFUL_SHUTDOWN_SECONDS,
        )
    except _StoppedBySignal as stop:
        logger.info("%s: stopped", signal.Signals(stop.signum).name)
        return stopped_status(stop.signum)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return 0


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _StoppedBySignal(BaseException):  # like KeyboardInterrupt: a request to stop, not an error
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_stopped(signum: int, _frame: object) -> None:
    raise _StoppedBySignal(signum)


class StopRequestsOnSignal:
    """ASGI middleware: on SIGINT/SIGTERM, cancel the HTTP requests in flight and refuse new ones.

    uvicorn's graceful stop waits for requests to finish, but MCP requests are long: a tool call
    waiting for a job, an event stream open for the whole session. Cancelled, a tool call's cleanup
    runs (a download's temporary file is removed) and its response is ended properly (503 if it had
    not started), so the stop takes a moment instead of `timeout_graceful_shutdown`, with no
    traceback. The signal is noticed by wrapping the handler uvicorn installs (in the main thread,
    before the app starts), which is then called as before, so uvicorn stops as it would have.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.stopping = False
        self._in_flight: set[anyio.CancelScope] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            self._watch_stop_signals()
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.stopping:
            await _send_unavailable(send)
            return
        started = completed = False

        async def tracking_send(message: Message) -> None:
            nonlocal started, completed
            if message["type"] == "http.response.start":
                started = True
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                completed = True
            await send(message)

        with anyio.CancelScope() as request:
            self._in_flight.add(request)
            try:
                await self.app(scope, receive, tracking_send)
            finally:
                self._in_flight.discard(request)
        if request.cancelled_caught:
            if not started:
                await _send_unavailable(send)
            elif not completed:
                await send({"type": "http.response.body", "body": b"", "more_body": False})

    def stop_requests(self) -> None:
        self.stopping = True
        for request in list(self._in_flight):
            request.cancel()

    def _watch_stop_signals(self) -> None:
        import asyncio
        import threading

        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread has signal handlers (and uvicorn installs none elsewhere)
        loop = asyncio.get_running_loop()
        for number in STOP_SIGNALS:
            installed = signal.getsignal(number)
            if not callable(installed):
                continue

            def on_signal(
                signum: int,
                frame: FrameType | None,
                installed: Callable[[int, FrameType | None], Any] = installed,
            ) -> None:
                # A signal handler runs between two bytecodes of whatever the loop was doing: the
                # cancelling is left to the loop.
                loop.call_soon_threadsafe(self.stop_requests)
                installed(signum, frame)

            signal.signal(number, on_signal)


async def _send_unavailable(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": b"The MCP server is stopping."})
