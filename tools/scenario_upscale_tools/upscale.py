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

from mcp.types import CallToolResult, InputRequiredResult
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
from scenario_upscale_tools.spending_guard import guard_spending
from scenario_upscale_tools.views import JobView, tool_result

if TYPE_CHECKING:
    from scenario_upscale_mcp.api.answers import Job
    from scenario_upscale_mcp.images.resolving import CheckedImage
    from scenario_upscale_mcp.service import Upscaler

logger = logging.getLogger(__name__)


class UpscaleResult(JobView):
    dryRun: bool = Field(default=False, description="True when this was only a cost estimate.")
    next: str | None = Field(default=None, description="What to do next, when the job is not finished.")


# An InputRequiredResult is the spending guard's question to the user (`spending_guard`); the listed
# output schema is UpscaleResult's alone.
UpscaleToolResult = Annotated[CallToolResult, UpscaleResult] | InputRequiredResult


@dataclass(frozen=True)
class Options:
    dry_run: bool
    wait: float
    output_dir: str | None
    allow_duplicate: bool = False
    confirm_cost: float | None = None


async def run_upscale(
    ctx: ToolContext, model: UpscaleModel, inputs: dict[str, Any], given: frozenset[str], options: Options
) -> CallToolResult | InputRequiredResult:
    """`_run_upscale`, with the API's 404 for an asset id given directly (found only when the job is
    priced or submitted) said with the argument that holds it: `styleImages[1]: asset_x was not found`."""
    try:
        return await _run_upscale(ctx, model, inputs, given, options)
    except NotFoundError as exc:
        named = field_of(exc, _image_fields(inputs, model))
        if named is None:
            raise
        raise unknown_id(*named, exc, "upload_image makes an asset id from a file.") from exc


@dataclass(frozen=True)
class Prepared:
    """One upscale checked locally: every image's identity known, nothing uploaded or sent yet.

    The model tools and upscale_batch share it: quoting (`quote`) and submitting (`submission`) both
    upload through it, so an image is uploaded once whichever comes first.
    """

    upscaler: Upscaler
    model: UpscaleModel
    sent: dict[str, Any]  # the inputs that go into the body: the ones the caller set, and `image`
    checked: dict[str, CheckedImage]
    source_stem: str  # what the saved results are named after
    upscale_factor: float  # the effective factor, sent or not: it names the saved results too

    async def body(self) -> tuple[dict[str, Any], list[str]]:
        """The API body, images uploaded as needed, and the asset ids uploaded by this call."""
        images = await self.upscaler.upload_images(self.checked)
        body = _api_body(self.sent, self.model, {field: image.asset_id for field, image in images.items()})
        return body, list(dict.fromkeys(image.asset_id for image in images.values() if image.uploaded))

    async def quote(self) -> tuple[float | None, list[str]]:
        """The cost in creative units, by a free dry run (pricing needs asset ids, so local images are
        uploaded first), and the asset ids uploaded to price it."""
        body, uploaded = await self.body()
        estimate = await self.upscaler.client.generate(self.model.model_id, body, dry_run=True)
        return estimate.creative_units_cost, uploaded

    def submission(self, folder: str | None, *, batch_id: str | None = None) -> Submission:
        async def make_body() -> dict[str, Any]:
            return (await self.body())[0]

        identities = {field: image.identity for field, image in self.checked.items()}
        return Submission(
            model_id=self.model.model_id,
            identity=_api_body(self.sent, self.model, identities),
            make_body=make_body,
            parameters={key: value for key, value in self.sent.items() if value is not None},
            source_stem=self.source_stem,
            upscale_factor=self.upscale_factor,
            # Kept with the job, so a later wait_for_jobs or download_assets saves it here too.
            output_dir=folder,
            batch_id=batch_id,
        )


async def prepare(
    upscaler: Upscaler, model: UpscaleModel, inputs: dict[str, Any], given: frozenset[str], scratch: Path
) -> Prepared:
    """Check the inputs' images (no upload, no request but a URL input's fetch); see `run_upscale` for
    why only what the caller set is sent."""
    sent = {name: value for name, value in inputs.items() if name == "image" or name in given}
    checked = await upscaler.check_images(_image_fields(sent, model), scratch)
    source = checked["image"]
    source_stem = source.stem
    if source.image is None:  # an asset id: named after the file it was uploaded from, when known here
        uploaded_from = await upscaler.ledger(lambda ledger: ledger.upload_name(source.identity))
        source_stem = Path(uploaded_from).stem if uploaded_from else source_stem
    return Prepared(upscaler, model, sent, checked, source_stem, float(inputs["upscaleFactor"]))


def disclose_uploads(uploaded: list[str]) -> str:
    """What a dry run left behind: nothing billed, but the images it uploaded to price the upscale."""
    if not uploaded:
        return "Nothing was submitted or billed."
    what = "the image was" if len(uploaded) == 1 else f"{len(uploaded)} images were"
    return (
        f"Nothing was submitted or billed, but to price it {what} uploaded to your Scenario "
        f"project as {'asset' if len(uploaded) == 1 else 'assets'} {', '.join(uploaded)} "
        "(an upscale of the same content reuses the upload)."
    )


async def _run_upscale(
    ctx: ToolContext, model: UpscaleModel, inputs: dict[str, Any], given: frozenset[str], options: Options
) -> CallToolResult | InputRequiredResult:
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
    with scratch_folder() as scratch:
        prepared = await prepare(upscaler, model, inputs, given, Path(scratch))
        if options.dry_run:
            # Pricing uploads a local file, URL or data: URI even here: said in the answer, since the
            # upload is an asset left in the user's project.
            cost, uploaded = await prepared.quote()
            view = UpscaleResult(
                jobId=None,
                model=model.model_id,
                status="not-submitted",
                progress=0.0,
                creativeUnitsCost=cost,
                dryRun=True,
            )
            quoted = f"{cost:g} creative units" if cost is not None else "an unknown amount"
            return await tool_result(
                view, f"Dry run: this upscale would cost {quoted}. {disclose_uploads(uploaded)}"
            )

        if upscaler.spending_limits.active:
            quote, _ = await prepared.quote()
            question = await guard_spending(ctx, quote=quote, images=1, confirm_cost=options.confirm_cost)
            if question is not None:
                return question
        wait = min(options.wait, settings.max_wait_seconds)
        started = upscaler.clock.now()
        submitted = await upscaler.submit(
            prepared.submission(str(folder) if options.output_dir else None),
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
