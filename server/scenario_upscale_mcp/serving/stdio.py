"""MCP over stdio, as host apps start the server: stdin's lines in, stdout the protocol, stopped by
stdin closing or by SIGINT/SIGTERM, with in-flight calls cancelled and everything cleaned up."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING, Any, cast

import anyio

from scenario_upscale_mcp.serving.stopping import receive_stop_signals, stopped_status

if TYPE_CHECKING:
    from anyio.from_thread import BlockingPortal
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
    from mcp.server.mcpserver import MCPServer

logger = logging.getLogger(__name__)


def serve_stdio() -> int:
    """Serve MCP over stdio until stdin closes (exit status 0) or SIGINT/SIGTERM stops it (130/143).

    A signal stops the server the way closing stdin does (see `_serve_stdio`): in-flight tool calls are
    cancelled, so their cleanup runs (a download's temporary file is removed), then the lifespan
    closes the HTTP client, the ledger and the simulator. Logging is the caller's to set up, on stderr
    (`cli.configure_logging`): stdout is the protocol.
    """
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

        await group.start(receive_stop_signals, on_signal)
        # `stdin=` replaces only the SDK's reading of stdin; stdout is still claimed by the SDK.
        async with stdio_server(stdin=cast("anyio.AsyncFile[str]", lines)) as (read_stream, write_stream):
            logger.info("serving MCP over stdio: closing stdin, SIGINT or SIGTERM stops it")
            # What `MCPServer.run_stdio_async` does, with the input above.
            lowlevel = server._lowlevel_server
            await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())
        group.cancel_scope.cancel()  # the signal receiver
    return stopped_by[0] if stopped_by else None


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
