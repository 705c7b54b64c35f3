"""The fake clock the in-process tests run on (tests/fake_clock.py): time jumps to the earliest wake-up,
sleepers wake in order, real work (threads, holds) is never overtaken, and the sandbox and the server
share it."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import pytest
from mcp import Client

from scenario_upscale_mcp.clock import AnyioClock
from scenario_upscale_mcp.config import Settings
from scenario_upscale_mcp.sandbox.app import Sandbox
from tests.fake_clock import FakeClock
from tests.images import png_bytes

pytestmark = pytest.mark.anyio

REAL_WORK_SECONDS = 0.05  # how long the "real work" below takes on a thread


async def test_time_jumps_to_the_earliest_wake_up_and_sleepers_wake_in_order() -> None:
    clock = FakeClock(tick=0)
    start = clock.now()
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.now() - start))

    async with anyio.create_task_group() as group:
        for name, seconds in [("slow", 3.0), ("quick", 1.0), ("middle", 2.0), ("tie", 1.0)]:
            group.start_soon(sleeper, name, seconds)

    assert woke == [("quick", 1.0), ("tie", 1.0), ("middle", 2.0), ("slow", 3.0)]


async def test_a_poller_wakes_at_each_of_its_intervals_before_a_longer_sleeper() -> None:
    clock = FakeClock(tick=0)
    start = clock.now()
    woke: list[tuple[str, float]] = []

    async def long_sleep() -> None:
        await clock.sleep(1.0)
        woke.append(("long", clock.now() - start))

    async def poller() -> None:
        for _ in range(4):
            await clock.sleep(0.3)
            woke.append(("poll", round(clock.now() - start, 9)))

    async with anyio.create_task_group() as group:
        group.start_soon(long_sleep)
        group.start_soon(poller)

    assert woke == [("poll", 0.3), ("poll", 0.6), ("poll", 0.9), ("long", 1.0), ("poll", 1.2)]


async def test_sleeping_zero_is_a_checkpoint_and_advance_moves_both_readings() -> None:
    clock = FakeClock(wall_start=1_800_000_000.0, tick=0)
    start = clock.now()
    await clock.sleep(0)
    assert (clock.now(), clock.wall()) == (start, 1_800_000_000.0)

    clock.advance(2.5)
    assert (clock.now() - start, clock.wall()) == (2.5, 1_800_000_002.5)
    with pytest.raises(ValueError, match="does not go back"):
        clock.advance(-1)


async def test_each_reading_moves_on_a_little_so_one_thing_after_another_is_never_at_the_same_instant() -> (
    None
):
    clock = FakeClock()
    first, second = clock.wall(), clock.wall()
    assert 0 < second - first < 1e-3


async def test_time_does_not_move_while_a_worker_thread_works() -> None:
    clock = FakeClock()
    done = threading.Event()

    def work() -> None:
        done.wait(10)  # released by a timer below: real work of REAL_WORK_SECONDS

    async def sleeper() -> None:
        await clock.sleep(60)
        assert done.is_set(), "a minute passed while the thread was still at work"

    threading.Timer(REAL_WORK_SECONDS, done.set).start()
    async with anyio.create_task_group() as group:
        group.start_soon(sleeper)
        group.start_soon(anyio.to_thread.run_sync, work)


async def test_time_does_not_move_while_a_hold_says_work_is_in_progress() -> None:
    clock = FakeClock()
    released = threading.Event()
    clock.hold_while(lambda: not released.is_set())

    threading.Timer(REAL_WORK_SECONDS, released.set).start()
    await clock.sleep(60)

    assert released.is_set()


async def test_move_on_after_cancels_on_virtual_time() -> None:
    clock = FakeClock(tick=0)
    start = clock.now()

    async with clock.move_on_after(5) as scope:
        await clock.sleep(3600)

    assert scope.cancelled_caught
    assert clock.now() - start == 5


async def test_a_cancelled_sleeper_hands_time_over_to_the_others() -> None:
    clock = FakeClock(tick=0)
    start = clock.now()
    woke: list[float] = []

    async def cancelled_early(scope: anyio.CancelScope) -> None:
        with scope:
            await clock.sleep(3600)  # the first to sleep: it drives time, until it is cancelled

    async def canceller(scope: anyio.CancelScope) -> None:
        await clock.sleep(1)
        scope.cancel()

    async def sleeper() -> None:
        await clock.sleep(2)
        woke.append(clock.now() - start)

    async with anyio.create_task_group() as group:
        scope = anyio.CancelScope()
        group.start_soon(cancelled_early, scope)
        group.start_soon(canceller, scope)
        group.start_soon(sleeper)

    assert woke == [2]


async def test_the_sandbox_and_the_server_share_the_fake_clock_so_a_long_job_takes_no_real_time(
    client: Client, sandbox: Sandbox, clock: FakeClock, settings: Settings
) -> None:
    assert sandbox.clock is clock
    sandbox.job_seconds = 5
    start = clock.now()

    result = await client.call_tool(
        "upscale_v3", {"image": sandbox.add_asset(png_bytes(), "a.png"), "wait": 20}
    )

    content: dict[str, Any] | None = result.structured_content
    assert content is not None and content["status"] == "success", result.content
    # Polled at the configured intervals until the job's 5 s were up: seen done at the next poll.
    assert 5 <= clock.now() - start < 5 + settings.poll_max_seconds + 0.01


@pytest.mark.real_time
async def test_a_real_time_test_runs_the_sandbox_on_the_real_clock(sandbox: Sandbox) -> None:
    assert isinstance(sandbox.clock, AnyioClock)
