"""get_job: one job's state right now, from the API."""

from __future__ import annotations

from typing import Annotated

from mcp.types import CallToolResult, ToolAnnotations

from scenario_upscale_mcp.jobs.submission import observe
from scenario_upscale_tools.common import (
    JobId,
    JobView,
    ToolContext,
    ToolSpec,
    app_state,
    job_summary,
    structured_result,
)


async def get_job(ctx: ToolContext, jobId: JobId) -> Annotated[CallToolResult, JobView]:
    """Get a Scenario job's status now: status, progress (0-1), cost, output asset ids, and for a failed
    job the API's error and hint. Does not wait and does not download anything (wait_for_jobs does).
    """
    state = app_state(ctx)
    job = await state.client.get_job(jobId)
    record = await observe(state, job)
    view = JobView.of(job, record.model, cost=record.cost)
    return structured_result(view, job_summary(view))


TOOL = ToolSpec(
    fn=get_job,
    title="Get upscale job status",
    annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=True),
)
