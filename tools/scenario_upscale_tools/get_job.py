"""get_job: one job's state right now, from the API."""

from __future__ import annotations

from mcp.types import ToolAnnotations

from scenario_upscale_tools.common import JobId, JobView, ToolContext, ToolSpec, app_state


async def get_job(ctx: ToolContext, jobId: JobId) -> JobView:
    """Get a Scenario job's status now: status, progress (0-1), cost, output asset ids, and for a failed
    job the API's error and hint. Does not wait and does not download anything.
    """
    job = await app_state(ctx).client.get_job(jobId)
    model = str((job.metadata.input or {}).get("modelId", "unknown"))
    return JobView.of(job, model)


TOOL = ToolSpec(
    fn=get_job,
    title="Get upscale job status",
    annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=True),
)
