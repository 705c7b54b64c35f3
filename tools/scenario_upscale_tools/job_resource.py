"""What the resource template `scenario://jobs/{jobId}` answers: one job as JSON, in the common job shape."""

from __future__ import annotations

from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError

from scenario_upscale_mcp.api.errors import MissingCredentialsError, NotFoundError, ScenarioError
from scenario_upscale_tools.arguments import ToolContext, upscaler_of
from scenario_upscale_tools.views import job_view, recorded_outputs


async def read_job(jobId: str, ctx: ToolContext) -> str:
    """The job read fresh from the API; when the API cannot be reached, the ledger's last record."""
    upscaler = upscaler_of(ctx)
    try:
        job = await upscaler.client.get_job(jobId)
    except NotFoundError as exc:
        raise ResourceNotFoundError(f"No job {jobId}: {exc}") from exc
    except (MissingCredentialsError, ScenarioError) as exc:
        record = await upscaler.ledger(lambda db: db.get_job(jobId))
        if record is None:
            raise ResourceError(str(exc)) from exc
        notice = f"As last recorded by this server; the API could not be asked just now ({exc})"
        return job_view(record, notice=notice).model_dump_json()
    record = await upscaler.observe(job)
    # Saved paths are known only to the ledger; the API knows the assets.
    outputs = recorded_outputs(record) if record.outputs else None
    return job_view(record, job, outputs=outputs).model_dump_json()
