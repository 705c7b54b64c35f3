"""list_jobs: recent jobs from the local ledger, newest first."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from scenario_upscale_tools.common import (
    JobView,
    OutputFile,
    ResultModel,
    ToolContext,
    ToolSpec,
    app_state,
    structured_result,
)

if TYPE_CHECKING:
    from scenario_upscale_mcp.jobs.ledger import JobRecord

Status = Literal[
    "pending", "queued", "warming-up", "in-progress", "finalizing", "success", "failure", "canceled"
]


class JobList(ResultModel):
    jobs: list[JobView] = Field(description="Newest first, as last seen by this server (not refreshed).")


async def list_jobs(
    ctx: ToolContext,
    limit: Annotated[int, Field(ge=1, le=200, description="How many jobs to return, newest first.")] = 20,
    status: Annotated[Status | None, Field(description="Only jobs last seen in this status.")] = None,
) -> Annotated[CallToolResult, JobList]:
    """List recent upscale jobs this server submitted or saw, newest first, from its local ledger: id,
    model, status, cost, saved files. Statuses are as last seen (use get_job or wait_for_jobs for fresh ones).
    Needs no network and no credentials.
    """
    records = await app_state(ctx).in_ledger(lambda ledger: ledger.list_jobs(limit=limit, status=status))
    result = JobList(jobs=[view_of(record) for record in records])
    if not records:
        return structured_result(result, "No jobs recorded yet.")
    lines = [
        f"{r.job_id} {r.model} {r.status}" + (f" ({r.cost:g} CU)" if r.cost is not None else "")
        for r in records
    ]
    return structured_result(result, f"{len(records)} most recent jobs: " + "; ".join(lines))


def view_of(record: JobRecord) -> JobView:
    return JobView(
        jobId=record.job_id,
        model=record.model,
        status=record.status,
        progress=min(1.0, max(0.0, record.progress)),
        creativeUnitsCost=record.cost,
        error=record.error,
        hint=record.hint,
        outputs=[OutputFile.model_validate(output) for output in record.outputs],
    )


TOOL = ToolSpec(
    fn=list_jobs,
    title="List recent upscale jobs",
    annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False),
)
