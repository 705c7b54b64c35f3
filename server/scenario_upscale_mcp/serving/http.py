"""MCP over streamable HTTP at http://HOST:PORT/mcp, for hosts that connect by URL, served by uvicorn;
stopped by SIGINT/SIGTERM, with the requests in flight cancelled at once (`StopRequestsOnSignal`)."""

from __future__ import annotations

import errno
import logging
import signal
import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio

from scenario_upscale_mcp.serving.stopping import STOP_SIGNALS, stopped_status

if TYPE_CHECKING:
    from types import FrameType

    from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)

# After SIGINT/SIGTERM, how long uvicorn waits for requests before cancelling them: a backstop, since
# `StopRequestsOnSignal` cancels the MCP requests in flight at once.
HTTP_GRACEFUL_SHUTDOWN_SECONDS = 5


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

    Returns the exit status: 0, 130/143 after SIGINT/SIGTERM, or 1 when it could not start (a taken
    port is one line on stderr: which port, and what to do).

    uvicorn is run here rather than through `MCPServer.run("streamable-http")` so that its logs go
    through this process's logging (stderr) instead of uvicorn's own configuration (access log on stdout).
    """
    import uvicorn

    warning = exposure_warning(host)
    if warning:
        # Not through logging: SCENARIO_LOG_LEVEL must not hide it.
        print(warning, file=sys.stderr, flush=True)
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
        # Bound here, before anything else: a taken port is one clear line and exit status 1, and the
        # line saying where it serves is only logged once the port is this server's (with --port 0,
        # the port picked).
        try:
            listening = bind_socket(host, port)
        except OSError as error:
            print(bind_failure(host, port, error), file=sys.stderr, flush=True)
            return 1
        with listening:
            from scenario_upscale_mcp.app import create_server

            # On loopback the SDK turns on DNS-rebinding protection (Host and Origin must be loopback).
            app = StopRequestsOnSignal(create_server().streamable_http_app(host=host))
            url_host = f"[{host}]" if ":" in host else host
            bound_port = listening.getsockname()[1]
            logger.info("serving MCP over streamable HTTP at http://%s:%d/mcp", url_host, bound_port)
            server = uvicorn.Server(
                uvicorn.Config(
                    app,
                    host=host,
                    port=bound_port,
                    log_config=None,  # keep the logging configured above: stderr, SCENARIO_LOG_LEVEL
                    access_log=False,
                    timeout_graceful_shutdown=HTTP_GRACEFUL_SHUTDOWN_SECONDS,
                )
            )
            server.run(sockets=[listening])
            if not server.started:  # the app's startup failed (uvicorn logged why)
                return 1
    except _StoppedBySignal as stop:
        logger.info("%s: stopped", signal.Signals(stop.signum).name)
        return stopped_status(stop.signum)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return 0


def bind_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to HOST:PORT, as uvicorn would bind it (uvicorn listens on it); OSError if not."""
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on connections whose proto says TCP (else Nagle
    # holds each JSON answer's body until the client's delayed ACK, ~40 ms a call in 2026-07-28 mode).
    sock = socket.socket(
        socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP
    )
    try:
        if sys.platform != "win32":  # on Windows, SO_REUSEADDR would let it share a port in use
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
    except BaseException:
        sock.close()
        raise
    return sock


def bind_failure(host: str, port: int, error: OSError) -> str:
    """The one line for a port the server cannot bind: which port, and what to do."""
    prefix = "scenario-upscale-mcp: cannot serve MCP over HTTP"
    if error.errno == errno.EADDRINUSE:
        return (
            f"{prefix}: port {port} on {host} is already in use. Stop what is using it, "
            "or choose another port with --port (0 picks a free one)."
        )
    return (
        f"{prefix} on {host}:{port}: {error.strerror or error}. "
        "Check --host and --port (a port below 1024 needs privileges; 0 picks a free one)."
    )


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
