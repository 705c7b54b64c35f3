"""What the resource template `scenario://jobs/{jobId}` answers: one job as JSON, in the common job shape."""

from __future__ import annotations

from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError

from scenario_upscale_mcp.api.errors import MissingCredentialsError, NotFoundError, ScenarioError
from scenario_upscale_mcp.jobs.submission import observe
from scenario_upscale_tools.common import JobView, ToolContext, app_state
from scenario_upscale_tools.list_jobs import view_of


async def read_job(jobId: str, ctx: ToolContext) -> str:
    """The job read fresh from the API; when the API cannot be reached, the ledger's last record."""
    state = app_state(ctx)
    try:
        job = await state.client.get_job(jobId)
    except NotFoundError as exc:
        raise ResourceNotFoundError(f"No job {jobId}: {exc}") from exc
    except (MissingCredentialsError, ScenarioError) as exc:
        record = await state.in_ledger(lambda ledger: ledger.get_job(jobId))
        if record is None:
            raise ResourceError(str(exc)) from exc
        view = view_of(record)
        view.notice = f"As last recorded by this server; the API could not be asked just now ({exc})"
        return view.model_dump_json()
    record = await observe(state, job)
    # Saved paths are known only to the ledger; the API knows the assets.
    view = JobView.of(job, record.model, cost=record.cost)
    if record.outputs:
        view.outputs = view_of(record).outputs
    return view.model_dump_json()
