"""The flow both model tools share: check inputs, resolve images to assets, submit, watch, save, answer.

Each model tool is its schema plus a call to `run_upscale`. Everything that can be refused locally is
checked before the first request (see `images.resolving.check_images`), so a bad argument or a
forbidden file costs no HTTP request at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from mcp.types import CallToolResult
from pydantic import Field

from scenario_upscale_mcp.api.errors import NotFoundError
from scenario_upscale_mcp.images.sources import scratch_folder
from scenario_upscale_mcp.jobs.submission import Submission
from scenario_upscale_mcp.outputs.folders import resolve_output_dir
from scenario_upscale_tools.arguments import ToolContext, upscaler_of
from scenario_upscale_tools.delivery import remembered_folder, settle
from scenario_upscale_tools.not_found import field_of, unknown_id
from scenario_upscale_tools.progress import MonotonicProgress
from scenario_upscale_tools.scenario_models import UpscaleModel
from scenario_upscale_tools.views import JobView, tool_result

if TYPE_CHECKING:
    from scenario_upscale_mcp.api.answers import Job
    from scenario_upscale_mcp.service import Upscaler

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
    ctx: ToolContext, model: UpscaleModel, inputs: dict[str, Any], given: frozenset[str], options: Options
) -> CallToolResult:
    """`_run_upscale`, with the API's 404 for an asset id given directly (found only when the job is
    priced or submitted) said with the argument that holds it: `styleImages[1]: asset_x was not found`."""
    try:
        return await _run_upscale(ctx, model, inputs, given, options)
    except NotFoundError as exc:
        named = field_of(exc, _image_fields(inputs, model))
        if named is None:
            raise
        raise unknown_id(*named, exc, "upload_image makes an asset id from a file.") from exc


async def _run_upscale(
    ctx: ToolContext, model: UpscaleModel, inputs: dict[str, Any], given: frozenset[str], options: Options
) -> CallToolResult:
    """Upscale with the model's `inputs` (every one, at its effective value), of which the caller set `given`.

    Only what the caller set goes into the body (`image` always does): a preset "applies a set of
    parameters", and whether values sent next to it override it is not published, so the API is left
    to apply the preset and the documented defaults, as in Scenario's own examples. The same inputs,
    with each image as its content's hash, are the request's identity (`Submission.request_key`),
    known before anything is uploaded. The effective `upscaleFactor` still names the saved files.
    """
    upscaler = upscaler_of(ctx)
    settings = upscaler.settings
    folder = resolve_output_dir(options.output_dir, settings)
    sent = {name: value for name, value in inputs.items() if name == "image" or name in given}
    with scratch_folder() as scratch:
        checked = await upscaler.check_images(_image_fields(sent, model), Path(scratch))

        async def make_body() -> dict[str, Any]:
            images = await upscaler.upload_images(checked)
            return _api_body(sent, model, {field: image.asset_id for field, image in images.items()})

        if options.dry_run:
            # Pricing needs asset ids, so a local file, URL or data: URI is uploaded even here: said in
            # the answer, since the upload is an asset left in the user's project.
            priced = await upscaler.upload_images(checked)
            body = _api_body(sent, model, {field: image.asset_id for field, image in priced.items()})
            estimate = await upscaler.client.generate(model.model_id, body, dry_run=True)
            cost = estimate.creative_units_cost
            uploaded = list(dict.fromkeys(image.asset_id for image in priced.values() if image.uploaded))
            if not uploaded:
                disclosed = "Nothing was submitted or billed."
            else:
                what = "the image was" if len(uploaded) == 1 else f"{len(uploaded)} images were"
                disclosed = (
                    f"Nothing was submitted or billed, but to price it {what} uploaded to your Scenario "
                    f"project as {'asset' if len(uploaded) == 1 else 'assets'} {', '.join(uploaded)} "
                    "(an upscale of the same content reuses the upload)."
                )
            view = UpscaleResult(
                jobId=None,
                model=model.model_id,
                status="not-submitted",
                progress=0.0,
                creativeUnitsCost=cost,
                dryRun=True,
            )
            quoted = f"{cost:g} creative units" if cost is not None else "an unknown amount"
            return await tool_result(view, f"Dry run: this upscale would cost {quoted}. {disclosed}")

        source = checked["image"]
        source_stem = source.stem
        if source.image is None:  # an asset id: named after the file it was uploaded from, when known here
            uploaded_from = await upscaler.ledger(lambda ledger: ledger.upload_name(source.identity))
            source_stem = Path(uploaded_from).stem if uploaded_from else source_stem
        wait = min(options.wait, settings.max_wait_seconds)
        started = upscaler.clock.now()
        submitted = await upscaler.submit(
            Submission(
                model_id=model.model_id,
                identity=_api_body(sent, model, {field: image.identity for field, image in checked.items()}),
                make_body=make_body,
                parameters={key: value for key, value in sent.items() if value is not None},
                source_stem=source_stem,
                upscale_factor=float(inputs["upscaleFactor"]),
                # Kept with the job, so a later wait_for_jobs or download_assets saves it here too.
                output_dir=str(folder) if options.output_dir else None,
            ),
            allow_duplicate=options.allow_duplicate,
            wait_budget=wait,
        )
    job = submitted.job
    logger.info(
        "job %s for %s (%s)", job.job_id, model.model_id, "reused" if submitted.notice else "submitted"
    )

    remaining = wait - (upscaler.clock.now() - started)
    progress = MonotonicProgress(ctx)
    if remaining > 0 and not job.is_terminal:

        async def report(update: Job) -> None:
            await upscaler.observe(update)
            await progress.report(update.progress, f"{update.status} ({update.progress:.0%})")

        job = await upscaler.watch_job(job.job_id, wait_seconds=remaining, on_update=report)
    elif job.is_terminal:
        await progress.report(job.progress, job.status)
    return await _answer(upscaler, job, submitted.cost, folder, submitted.notice)


async def _answer(
    upscaler: Upscaler, job: Job, cost: float | None, folder: Path, notice: str | None
) -> CallToolResult:
    view, saved = await settle(upscaler, job, folder, cost=cost, notice=notice)
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
        # Where a later wait_for_jobs saves it: the folder its (first) call asked for, as the ledger has it.
        record = await upscaler.ledger(lambda db: db.get_job(job.job_id))
        where, _ = remembered_folder(upscaler.settings, record)
        result.next = (
            f"The job is still running and keeps running (and is billed) whether or not you wait. Call "
            f"wait_for_jobs with jobIds [{job.job_id!r}] to wait for it and save the result into {where} "
            "(unless you give it another outputDir), or get_job to check it."
        )
        lines = [f"Job {job.job_id} is {job.status} ({job.progress:.0%}).", result.next]
    if view.notice:
        lines.append(view.notice)
    return await tool_result(result, " ".join(lines), saved)


def _image_fields(inputs: dict[str, Any], model: UpscaleModel) -> dict[str, str]:
    """Every image reference in the inputs, keyed by its field name (`styleImages[2]` for list items)."""
    fields = {"image": inputs["image"]}
    for index, reference in enumerate(inputs.get(model.image_list_field) or []):
        fields[f"{model.image_list_field}[{index}]"] = reference
    return fields


def _api_body(inputs: dict[str, Any], model: UpscaleModel, resolved: dict[str, str]) -> dict[str, Any]:
    """The JSON body: the inputs with image references replaced by asset ids; a None (`seed: null`) left out."""
    body: dict[str, Any] = {}
    for name, value in inputs.items():
        if value is None:
            continue
        if name == "image":
            value = resolved.get("image", value)
        elif name == model.image_list_field:
            value = [resolved.get(f"{name}[{index}]", item) for index, item in enumerate(value)]
        elif isinstance(value, float) and value.is_integer():
            value = int(value)  # 2 rather than 2.0 on the wire, as in Scenario's own examples
        body[name] = value
    return body
