"""The flow both model tools share: check inputs, resolve images to assets, submit, watch, save, answer.

Everything that can be refused locally is checked before the first request (see
`inputs.check_images`), so a bad argument or a forbidden file costs no HTTP request at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import anyio
from mcp.types import CallToolResult
from pydantic import Field

from scenario_upscale_mcp.images.resolving import check_images, upload_images
from scenario_upscale_mcp.images.sources import scratch_folder
from scenario_upscale_mcp.jobs.submission import Submission, observe, submit
from scenario_upscale_mcp.jobs.watching import watch_job
from scenario_upscale_mcp.outputs.folders import resolve_output_dir
from scenario_upscale_tools.common import JobView, ModelSpec, ToolContext, app_state, structured_result
from scenario_upscale_tools.results import answer, settle

if TYPE_CHECKING:
    from scenario_upscale_mcp.api.answers import Job
    from scenario_upscale_mcp.state import AppState

logger = logging.getLogger(__name__)


class UpscaleResult(JobView):
    dryRun: bool = Field(default=False, description="True when this was only a cost estimate.")
    next: str | None = Field(default=None, description="What to do next, when the job is not finished.")


UpscaleToolResult = Annotated[CallToolResult, UpscaleResult]


@dataclass(frozen=True)
class Options:
    dry_run: bool
    wait: float
    output_dir: str | None
    allow_duplicate: bool = False


async def run_upscale(
    ctx: ToolContext, spec: ModelSpec, inputs: dict[str, Any], given: frozenset[str], options: Options
) -> CallToolResult:
    """Upscale with the model's `inputs` (every one, at its effective value), of which the caller set `given`.

    Only what the caller set goes into the body (`image` always does): a preset "applies a set of
    parameters", and whether values sent next to it override it is not published, so the API is left
    to apply the preset and the documented defaults, as in Scenario's own examples. The same inputs,
    with each image as its content's hash, are the request's identity (`Submission.request_key`),
    known before anything is uploaded. The effective `upscaleFactor` still names the saved files.
    """
    state = app_state(ctx)
    settings = state.settings
    folder = resolve_output_dir(options.output_dir, settings)
    sent = {name: value for name, value in inputs.items() if name == "image" or name in given}
    with scratch_folder() as scratch:
        checked = await check_images(state, _image_fields(sent, spec), Path(scratch))

        async def make_body() -> dict[str, Any]:
            images = await upload_images(state, checked)
            return _api_body(sent, spec, {field: image.asset_id for field, image in images.items()})

        if options.dry_run:
            estimate = await state.client.generate(spec.model_id, await make_body(), dry_run=True)
            cost = estimate.creative_units_cost
            view = UpscaleResult(
                jobId=None,
                model=spec.model_id,
                status="not-submitted",
                progress=0.0,
                creativeUnitsCost=cost,
                dryRun=True,
            )
            quoted = f"{cost:g} creative units" if cost is not None else "an unknown amount"
            return structured_result(
                view, f"Dry run: this upscale would cost {quoted}. Nothing was submitted."
            )

        wait = min(options.wait, settings.max_wait_seconds)
        started = anyio.current_time()
        submitted = await submit(
            state,
            Submission(
                model_id=spec.model_id,
                identity=_api_body(sent, spec, {field: image.identity for field, image in checked.items()}),
                make_body=make_body,
                parameters={key: value for key, value in sent.items() if value is not None},
                source_stem=checked["image"].stem,
                upscale_factor=float(inputs["upscaleFactor"]),
            ),
            allow_duplicate=options.allow_duplicate,
            wait_budget=wait,
        )
    job = submitted.job
    logger.info(
        "job %s for %s (%s)", job.job_id, spec.model_id, "reused" if submitted.notice else "submitted"
    )

    remaining = wait - (anyio.current_time() - started)
    if remaining > 0 and not job.is_terminal:

        async def report(update: Job) -> None:
            await observe(state, update)
            await ctx.report_progress(update.progress, 1.0, f"{update.status} ({update.progress:.0%})")

        job = await watch_job(
            state.client,
            job.job_id,
            wait_seconds=remaining,
            first_interval=settings.poll_initial_seconds,
            max_interval=settings.poll_max_seconds,
            on_update=report,
        )
    elif job.is_terminal:
        await ctx.report_progress(job.progress, 1.0, job.status)
    return await _answer(state, job, submitted.cost, folder, submitted.notice)


async def _answer(
    state: AppState, job: Job, cost: float | None, folder: Path, notice: str | None
) -> CallToolResult:
    view, saved = await settle(state, job, folder, cost=cost, notice=notice)
    result = UpscaleResult.model_validate(view.model_dump())
    if job.status == "success":
        cost_text = (
            f" ({view.creativeUnitsCost:g} creative units)" if view.creativeUnitsCost is not None else ""
        )
        lines = [f"Job {job.job_id} succeeded{cost_text}."]
        lines += [f"Saved {file.path} ({file.width}×{file.height}, {file.bytes:,} bytes)." for file in saved]
    elif job.is_terminal:
        lines = [f"Job {job.job_id} ended with status {job.status}."]
        if view.error:
            lines.append(f"Error: {view.error}")
        if view.hint:
            lines.append(f"Hint: {view.hint}")
    else:
        result.next = (
            f"The job is still running and keeps running (and is billed) whether or not you wait. Call "
            f"wait_for_jobs with jobIds [{job.job_id!r}] to wait for it and save the result, or get_job to check it."
        )
        lines = [f"Job {job.job_id} is {job.status} ({job.progress:.0%}).", result.next]
    if view.notice:
        lines.append(view.notice)
    return await answer(result, " ".join(lines), saved)


def _image_fields(inputs: dict[str, Any], spec: ModelSpec) -> dict[str, str]:
    """Every image reference in the inputs, keyed by its field name (`styleImages[2]` for list items)."""
    fields = {"image": inputs["image"]}
    for index, reference in enumerate(inputs.get(spec.image_list_field) or []):
        fields[f"{spec.image_list_field}[{index}]"] = reference
    return fields


def _api_body(inputs: dict[str, Any], spec: ModelSpec, resolved: dict[str, str]) -> dict[str, Any]:
    """The JSON body: the inputs with image references replaced by asset ids; a None (`seed: null`) left out."""
    body: dict[str, Any] = {}
    for name, value in inputs.items():
        if value is None:
            continue
        if name == "image":
            value = resolved.get("image", value)
        elif name == spec.image_list_field:
            value = [resolved.get(f"{name}[{index}]", item) for index, item in enumerate(value)]
        elif isinstance(value, float) and value.is_integer():
            value = int(value)  # 2 rather than 2.0 on the wire, as in Scenario's own examples
        body[name] = value
    return body
