"""list_jobs: recent jobs from the local ledger, newest first."""

from __future__ import annotations

from typing import Annotated

from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from scenario_upscale_mcp.api.statuses import JobStatus
from scenario_upscale_tools.arguments import ToolContext, upscaler_of
from scenario_upscale_tools.inventory import ToolSpec
from scenario_upscale_tools.views import JobView, ResultModel, job_view, tool_result


class JobList(ResultModel):
    jobs: list[JobView] = Field(description="Newest first, as last seen by this server (not refreshed).")


async def list_jobs(
    ctx: ToolContext,
    limit: Annotated[int, Field(ge=1, le=200, description="How many jobs to return, newest first.")] = 20,
    status: Annotated[JobStatus | None, Field(description="Only jobs last seen in this status.")] = None,
) -> Annotated[CallToolResult, JobList]:
    """List recent upscale jobs this server submitted or saw, newest first, from its local ledger: id,
    model, status, cost, saved files. Statuses are as last seen (use get_job or wait_for_jobs for fresh ones).
    Needs no network and no credentials.
    """
    records = await upscaler_of(ctx).ledger(lambda db: db.list_jobs(limit=limit, status=status))
    result = JobList(jobs=[job_view(record) for record in records])
    if not records:
        return await tool_result(result, "No jobs recorded yet.")
    listing = "; ".join(view.brief() for view in result.jobs)
    return await tool_result(result, f"{len(records)} most recent jobs: {listing}")


TOOL = ToolSpec(
    fn=list_jobs,
    title="List recent upscale jobs",
    annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False),
)
