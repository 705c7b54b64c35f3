"""get_job: one job's state right now, from the API."""

from __future__ import annotations

from typing import Annotated

from mcp.types import CallToolResult, ToolAnnotations

from scenario_upscale_tools.arguments import JobId, ToolContext, upscaler_of
from scenario_upscale_tools.inventory import ToolSpec
from scenario_upscale_tools.views import JobView, job_view, tool_result


async def get_job(ctx: ToolContext, jobId: JobId) -> Annotated[CallToolResult, JobView]:
    """Get a Scenario job's status now: status, progress (0-1), cost, output asset ids, and for a failed
    job the API's error and hint. Does not wait and does not download anything (wait_for_jobs does).
    """
    upscaler = upscaler_of(ctx)
    job = await upscaler.client.get_job(jobId)
    view = job_view(await upscaler.observe(job), job)
    return await tool_result(view, view.sentence())


TOOL = ToolSpec(
    fn=get_job,
    title="Get upscale job status",
    annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=True),
)
