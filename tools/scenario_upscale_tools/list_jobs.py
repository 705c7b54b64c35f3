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
    limit: Annotated[int, Field(ge=1, le=200, description="How many jobs.")] = 20,
    status: Annotated[JobStatus | None, Field(description="Only jobs last seen so.")] = None,
) -> Annotated[CallToolResult, JobList]:
    """List recent upscale jobs from this server's ledger, newest first, as last seen (get_job refreshes
    one): status, cost, saved files. Needs no network.
    """
    records = await upscaler_of(ctx).ledger(lambda db: db.list_jobs(limit=limit, status=status))
    result = JobList(jobs=[job_view(record) for record in records])
    if not records:
        return await tool_result(result, "No jobs recorded yet.")
    listing = "; ".join(view.brief() for view in result.jobs)
    heading = "The most recent job" if len(records) == 1 else f"The {len(records)} most recent jobs"
    return await tool_result(
        result,
        f"{heading} (statuses as last seen; get_job refreshes one): {listing}",
    )


TOOL = ToolSpec(
    fn=list_jobs,
    title="List recent upscale jobs",
    annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False),
)
