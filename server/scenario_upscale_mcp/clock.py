"""The one clock, and the one rule for waiting on something: poll at growing intervals up to a deadline.

Time is a dependency: whatever waits or polls takes a `Clock`, so a test drives it with a fake one
(`now` moves when `sleep` is called) and never sleeps on real time. A base layer, like `config`: it
imports nothing of the server.

The polling rule (DESIGN.md, Behaviour): the first interval is short, because most of what is
watched shows early; each next one is `POLL_GROWTH` times longer, up to a cap, so a long wait costs
few requests; no sleep runs past the deadline, and there is one last look at the deadline itself.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Protocol

import anyio

POLL_GROWTH = 1.5


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds, for deadlines and intervals (not related to the time of day)."""
        ...

    async def sleep(self, seconds: float) -> None: ...

    def wall(self) -> float:
        """Seconds since the Unix epoch, for instants that are stored or shown."""
        ...


class AnyioClock:
    """The real clock: the event loop's time and sleep (anyio), and the system's time of day."""

    def now(self) -> float:
        return anyio.current_time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)

    def wall(self) -> float:
        return time.time()


def intervals(first: float, *, cap: float, growth: float = POLL_GROWTH) -> Iterator[float]:
    """`first`, then each interval `growth` times the one before, never above `cap` (endless)."""
    interval = first
    while True:
        yield interval
        interval = min(interval * growth, cap)


class Polling:
    """Attempts 1, 2, 3…, spaced by `intervals`, until the deadline: see `polling`."""

    def __init__(self, clock: Clock, waits: Iterator[float], deadline: float | None) -> None:
        self._clock = clock
        self._waits = waits
        self._deadline = deadline
        self._attempt = 0

    def __aiter__(self) -> Polling:
        return self

    async def __anext__(self) -> int:
        if self._attempt > 0:
            remaining = math.inf if self._deadline is None else self._deadline - self._clock.now()
            if remaining <= 0:
                raise StopAsyncIteration
            await self._clock.sleep(min(next(self._waits), remaining))
        self._attempt += 1
        return self._attempt


def polling(
    clock: Clock, *, first: float, cap: float, deadline: float | None, growth: float = POLL_GROWTH
) -> Polling:
    """Look, wait, look again, …: `async for attempt in polling(...)`, the body looking once each time.

    The first attempt comes at once, even past the deadline; the body leaves the loop (`return`,
    `break`) when what it waits for has happened. Between attempts the clock sleeps the next interval
    (`first`, growing by `growth` up to `cap`), cut short at `deadline` (on `clock.now()`'s scale);
    once an attempt ends at or after the deadline the loop ends, and the code after it handles the
    wait running out. `deadline=None` waits for as long as it takes: only for a wait that something
    else bounds (a claim that goes stale, say).
    """
    return Polling(clock, intervals(first, cap=cap, growth=growth), deadline)
