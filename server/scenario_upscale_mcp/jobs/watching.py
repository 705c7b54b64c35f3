"""Watching jobs until they finish or the wait runs out, polling with growing intervals (`clock.polling`)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

import anyio

from scenario_upscale_mcp.api.answers import Job
from scenario_upscale_mcp.api.errors import NotFoundError, ScenarioError
from scenario_upscale_mcp.clock import Clock, polling

if TYPE_CHECKING:
    from scenario_upscale_mcp.api.client import ScenarioClient
logger = logging.getLogger(__name__)

OnUpdate = Callable[[Job], Awaitable[None]]


async def watch_job(
    client: ScenarioClient,
    job_id: str,
    *,
    wait_seconds: float,
    first_interval: float,
    max_interval: float,
    on_update: OnUpdate,
    clock: Clock,
) -> Job:
    """Poll until the job is terminal or `wait_seconds` pass; return the last state seen.

    The interval starts short (most of a job's progress shows early) and grows to `max_interval`, so
    a long job costs few requests. Cancelling the caller stops the polling at once; the job itself
    runs on at Scenario.
    """
    deadline = clock.now() + wait_seconds
    job: Job | None = None
    async for _ in polling(clock, first=first_interval, cap=max_interval, deadline=deadline):
        job = await client.get_job(job_id)
        await on_update(job)
        if job.is_terminal:
            break
    assert job is not None  # the first attempt always runs
    return job


async def watch_jobs(
    client: ScenarioClient,
    job_ids: list[str],
    *,
    wait_seconds: float,
    first_interval: float,
    max_interval: float,
    on_update: OnUpdate,
    on_round: Callable[[Mapping[str, Job | ScenarioError]], Awaitable[None]],
    clock: Clock,
) -> dict[str, Job | ScenarioError]:
    """Poll several jobs together until all are terminal or `wait_seconds` pass.

    Each round asks for every unfinished job once, concurrently, then the interval grows as in
    `watch_job`: one request per job per round, never more. A job the API does not know is
    dropped from polling with its error; one that cannot be read right now is asked again next
    round. Returns the last answer for every job: its state, or the error it gave.
    """
    deadline = clock.now() + wait_seconds
    latest: dict[str, Job | ScenarioError] = {}
    pending = list(dict.fromkeys(job_ids))

    async def poll(job_id: str) -> None:
        try:
            job = await client.get_job(job_id)
        except NotFoundError as exc:
            latest[job_id] = exc
            pending.remove(job_id)
            return
        except ScenarioError as exc:
            latest[job_id] = exc
            return
        latest[job_id] = job
        if job.is_terminal:
            pending.remove(job_id)
        await on_update(job)

    async for _ in polling(clock, first=first_interval, cap=max_interval, deadline=deadline):
        async with anyio.create_task_group() as group:
            for job_id in list(pending):
                group.start_soon(poll, job_id)
        await on_round(latest)
        if not pending:
            break
    return latest
