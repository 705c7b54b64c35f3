"""The one polling rule, on a fake clock: intervals grow to their cap, no sleep runs past the deadline, nothing
sleeps on real time. Then the same rule seen through job watching."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import anyio
import httpx
import pytest

from scenario_upscale_mcp.api.answers import Job
from scenario_upscale_mcp.api.client import ScenarioClient
from scenario_upscale_mcp.api.errors import ScenarioError
from scenario_upscale_mcp.clock import AnyioClock, Clock, intervals, polling
from scenario_upscale_mcp.config import Settings
from scenario_upscale_mcp.jobs.watching import watch_job, watch_jobs

pytestmark = pytest.mark.anyio

START = 1000.0


class FakeClock:
    """Time moves only when something sleeps on it (or a test advances it); every sleep is recorded."""

    def __init__(self) -> None:
        self.time = START
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.time += seconds
        await anyio.lowlevel.checkpoint()

    def wall(self) -> float:
        return 1_700_000_000.0 + self.time


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_both_clocks_are_clocks() -> None:
    clocks: list[Clock] = [AnyioClock(), FakeClock()]
    assert all(clock.wall() > 1_600_000_000 for clock in clocks)


def test_intervals_grow_by_half_up_to_the_cap() -> None:
    assert list(itertools.islice(intervals(1.0, cap=5.0), 7)) == [1.0, 1.5, 2.25, 3.375, 5.0, 5.0, 5.0]


def test_a_first_interval_above_the_cap_is_kept_once() -> None:
    assert list(itertools.islice(intervals(2.0, cap=0.5), 3)) == [2.0, 0.5, 0.5]


async def test_without_a_deadline_the_sleeps_grow_to_the_cap(clock: FakeClock) -> None:
    attempts = []
    async for attempt in polling(clock, first=1.0, cap=5.0, deadline=None):
        attempts.append(attempt)
        if attempt == 7:
            break
    assert attempts == [1, 2, 3, 4, 5, 6, 7]
    assert clock.sleeps == [1.0, 1.5, 2.25, 3.375, 5.0, 5.0]  # none after the last attempt


async def test_the_last_sleep_is_cut_short_at_the_deadline_and_looked_once_more(clock: FakeClock) -> None:
    looked_at: list[float] = []
    async for _ in polling(clock, first=1.0, cap=5.0, deadline=START + 10.0):
        looked_at.append(clock.now() - START)

    assert clock.sleeps == [1.0, 1.5, 2.25, 3.375, 1.875]
    assert looked_at == [0.0, 1.0, 2.5, 4.75, 8.125, 10.0]
    assert clock.now() == START + 10.0


async def test_the_first_attempt_comes_at_once_even_past_the_deadline(clock: FakeClock) -> None:
    attempts = [attempt async for attempt in polling(clock, first=1.0, cap=5.0, deadline=START - 1.0)]
    assert (attempts, clock.sleeps) == ([1], [])


async def test_time_spent_looking_counts_against_the_deadline(clock: FakeClock) -> None:
    async for _ in polling(clock, first=1.0, cap=5.0, deadline=START + 4.0):
        clock.time += 0.5  # each look takes half a second
    # looks at 0 (ends 0.5), 1.5 (ends 2.0), 3.5 (ends 4.0): then the deadline has passed.
    assert clock.sleeps == [1.0, 1.5]
    assert clock.now() == START + 4.0


async def test_leaving_the_loop_early_sleeps_no_more(clock: FakeClock) -> None:
    async for attempt in polling(clock, first=0.1, cap=1.0, deadline=START + 60.0):
        if attempt == 3:
            break
    assert clock.sleeps == pytest.approx([0.1, 0.15])


# --- through job watching ------------------------------------------------------------------------


def api_answering(statuses: Iterator[str], seen: list[str]) -> ScenarioClient:
    def answer(request: httpx.Request) -> httpx.Response:
        job_id = request.url.path.rsplit("/", 1)[-1]
        seen.append(job_id)
        return httpx.Response(200, json={"job": {"jobId": job_id, "status": next(statuses), "progress": 0.5}})

    settings = Settings(api_key="key", api_secret="secret", base_url="https://api.test/v1")
    return ScenarioClient(settings, transport=httpx.MockTransport(answer), retry_base_seconds=0.001)


async def test_a_job_is_watched_at_growing_intervals_until_it_ends(clock: FakeClock) -> None:
    seen: list[str] = []
    updates: list[str] = []

    async def on_update(job: Job) -> None:
        updates.append(job.status)

    statuses = iter(["queued", "in-progress", "in-progress", "in-progress", "success"])
    async with api_answering(statuses, seen) as client:
        job = await watch_job(
            client,
            "job_1",
            wait_seconds=600.0,
            first_interval=1.0,
            max_interval=5.0,
            on_update=on_update,
            clock=clock,
        )
    assert job.status == "success"
    assert updates == ["queued", "in-progress", "in-progress", "in-progress", "success"]
    assert clock.sleeps == [1.0, 1.5, 2.25, 3.375]


async def test_watching_a_job_stops_at_the_wait_with_the_last_state(clock: FakeClock) -> None:
    seen: list[str] = []

    async def on_update(job: Job) -> None:
        pass

    async with api_answering(itertools.repeat("in-progress"), seen) as client:
        job = await watch_job(
            client,
            "job_1",
            wait_seconds=10.0,
            first_interval=1.0,
            max_interval=5.0,
            on_update=on_update,
            clock=clock,
        )
    assert job.status == "in-progress"
    assert clock.sleeps == [1.0, 1.5, 2.25, 3.375, 1.875]
    assert len(seen) == 6  # one look per attempt, the last at the deadline


async def test_jobs_watched_together_are_asked_once_per_round(clock: FakeClock) -> None:
    seen: list[str] = []
    rounds: list[int] = []

    async def on_update(job: Job) -> None:
        pass

    async def on_round(answers: object) -> None:
        rounds.append(len(seen))

    # Round 1: both running; round 2: the first ends; round 3: the second ends.
    statuses = iter(["queued", "queued", "success", "in-progress", "failure"])
    async with api_answering(statuses, seen) as client:
        answers: dict[str, Job | ScenarioError] = await watch_jobs(
            client,
            ["job_1", "job_2", "job_1"],
            wait_seconds=60.0,
            first_interval=0.5,
            max_interval=5.0,
            on_update=on_update,
            on_round=on_round,
            clock=clock,
        )
    assert rounds == [2, 4, 5]
    assert sorted(answers) == ["job_1", "job_2"]
    assert all(isinstance(answer, Job) and answer.is_terminal for answer in answers.values())
    assert clock.sleeps == [0.5, 0.75]
