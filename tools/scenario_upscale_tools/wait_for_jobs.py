"""wait_for_jobs: wait for up to 32 jobs at once, with progress; save the outputs of those that succeed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated

import anyio
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from scenario_upscale_mcp.api.answers import Job
from scenario_upscale_mcp.api.errors import InputError, MissingCredentialsError, NotFoundError, ScenarioError
from scenario_upscale_mcp.api.statuses import TERMINAL_STATUSES
from scenario_upscale_mcp.outputs.folders import resolve_output_dir
from scenario_upscale_mcp.outputs.writing import SavedFile
from scenario_upscale_tools.arguments import JobId, LaterOutputDir, ToolContext, upscaler_of
from scenario_upscale_tools.delivery import settle
from scenario_upscale_tools.inventory import ToolSpec
from scenario_upscale_tools.progress import MonotonicProgress
from scenario_upscale_tools.views import JobView, ResultModel, count, tool_result, unchecked_job

if TYPE_CHECKING:
    from scenario_upscale_mcp.service import Upscaler

MAX_JOBS = 32


class WaitResult(ResultModel):
    jobs: list[JobView] = Field(
        description="Every requested job, in the order asked, in the common job shape."
    )
    finished: int = Field(description="How many jobs reached success, failure or canceled.")
    running: int = Field(description="How many jobs are still running (or could not be checked).")
    next: str | None = Field(default=None, description="What to do next, when some jobs are not finished.")


async def wait_for_jobs(
    ctx: ToolContext,
    jobIds: Annotated[
        list[JobId] | None,
        Field(
            min_length=1,
            max_length=MAX_JOBS,
            description="Job ids from upscale_v3 or upscale_texture.",
        ),
    ] = None,
    batchId: Annotated[
        str | None, Field(pattern=r"^batch-[0-9a-f]{12}$", description="Or: all jobs of an upscale_batch.")
    ] = None,
    timeout: Annotated[  # noqa: ASYNC109 - the documented argument name; the wait is bounded by it
        float,
        Field(
            ge=0,
            le=3600,
            description="Seconds to wait at most (0 = check once).",
        ),
    ] = 45,
    outputDir: LaterOutputDir = None,
) -> Annotated[CallToolResult, WaitResult]:
    """Wait for upscale jobs (or a batch's), with progress, and save the outputs of those that succeed;
    call again with the ids still running.
    """
    upscaler = upscaler_of(ctx)
    settings = upscaler.settings
    # Given, outputDir holds for every job; else each is saved where its own upscale call asked to.
    folder = resolve_output_dir(outputDir, settings) if outputDir else None
    if settings.credentials() is None:
        raise MissingCredentialsError
    job_ids = list(dict.fromkeys(jobIds or await _batch_jobs(upscaler, batchId, jobIds)))
    settled: dict[str, tuple[JobView, list[SavedFile]]] = {}
    progress = MonotonicProgress(ctx)

    async with anyio.create_task_group() as savers:

        async def save(job: Job) -> None:
            settled[job.job_id] = await settle(upscaler, job, folder)

        async def on_update(job: Job) -> None:
            if job.is_terminal:  # reported once: a finished job is not polled again
                savers.start_soon(save, job)  # saving overlaps the polling of the other jobs

        async def on_round(answers: Mapping[str, Job | ScenarioError]) -> None:
            # A job the API does not know counts as done: no more work will come of it.
            ended = [
                a
                for a in answers.values()
                if isinstance(a, NotFoundError) or (isinstance(a, Job) and a.is_terminal)
            ]
            running = sum(a.progress for a in answers.values() if isinstance(a, Job) and not a.is_terminal)
            done = (len(ended) + running) / len(job_ids)
            await progress.report(done, f"{len(ended)} of {len(job_ids)} jobs finished")

        answers = await upscaler.watch_jobs(
            job_ids,
            wait_seconds=min(timeout, settings.max_wait_seconds),
            on_update=on_update,
            on_round=on_round,
        )

    views: list[JobView] = []
    saved: list[SavedFile] = []
    for job_id in job_ids:
        outcome = answers.get(job_id)
        if job_id in settled:
            view, files = settled[job_id]
            saved += files
        elif isinstance(outcome, NotFoundError):
            view = unchecked_job(job_id, "not-found", outcome)
        elif isinstance(outcome, ScenarioError) or outcome is None:
            view = unchecked_job(job_id, "unknown", outcome)
        else:
            view, _ = await settle(upscaler, outcome, folder)  # still running: records it, saves nothing
        views.append(view)

    running = [view.jobId for view in views if view.status not in (*TERMINAL_STATUSES, "not-found")]
    result = WaitResult(jobs=views, finished=len(views) - len(running), running=len(running))
    succeeded = sum(v.status == "success" for v in views)
    summary = f"{result.finished} of {count(len(views), 'job')} finished ({succeeded} succeeded)."
    if saved:
        summary += (
            f" Saved {count(len(saved), 'file')}: "
            + "; ".join(f"{file.path} ({file.width}×{file.height}, {file.bytes:,} bytes)" for file in saved)
            + "."
        )
    if running:
        summary += f" Still running: {', '.join(str(job_id) for job_id in running)}."
        result.next = (
            f"Call wait_for_jobs again with jobIds {running} to keep waiting; the jobs keep running "
            "(and are billed) either way."
        )
        summary += " " + result.next
    else:
        summary += " Nothing is left running."
    problems = [f"{v.jobId}: {v.status}{' — ' + v.error if v.error else ''}" for v in views if v.error]
    if problems:
        summary += " " + "; ".join(problems)
    notices = [v.notice for v in views if v.notice]
    if notices:
        summary += " " + " ".join(notices)
    return await tool_result(result, summary, saved)


async def _batch_jobs(upscaler: Upscaler, batch_id: str | None, job_ids: list[str] | None) -> list[str]:
    """The jobs of the batch `batch_id`, as the ledger has them (any number: a batch is bounded by
    SCENARIO_MAX_BATCH_IMAGES); exactly one of the two arguments must be given."""
    if (batch_id is None) == (job_ids is None):
        raise InputError("jobIds, batchId: give exactly one of them.")
    assert batch_id is not None
    records = await upscaler.ledger(lambda db: db.jobs_in_batch(batch_id))
    if not records:
        raise InputError(
            f"batchId: no jobs of {batch_id} are recorded by this server (a dry run submits none); "
            "upscale_batch returns the batchId of the jobs it submits."
        )
    return [record.job_id for record in records]


TOOL = ToolSpec(
    fn=wait_for_jobs,
    title="Wait for upscale jobs",
    annotations=ToolAnnotations(
        read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=True
    ),
)
