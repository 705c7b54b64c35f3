"""Watching jobs and saving their results: the part of every upscale that comes after submitting."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from scenario_upscale_mcp.api.answers import Job
from scenario_upscale_mcp.api.errors import DownloadError, NotFoundError, ScenarioError
from scenario_upscale_mcp.files import EXTENSIONS, SavedFile, describe_image, output_file_name, save_stream

if TYPE_CHECKING:
    from scenario_upscale_mcp.api.client import ScenarioClient

logger = logging.getLogger(__name__)

OnUpdate = Callable[[Job], Awaitable[None]]
POLL_GROWTH = 1.5


async def watch_job(
    client: ScenarioClient,
    job_id: str,
    *,
    wait_seconds: float,
    first_interval: float,
    max_interval: float,
    on_update: OnUpdate,
) -> Job:
    """Poll until the job is terminal or `wait_seconds` pass; return the last state seen.

    The interval starts short (most of a job's progress shows early) and grows to `max_interval`, so
    a long job costs few requests. Cancelling the caller stops the polling at once; the job itself
    runs on at Scenario.
    """
    deadline = anyio.current_time() + wait_seconds
    interval = first_interval
    while True:
        job = await client.get_job(job_id)
        await on_update(job)
        remaining = deadline - anyio.current_time()
        if job.is_terminal or remaining <= 0:
            return job
        await anyio.sleep(min(interval, remaining))
        interval = min(interval * POLL_GROWTH, max_interval)


async def watch_jobs(
    client: ScenarioClient,
    job_ids: list[str],
    *,
    wait_seconds: float,
    first_interval: float,
    max_interval: float,
    on_update: OnUpdate,
    on_round: Callable[[Mapping[str, Job | ScenarioError]], Awaitable[None]],
) -> dict[str, Job | ScenarioError]:
    """Poll several jobs together until all are terminal or `wait_seconds` pass.

    Each round asks for every unfinished job once, concurrently, then the interval grows as in
    `watch_job`: one request per job per round, never more. A job the API does not know is
    dropped from polling with its error; one that cannot be read right now is asked again next
    round. Returns the last answer for every job: its state, or the error it gave.
    """
    deadline = anyio.current_time() + wait_seconds
    interval = first_interval
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

    while True:
        async with anyio.create_task_group() as group:
            for job_id in list(pending):
                group.start_soon(poll, job_id)
        await on_round(latest)
        remaining = deadline - anyio.current_time()
        if not pending or remaining <= 0:
            return latest
        await anyio.sleep(min(interval, remaining))
        interval = min(interval * POLL_GROWTH, max_interval)


@dataclass(frozen=True)
class NamingHint:
    """What an output file's name is made of: `<stem>_<model tag>_x<factor>_<short job id>`."""

    source_stem: str
    model_tag: str
    factor: float | None


async def save_asset(
    client: ScenarioClient,
    asset_id: str,
    folder: Path,
    file_name_for: Callable[[str], str],
    *,
    target_format: str | None = None,
) -> SavedFile:
    """Fetch a fresh link (signed URLs expire), stream the file to disk, describe what was saved.

    With `target_format`, Scenario converts the asset first (`POST /assets/{id}/download`). A link
    refused as expired is fetched again once, and a cut connection is retried once; neither leaves
    a file under the final name.
    """
    last_error: DownloadError | None = None
    for _attempt in range(2):
        if target_format is not None:
            link = await client.convert_asset(asset_id, target_format)
            url, mime_type = link.url, link.mime_type
        else:
            asset = await client.get_asset(asset_id)
            if not asset.url:
                raise DownloadError(
                    f"Asset {asset_id} has no download URL yet (status {asset.status}); try again shortly."
                )
            url, mime_type = asset.url, asset.mime_type
        extension = EXTENSIONS.get(mime_type or "", target_format or "png")
        try:
            async with client.open_download(url) as (length, chunks):
                path, size = await save_stream(folder, file_name_for(extension), length, chunks)
        except DownloadError as exc:
            logger.info("download of %s failed once: %s", asset_id, exc)
            last_error = exc
            continue
        described_type, width, height = await anyio.to_thread.run_sync(describe_image, path)
        return SavedFile(
            path=path, bytes=size, mime_type=described_type or mime_type, width=width, height=height
        )
    assert last_error is not None
    raise last_error


async def save_job_outputs(
    client: ScenarioClient, job: Job, folder: Path, naming: NamingHint, *, target_format: str | None = None
) -> list[SavedFile]:
    """Save every output asset of a successful job under descriptive, never-overwriting names."""
    saved: list[SavedFile] = []
    for index, asset_id in enumerate(job.metadata.asset_ids):

        def name_for(extension: str, index: int = index) -> str:
            return output_file_name(
                naming.source_stem, naming.model_tag, naming.factor, job.job_id, extension, index
            )

        saved.append(await save_asset(client, asset_id, folder, name_for, target_format=target_format))
    return saved
