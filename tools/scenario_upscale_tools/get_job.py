"""get_job: one job's state right now, from the API."""

from __future__ import annotations

from typing import Annotated

from mcp.types import CallToolResult, ToolAnnotations

from scenario_upscale_mcp.api.errors import NotFoundError
from scenario_upscale_tools.arguments import JobId, ToolContext, upscaler_of
from scenario_upscale_tools.inventory import ToolSpec
from scenario_upscale_tools.not_found import unknown_id
from scenario_upscale_tools.views import JobView, job_view, tool_result


async def get_job(ctx: ToolContext, jobId: JobId) -> Annotated[CallToolResult, JobView]:
    """Get an upscale job's status now: progress, cost, output asset ids, or error and hint. Does not wait
    or download (wait_for_jobs does).
    """
    upscaler = upscaler_of(ctx)
    try:
        job = await upscaler.client.get_job(jobId)
    except NotFoundError as exc:
        raise unknown_id("jobId", jobId, exc, "list_jobs shows the recent jobs.") from exc
    view = job_view(await upscaler.observe(job), job)
    return await tool_result(view, view.sentence())


TOOL = ToolSpec(
    fn=get_job,
    title="Get upscale job status",
    annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=True),
)
