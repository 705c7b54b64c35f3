"""cancel_job: ask the API to cancel a job; say plainly when it will not."""

from __future__ import annotations

from typing import Annotated

from mcp.types import CallToolResult, ToolAnnotations

from scenario_upscale_mcp.api.errors import BadRequestError, NotFoundError
from scenario_upscale_tools.arguments import JobId, ToolContext, upscaler_of
from scenario_upscale_tools.inventory import ToolSpec
from scenario_upscale_tools.not_found import unknown_id
from scenario_upscale_tools.views import JobView, job_view, tool_result


async def cancel_job(ctx: ToolContext, jobId: JobId) -> Annotated[CallToolResult, JobView]:
    """Try to cancel a running upscale job; Scenario often refuses, and the job then runs on and is
    billed. Returns the job's state.
    """
    upscaler = upscaler_of(ctx)
    try:
        await upscaler.client.cancel_job(jobId)
        refused = None
    except BadRequestError as exc:
        refused = exc.reason or str(exc)
    except NotFoundError as exc:
        raise unknown_id("jobId", jobId, exc, "list_jobs shows the recent jobs.") from exc
    try:
        job = await upscaler.client.get_job(jobId)
    except NotFoundError as exc:
        raise unknown_id("jobId", jobId, exc, "list_jobs shows the recent jobs.") from exc
    view = job_view(await upscaler.observe(job), job)
    if refused is None:
        summary = f"Asked Scenario to cancel job {jobId}; it is now {job.status}."
    elif job.is_terminal:
        summary = (
            f"Job {jobId} could not be canceled ({refused}): it had already ended with status {job.status}."
        )
    else:
        summary = (
            f"Scenario refused to cancel job {jobId} ({refused}). The job keeps running and will be billed; "
            f"it is {job.status} at {job.progress:.0%}."
        )
    view.notice = summary
    return await tool_result(view, summary)


TOOL = ToolSpec(
    fn=cancel_job,
    title="Cancel an upscale job",
    annotations=ToolAnnotations(
        read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=True
    ),
)
