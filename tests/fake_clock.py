"""Virtual time for in-process tests: one fake clock that the server and the simulator share.

The server takes it as its one clock (`create_server(clock=...)`: polling, waits, settling, parallel
slots, API back-off, the ledger's timestamps) and the simulator as its own (`Sandbox(clock=...)`: job
timelines, upload imports, dates, signed-URL expiry, injected latency). Both read the same virtual
time, so a 0.3 s job is done exactly when the server's polling reaches 0.3 s, and nobody waits for it.

How time moves (an "autojump" clock, like trio's `MockClock(autojump_threshold=0)`, made safe for
threads):

- `now()` is virtual monotonic seconds; `wall()` is a virtual time of day that moves with it. The
  time of day starts at the real one when the clock is made (or at `wall_start`), so dates look
  current and the ledger's recency windows treat what was just done as recent.
- Each reading moves time on by `tick` (a microsecond unless given): as on a real clock, two things
  done one after the other are never at the same instant (jobs submitted in turn are listed newest
  first), while the work between them takes no time worth counting. A test of an exact boundary
  (a URL valid for exactly 24 hours) passes `tick=0`, and time then moves only when told.
- `sleep(seconds)` registers a wake-up at `now() + seconds` and waits for it; `sleep(0)` is a plain
  checkpoint (time does not move), as anyio's is.
- Time jumps to the EARLIEST pending wake-up, never by one sleeper's own duration, and every sleeper
  due by then wakes, in order of wake-up (ties in the order they slept). A test with several
  sleepers (jobs watched together, identical calls waiting on one another, a poll racing a
  deadline) sees them wake in the order real time would wake them.
- A jump happens only once the program is quiet: no other task is ready to run on the event loop,
  no worker thread is busy (anyio's default thread limiter: the ledger's SQLite calls, Pillow, file
  writes), and no `hold_while` condition reports work in progress (the simulator's render threads:
  see `hold_while_rendering`). Real work is therefore never overtaken by virtual time: it takes no
  virtual time at all, as if the computer were infinitely fast. Waiting for a busy thread is the
  one real wait here (it is waiting for work, not for time): checked after half a millisecond,
  then at doubling pauses up to `LONGEST_CHECK_SECONDS` (looking every millisecond would steal the
  GIL from a long render); after `PATIENCE_SECONDS` of it the clock jumps anyway, so a thread stuck
  for good (a test blocking one on purpose) slows time down instead of freezing it.
- One sleeper at a time drives time: whoever sleeps first while nobody drives. The others simply
  wait for their wake-up; a driver that wakes (or is cancelled) hands over to the earliest sleeper
  left. So there is never a background task to start or stop: with nobody asleep, time stands still.
- `advance(seconds)` moves time by hand (waking whoever is due), for a test that sets time itself;
  `move_on_after(seconds)` is anyio's cancel scope on virtual time.

"Ready to run" is read from the asyncio event loop's queue of ready callbacks (CPython's
`BaseEventLoop._ready`; anyio's own `wait_all_tasks_blocked` reads loop internals too); on a loop
without one, the driver yields `FALLBACK_CHECKPOINTS` times instead.

Tests that need real time (threads of their own that race the event loop, sockets served from
another thread, server processes) opt out: under `@pytest.mark.real_time` the `sandbox` and the
`server` fixtures run on the server's real clock (`shared_clock`, tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import AsyncIterator, Callable, Sized
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel
import anyio.to_thread

if TYPE_CHECKING:
    from scenario_upscale_mcp.sandbox.app import Sandbox

START = 1_000.0
TICK = 1e-6  # seconds each reading moves time on
PATIENCE_SECONDS = 5.0  # real seconds a jump waits for busy threads before going ahead anyway
FIRST_CHECK_SECONDS = 0.0005  # real seconds before a second look at busy threads, doubling from there
LONGEST_CHECK_SECONDS = 0.01
FALLBACK_CHECKPOINTS = 100  # yields that stand for "nothing else is ready" on a loop without a queue


@dataclass(order=True)
class _Sleeper:
    wake_at: float
    order: int
    # Set when the sleeper wakes, or when it is asked to drive time (then `woken` stays False).
    signal: anyio.Event = field(compare=False, default_factory=anyio.Event)
    woken: bool = field(compare=False, default=False)


class FakeClock:
    """Virtual time that jumps to the next wake-up once everything else is waiting (see the module)."""

    def __init__(self, *, wall_start: float | None = None, tick: float = TICK) -> None:
        self._now = START
        self._tick = tick
        self._wall_start = time.time() if wall_start is None else wall_start
        self._sleepers: list[_Sleeper] = []  # a heap: the earliest wake-up first
        self._order = itertools.count()
        self._driver: _Sleeper | None = None
        self._holds: list[Callable[[], bool]] = []

    # --- the clock the server and the simulator read ----------------------------------------------

    def now(self) -> float:
        self._now += self._tick
        return self._now

    def wall(self) -> float:
        return self._wall_start + (self.now() - START)

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await anyio.lowlevel.checkpoint()
            return
        me = _Sleeper(self.now() + seconds, next(self._order))
        heapq.heappush(self._sleepers, me)
        try:
            while not me.woken:
                if self._driver is None:
                    self._driver = me
                if self._driver is me:
                    await self._drive(me)
                else:
                    await me.signal.wait()
                    if not me.woken:  # asked to drive: wait on a fresh signal from now on
                        me.signal = anyio.Event()
        finally:
            if not me.woken:  # cancelled: its wake-up is forgotten
                self._sleepers.remove(me)
                heapq.heapify(self._sleepers)
            if self._driver is me or self._driver is None:
                self._driver = None
                self._call_a_driver()

    # --- what tests use --------------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move time forward by hand, waking every sleeper due by then."""
        if seconds < 0:
            raise ValueError("time does not go back")
        self._move_to(self._now + seconds)

    def hold_while(self, busy: Callable[[], bool]) -> None:
        """Never jump while `busy()` is true: real work elsewhere (a thread) that time must not overtake."""
        self._holds.append(busy)

    @asynccontextmanager
    async def move_on_after(self, seconds: float) -> AsyncIterator[anyio.CancelScope]:
        """`anyio.move_on_after` on virtual time: the body is cancelled once `seconds` have passed."""
        scope = anyio.CancelScope()

        async def alarm() -> None:
            await self.sleep(seconds)
            scope.cancel()

        async with anyio.create_task_group() as group:
            group.start_soon(alarm)
            try:
                with scope:
                    yield scope
            finally:
                group.cancel_scope.cancel()  # the alarm, if the body ended first

    # --- how time moves ---------------------------------------------------------------------------

    def _move_to(self, moment: float) -> None:
        self._now = max(self._now, moment)
        while self._sleepers and self._sleepers[0].wake_at <= self._now:
            sleeper = heapq.heappop(self._sleepers)
            sleeper.woken = True
            sleeper.signal.set()

    def _call_a_driver(self) -> None:
        if self._sleepers:
            self._sleepers[0].signal.set()

    async def _drive(self, me: _Sleeper) -> None:
        """Jump from wake-up to wake-up, each time once the program is quiet, until `me` wakes."""
        while not me.woken:
            await self._until_quiet(me)
            if not me.woken:
                self._move_to(self._sleepers[0].wake_at)

    async def _until_quiet(self, me: _Sleeper) -> None:
        busy_since: float | None = None
        pause = FIRST_CHECK_SECONDS
        spins = 0
        while True:
            await anyio.lowlevel.checkpoint()
            if me.woken:
                return
            ready = _ready_callbacks()
            if ready is None:
                spins += 1
                if spins < FALLBACK_CHECKPOINTS:
                    continue
            elif len(ready) > 0:
                continue
            if not self._work_in_progress():
                return
            busy_since = time.monotonic() if busy_since is None else busy_since
            if time.monotonic() - busy_since >= PATIENCE_SECONDS:
                return
            await anyio.sleep(pause)  # real time: waiting for work, not for time
            pause = min(2 * pause, LONGEST_CHECK_SECONDS)

    def _work_in_progress(self) -> bool:
        if anyio.to_thread.current_default_thread_limiter().borrowed_tokens > 0:
            return True
        return any(busy() for busy in self._holds)


def _ready_callbacks() -> Sized | None:
    """The event loop's callbacks ready to run now (other tasks' next steps), if the loop shows them."""
    ready: Sized | None = getattr(asyncio.get_running_loop(), "_ready", None)
    return ready


def hold_while_rendering(clock: FakeClock, sandbox: Sandbox) -> None:
    """Hold `clock` while the simulator renders an output on one of its threads.

    A job cannot succeed before its output is rendered (it stays "finalizing"), so time racing ahead
    of a render would make a job outlast waits it fits in on real time.
    """
    clock.hold_while(lambda: any(not job.render_finished.is_set() for job in sandbox.jobs.values()))
