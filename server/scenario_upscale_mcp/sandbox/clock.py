"""The simulator's one source of time, injected so that tests drive it without sleeping.

Two readings and a wait, named as the server's own clock names them, so that one fake can drive both:

- ``now()``: monotonic seconds, for how long something has run (a job's timeline, an upload's
  import), unmoved by changes to the time of day;
- ``wall()``: seconds since the epoch, for the dates the API shows and the expiry of signed URLs;
- ``sleep(seconds)``: a pause that takes time on this clock (the injected latency of answers).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol

import anyio


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds, for durations (not related to the time of day)."""
        ...

    def wall(self) -> float:
        """Seconds since the Unix epoch, for instants that are shown or compared with a client's."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real time: ``time.monotonic``, ``time.time`` and anyio's sleep."""

    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


def wall_moment(clock: Clock) -> datetime:
    """The clock's time of day, as an aware UTC datetime."""
    return datetime.fromtimestamp(clock.wall(), UTC)
