"""list_jobs: recent jobs from the local ledger, newest first, and what was spent in the last 24 h and 7 days."""

from __future__ import annotations

from typing import Annotated

from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from scenario_upscale_mcp.api.statuses import JobStatus
from scenario_upscale_mcp.jobs.spending import (
    WEEK_SECONDS,
    SpendingLimits,
    SpendingSummary,
    amount_text,
    spending_summary,
)
from scenario_upscale_tools.arguments import ToolContext, upscaler_of
from scenario_upscale_tools.inventory import ToolSpec
from scenario_upscale_tools.views import JobView, ResultModel, count, job_view, tool_result


class Spending(ResultModel):
    last24Hours: float = Field(
        description="Creative units of the jobs submitted in the last 24 h, any status (billed at submission)."
    )
    last7Days: float = Field(description="The same over the last 7 days.")
    jobsLast24Hours: int = Field(description="Jobs with a known cost submitted in the last 24 h.")
    jobsLast7Days: int = Field(description="The same over the last 7 days.")
    maxCreditsPerCall: float | None = Field(
        default=None, description="SCENARIO_MAX_CREDITS_PER_CALL, if set."
    )
    maxCreditsPerDay: float | None = Field(
        default=None, description="SCENARIO_MAX_CREDITS_PER_DAY (a rolling 24 h budget), if set."
    )
    leftLast24Hours: float | None = Field(
        default=None, description="What SCENARIO_MAX_CREDITS_PER_DAY leaves to spend now, if set."
    )
    confirmAboveCredits: float | None = Field(
        default=None, description="SCENARIO_CONFIRM_ABOVE_CREDITS: calls above it ask the user first, if set."
    )

    @classmethod
    def of(cls, summary: SpendingSummary, limits: SpendingLimits) -> Spending:
        left = None if limits.per_day is None else max(0.0, round(limits.per_day - summary["last24Hours"], 6))
        return cls(
            **summary,
            maxCreditsPerCall=limits.per_call,
            maxCreditsPerDay=limits.per_day,
            leftLast24Hours=left,
            confirmAboveCredits=limits.confirm_above,
        )

    def sentence(self) -> str:
        if self.jobsLast7Days == 0:
            text = "Nothing spent in the last 7 days."
        else:
            text = (
                f"Spent in the last 24 h: {amount_text(self.last24Hours)} creative units "
                f"({count(self.jobsLast24Hours, 'job')}); in the last 7 days: {amount_text(self.last7Days)} "
                f"({count(self.jobsLast7Days, 'job')})."
            )
        limits = []
        if self.maxCreditsPerCall is not None:
            limits.append(f"{amount_text(self.maxCreditsPerCall)} per call")
        if self.maxCreditsPerDay is not None and self.leftLast24Hours is not None:
            limits.append(
                f"{amount_text(self.maxCreditsPerDay)} per 24 h ({amount_text(self.leftLast24Hours)} left now)"
            )
        if self.confirmAboveCredits is not None:
            limits.append(f"the user confirms calls above {amount_text(self.confirmAboveCredits)}")
        if limits:
            text += f" Limits: {'; '.join(limits)}."
        return text


class JobList(ResultModel):
    jobs: list[JobView] = Field(description="Newest first, as last seen by this server (not refreshed).")
    spending: Spending = Field(
        description="In creative units, over every job this server submitted, whatever `limit` and `status`."
    )


async def list_jobs(
    ctx: ToolContext,
    limit: Annotated[int, Field(ge=1, le=200, description="How many jobs.")] = 20,
    status: Annotated[JobStatus | None, Field(description="Only jobs last seen so.")] = None,
) -> Annotated[CallToolResult, JobList]:
    """List recent upscale jobs from this server's ledger, newest first, as last seen (get_job refreshes
    one): status, cost, saved files; and spending over the last 24 h and 7 days. Needs no network.
    """
    upscaler = upscaler_of(ctx)
    now = upscaler.clock.wall()
    records, spent = await upscaler.ledger(
        lambda db: (db.list_jobs(limit=limit, status=status), db.spending_since(now - WEEK_SECONDS))
    )
    spending = Spending.of(spending_summary(spent, now), SpendingLimits.from_settings(upscaler.settings))
    result = JobList(jobs=[job_view(record) for record in records], spending=spending)
    if not records:
        none = "No jobs recorded yet." if status is None else f"No job was last seen as {status}."
        return await tool_result(result, f"{none} {spending.sentence()}")
    listing = "; ".join(view.brief() for view in result.jobs)
    heading = "The most recent job" if len(records) == 1 else f"The {len(records)} most recent jobs"
    return await tool_result(
        result,
        f"{heading} (statuses as last seen; get_job refreshes one): {listing}. {spending.sentence()}",
    )


TOOL = ToolSpec(
    fn=list_jobs,
    title="List recent upscale jobs",
    annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False),
)
