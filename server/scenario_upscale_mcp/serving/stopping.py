"""How a signal stops the server, over either transport: which signals, the exit status after one, and
receiving them in the event loop (not in a signal handler)."""

from __future__ import annotations

import os
import signal
import sys
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    import anyio.abc

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def stopped_status(signum: int) -> int:
    """The exit status after a stop by `signum`: 128 + its number (130 for SIGINT, 143 for SIGTERM),
    what a shell reports for a process the signal ended, so parents see the same status as before the
    server handled signals, now with everything cleaned up."""
    return 128 + signum


async def receive_stop_signals(
    on_signal: Callable[[int], Awaitable[None]],
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Call `on_signal` in the event loop for each SIGINT/SIGTERM, until cancelled (a task to `start`)."""
    if sys.platform == "win32":
        # No asyncio signal handlers on Windows: Ctrl-C is asyncio's KeyboardInterrupt (see
        # `stdio.serve_stdio`).
        task_status.started()
        return
    try:
        with anyio.open_signal_receiver(*STOP_SIGNALS) as signals:
            task_status.started()
            async for signal_number in signals:
                await on_signal(signal_number)
    finally:
        # The server has stopped and the process is ending: one more Ctrl-C ends it at once, instead of
        # raising KeyboardInterrupt somewhere in the last of the teardown, and with the status a stop by
        # SIGINT has (130), not as a process the signal killed (which a second Ctrl-C racing the first
        # stop's end would otherwise get).
        signal.signal(signal.SIGINT, _exit_as_stopped_by_sigint)


def _exit_as_stopped_by_sigint(signum: int, frame: object) -> None:
    os._exit(stopped_status(signal.SIGINT))
