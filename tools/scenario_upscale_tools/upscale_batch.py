"""upscale_batch: many images, one model, one set of parameters; priced, guarded, submitted, not waited for.

The images are a list (anything `image` takes) or a folder and a name pattern. `parameters` are the
chosen model tool's own arguments, checked by that tool's argument model, so the batch is exactly as
strict as the tool while the tool list carries its schema once (tests/test_tool_list_size.py).

A batch's id is its content (the model, the parameters and every image's identity), so the same batch
sent again is the same batch: an image that already has a job in it is not submitted again, at any
distance in time, and the rest are. That is also how a batch larger than the plan's parallel-job limit
completes: what cannot be submitted within `wait` is listed, and the same call submits it later.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import anyio
from mcp.types import CallToolResult, InputRequiredResult, ToolAnnotations
from pydantic import Field, ValidationError

from scenario_upscale_mcp.api.errors import (
    InputError,
    ParallelLimitError,
    PlanLimitReachedError,
    ScenarioError,
)
from scenario_upscale_mcp.api.statuses import UNSUCCESSFUL_STATUSES
from scenario_upscale_mcp.clock import polling
from scenario_upscale_mcp.images.sources import scratch_folder
from scenario_upscale_mcp.jobs.ledger import Ledger
from scenario_upscale_mcp.jobs.submission import RESUBMIT_HINT
from scenario_upscale_mcp.outputs.folders import resolve_output_dir
from scenario_upscale_tools.arguments import (
    CALL_OPTIONS,
    DryRun,
    MoreImages,
    OutputDir,
    ToolContext,
    Wait,
    upscaler_of,
)
from scenario_upscale_tools.building import build_tool
from scenario_upscale_tools.inventory import ToolSpec, load_tool
from scenario_upscale_tools.progress import MonotonicProgress
from scenario_upscale_tools.scenario_models import TEXTURE_UPSCALE, UPSCALE_V3, UpscaleModel
from scenario_upscale_tools.spending_guard import ConfirmCost, guard_spending
from scenario_upscale_tools.upscale import Prepared, disclose_uploads, prepare
from scenario_upscale_tools.views import ResultModel, count, tool_result

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from anyio.abc import TaskGroup

    from scenario_upscale_mcp.images.folders import Skipped
    from scenario_upscale_mcp.jobs.ledger import JobRecord
    from scenario_upscale_mcp.service import Upscaler

logger = logging.getLogger(__name__)

ModelTool = Literal["upscale_v3", "upscale_texture"]
MODEL_OF: dict[str, UpscaleModel] = {"upscale_v3": UPSCALE_V3, "upscale_texture": TEXTURE_UPSCALE}
# The model tools' arguments that are the call's, not the model's (and `image`): upscale_batch has its own.
CALL_ARGUMENTS = ("image", *sorted(CALL_OPTIONS))
CHECKS_AT_ONCE = 4  # images read and hashed at the same time
REQUESTS_AT_ONCE = 4  # dry runs or submissions in flight at the same time
SKIPPED_LISTED = 50  # skipped files named in the answer; the rest are counted


class BatchImage(ResultModel):
    image: str = Field(description="The image as given, or its path inside the folder.")
    jobId: str | None = Field(description="Its job; null when not submitted.")
    status: str = Field(description="The job's status, or not-submitted.")
    creativeUnitsCost: float | None = Field(description="Cost in creative units, when known.")
    notice: str | None = Field(default=None, description="An earlier job reused, or why not submitted.")


class SkippedFile(ResultModel):
    path: str
    reason: str


class BatchResult(ResultModel):
    batchId: str = Field(description="For wait_for_jobs; the same images and parameters give the same id.")
    model: str
    dryRun: bool
    images: list[BatchImage]
    totalCost: float | None = Field(description="Creative units: quoted (dry run) or of the jobs.")
    skipped: list[SkippedFile] = Field(description="Files of the folder not upscaled, and why.")
    notSubmitted: int = Field(description="Images left to submit: call again with the same arguments.")
    outputDir: str = Field(description="Where wait_for_jobs saves the results.")
    next: str | None = None


@dataclass
class _Entry:
    """One image of the batch, as it goes through the call."""

    label: str
    prepared: Prepared
    job_id: str | None = None  # None: not submitted (yet)
    status: str = "not-submitted"
    cost: float | None = None
    notice: str | None = None
    reused: bool = False  # it already had a job in this batch
    # An earlier image of the batch with the same content: its job is this one's.
    same_as: _Entry | None = None


async def upscale_batch(
    ctx: ToolContext,
    model: Annotated[ModelTool, Field(description="The model tool whose parameters apply.")],
    images: Annotated[
        list[MoreImages] | None, Field(min_length=1, description="Images, like upscale_v3's `image`.")
    ] = None,
    folder: Annotated[str | None, Field(min_length=1, description="Or: a folder of images.")] = None,
    pattern: Annotated[str, Field(min_length=1, description="File names in `folder`, e.g. *.png.")] = "*",
    recursive: Annotated[bool, Field(description="Include sub-folders.")] = False,
    parameters: Annotated[
        dict[str, Any],
        Field(description="That tool's arguments but image, dryRun, wait, outputDir; checked as it does."),
    ] = {},  # noqa: B006 - pydantic copies defaults
    dryRun: DryRun = False,
    wait: Wait = 45,
    outputDir: OutputDir = None,
    confirmCost: ConfirmCost = None,
) -> Annotated[CallToolResult, BatchResult] | InputRequiredResult:
    """Upscale many images with one model and one set of parameters: a list, or a folder and a pattern
    (hidden files and non-images skipped, and listed). Paid: dryRun=true quotes each image and the total.

    Submits without waiting and returns a batchId: wait_for_jobs with it saves the results into one
    folder. Sending the same batch again never bills an image twice.
    """
    upscaler = upscaler_of(ctx)
    settings = upscaler.settings
    chosen = MODEL_OF[model]
    inputs, given = _model_inputs(model, parameters)
    references, skipped = _references(images, folder, pattern, recursive, upscaler)
    progress = MonotonicProgress(ctx)
    with scratch_folder() as scratch:
        entries = await _prepare_all(upscaler, chosen, inputs, given, references, Path(scratch))
        _mark_same_content(entries)
        batch_id = _batch_id(chosen, inputs, given, entries)
        target = resolve_output_dir(outputDir, settings) if outputDir else settings.output_dir / batch_id
        earlier = await upscaler.ledger(lambda db: db.jobs_in_batch(batch_id))
        _reuse_earlier_jobs(entries, earlier)
        to_submit = [entry for entry in entries if entry.job_id is None and entry.same_as is None]

        uploaded: list[str] = []
        if dryRun or (upscaler.spending_limits.active and to_submit):
            uploaded = await _quote_all(to_submit, progress)
        if dryRun:
            result = _result(batch_id, chosen, entries, skipped, target, dry_run=True)
            quoted = (
                f"{result.totalCost:g} creative units"
                if result.totalCost is not None
                else "an unknown amount"
            )
            return await tool_result(
                result,
                f"Dry run of batch {batch_id}: {count(len(to_submit), 'image')} to submit would cost {quoted}"
                f"{_already(entries)}. {disclose_uploads(uploaded)}{_skipped_text(skipped)}",
            )
        if to_submit and upscaler.spending_limits.active:
            quote = sum(entry.cost or 0.0 for entry in to_submit)
            refusal = await guard_spending(ctx, quote=quote, images=len(to_submit), confirm_cost=confirmCost)
            if refusal is not None:
                return refusal
        deadline = upscaler.clock.now() + min(wait, settings.max_wait_seconds)
        await _submit_all(upscaler, to_submit, batch_id, str(target), deadline, progress, len(entries))

    result = _result(batch_id, chosen, entries, skipped, target, dry_run=False)
    submitted = sum(image.jobId is not None for image in result.images)
    lines = [f"Batch {batch_id}: {submitted} of {count(len(entries), 'image')} submitted{_already(entries)}."]
    if result.notSubmitted:
        result.next = (
            f"{result.notSubmitted} could not be submitted (see each image's notice): call upscale_batch again "
            "with the same arguments to submit them; images already submitted are not billed again."
        )
        lines.append(result.next)
    lines.append(
        f"Call wait_for_jobs with batchId {batch_id!r} to wait for the jobs and save the results into {target}."
    )
    return await tool_result(result, " ".join(lines) + _skipped_text(skipped))


def _model_inputs(model: str, parameters: dict[str, Any]) -> tuple[dict[str, Any], frozenset[str]]:
    """The model's inputs (every one, at its effective value) and those the caller set, checked by the
    model tool's own argument model; an error names `parameters.<argument>`."""
    for name in CALL_ARGUMENTS:
        if name == "allowDuplicate" and name in parameters:
            raise InputError(
                "parameters.allowDuplicate: not available in a batch, which never submits an image twice; "
                "use upscale_v3 or upscale_texture to submit one again."
            )
        if name in parameters:
            where = "in `images` or `folder`" if name == "image" else f"as upscale_batch's own `{name}`"
            raise InputError(f"parameters.{name}: give it {where}, not in parameters.")
    arguments = build_tool(load_tool(model)).fn_metadata.arg_model  # the same strict arguments as the tool
    try:
        checked = arguments.model_validate({"image": "-", **parameters})
    except ValidationError as exc:
        problems = "; ".join(
            f"parameters.{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )
        raise InputError(f"{problems}.") from None
    values = checked.model_dump_one_level()
    names = [name for name in arguments.model_fields if name not in CALL_ARGUMENTS or name == "image"]
    inputs = {name: values[name] for name in names}
    _check_pairs(inputs)
    return inputs, frozenset(checked.model_fields_set) & frozenset(parameters)


def _check_pairs(inputs: dict[str, Any]) -> None:
    """What a model tool checks beyond its schema: one LoRA scale per LoRA (upscale_texture)."""
    loras, scales = inputs.get("loras"), inputs.get("lorasScale")
    if loras is not None and scales is not None and len(scales) != len(loras):
        raise InputError(
            f"parameters.lorasScale: has {len(scales)} entries but loras has {len(loras)}; give exactly one "
            "scale per LoRA, in the same order (or leave both empty)."
        )


def _references(
    images: list[str] | None, folder: str | None, pattern: str, recursive: bool, upscaler: Upscaler
) -> tuple[list[tuple[str, str]], list[Skipped]]:
    """(label, reference) for every image to upscale, and what the folder held that is not upscaled."""
    if (images is None) == (folder is None):
        raise InputError(
            "images, folder: give exactly one of them (a list of images, or a folder and pattern)."
        )
    settings = upscaler.settings
    if images is not None:
        if len(images) > settings.max_batch_images:
            raise InputError(
                f"images: {len(images)} images, more than the {settings.max_batch_images} a batch may hold "
                "(SCENARIO_MAX_BATCH_IMAGES): split them into several batches, or raise the limit."
            )
        unique = list(dict.fromkeys(images))
        return [(reference, reference) for reference in unique], []
    from scenario_upscale_mcp.images.folders import list_folder_images

    assert folder is not None
    listing = list_folder_images(
        folder, pattern, recursive=recursive, settings=settings, limit=settings.max_batch_images
    )
    root = listing.folder
    return [(str(path.relative_to(root)), str(path)) for path in listing.images], listing.skipped


async def _prepare_all(
    upscaler: Upscaler,
    model: UpscaleModel,
    inputs: dict[str, Any],
    given: frozenset[str],
    references: list[tuple[str, str]],
    scratch: Path,
) -> list[_Entry]:
    """Check every image (read, decode, hash; nothing uploaded), a few at a time; the first refusal
    refuses the batch, naming the image, before any request is made."""
    entries: list[_Entry | None] = [None] * len(references)
    limiter = anyio.CapacityLimiter(CHECKS_AT_ONCE)

    async def check(index: int, label: str, reference: str) -> None:
        async with limiter:
            try:
                prepared = await prepare(
                    upscaler, model, {**inputs, "image": reference}, given, scratch / str(index)
                )
            except InputError as exc:
                raise InputError(f"{label}: {exc}") from None
            entries[index] = _Entry(label, prepared)

    for index, _ in enumerate(references):
        (scratch / str(index)).mkdir()
    async with _tasks() as group:
        for index, (label, reference) in enumerate(references):
            group.start_soon(check, index, label, reference)
    return [entry for entry in entries if entry is not None]


def _batch_id(
    model: UpscaleModel, inputs: dict[str, Any], given: frozenset[str], entries: list[_Entry]
) -> str:
    """The batch's identity: the model, the parameters set, and the images' identities, in order."""
    content = {
        "model": model.model_id,
        "parameters": {name: inputs[name] for name in sorted(given)},
        "images": sorted(entry.prepared.checked["image"].identity for entry in entries),
    }
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return f"batch-{digest[:12]}"


def _mark_same_content(entries: list[_Entry]) -> None:
    """Files with the same content are the same request: the first is submitted (and priced), the others
    share its job and add nothing to the cost."""
    first: dict[str, _Entry] = {}
    for entry in entries:
        original = first.setdefault(entry.prepared.submission(None).request_key, entry)
        if original is not entry:
            entry.same_as = original


def _reuse_earlier_jobs(entries: list[_Entry], earlier: list[JobRecord]) -> None:
    """An image that already has a job in this batch keeps it, unless that job failed."""
    by_key = {record.request_key: record for record in earlier if record.status not in UNSUCCESSFUL_STATUSES}
    for entry in entries:
        record = by_key.get(entry.prepared.submission(None).request_key)
        if record is not None:
            entry.job_id, entry.status, entry.cost, entry.reused = (
                record.job_id,
                record.status,
                record.cost,
                True,
            )
            entry.notice = "already submitted in this batch: not billed again"


async def _quote_all(entries: list[_Entry], progress: MonotonicProgress) -> list[str]:
    """Price every entry by a free dry run (uploading what needs it); the asset ids uploaded."""
    uploaded: list[str] = []
    limiter = anyio.CapacityLimiter(REQUESTS_AT_ONCE)
    done = 0

    async def quote(entry: _Entry) -> None:
        nonlocal done
        async with limiter:
            entry.cost, new = await entry.prepared.quote()
        uploaded.extend(new)
        done += 1
        await progress.report(done / (2 * len(entries)), f"priced {done} of {len(entries)}")

    async with _tasks() as group:
        for entry in entries:
            group.start_soon(quote, entry)
    return uploaded


async def _submit_all(
    upscaler: Upscaler,
    entries: list[_Entry],
    batch_id: str,
    folder: str,
    deadline: float,
    progress: MonotonicProgress,
    total: int,
) -> None:
    """Submit every entry, a few at a time, never twice (the duplicate guard applies to each). At the
    plan's parallel-job limit (or SCENARIO_MAX_PARALLEL_JOBS) a submission waits and tries again
    until `deadline`; what is still unsubmitted then stays so (`_Entry.job_id` None)."""
    settings = upscaler.settings
    queue = list(entries)
    limiter = anyio.CapacityLimiter(min(REQUESTS_AT_ONCE, settings.max_parallel_jobs or REQUESTS_AT_ONCE))
    submitted = 0

    async def submit(entry: _Entry) -> None:
        nonlocal submitted
        async with limiter:
            async for _ in polling(
                upscaler.clock,
                first=settings.poll_initial_seconds,
                cap=settings.poll_max_seconds,
                deadline=deadline,
            ):
                try:
                    answer = await upscaler.submit(
                        entry.prepared.submission(folder, batch_id=batch_id),
                        allow_duplicate=False,
                        wait_budget=0,
                    )
                except PlanLimitReachedError as exc:
                    if exc.not_in_plan:
                        raise  # no image of the batch can run: the call fails with the plan's reason
                    logger.info("batch %s: plan limit reached; trying again", batch_id)
                    continue
                except ParallelLimitError:
                    continue
                except ScenarioError as exc:  # this image only (refused, or its answer lost): say so, go on
                    entry.notice = f"not submitted: {exc}"
                    return
                # An identical earlier job returned instead of a new one joins this batch too, so that
                # wait_for_jobs with the batch's id waits for it.
                job_id = answer.job.job_id
                await upscaler.ledger(
                    functools.partial(Ledger.add_to_batch, batch_id=batch_id, job_id=job_id)
                )
                entry.job_id, entry.status = job_id, answer.job.status
                entry.cost = answer.cost
                entry.notice = answer.notice.replace(RESUBMIT_HINT, "") if answer.notice else None
                submitted += 1
                await progress.report(submitted / total, f"submitted {submitted} of {total}")
                return
        entry.notice = "not submitted within `wait`: the plan's parallel-job limit was reached"

    async with _tasks() as group:
        for entry in queue:
            group.start_soon(submit, entry)


@contextlib.asynccontextmanager
async def _tasks() -> AsyncIterator[TaskGroup]:
    """A task group that fails with its first error as raised, not wrapped in an ExceptionGroup: the tool
    then answers with that error's own sentence (`app` turns a ScenarioError into the tool's error)."""
    try:
        async with anyio.create_task_group() as group:
            yield group
    except BaseExceptionGroup as failed:
        errors = [
            error for error in _leaves(failed) if not isinstance(error, anyio.get_cancelled_exc_class())
        ]
        if not errors:
            raise
        raise errors[0] from None


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    leaves: list[BaseException] = []
    for error in group.exceptions:
        leaves += _leaves(error) if isinstance(error, BaseExceptionGroup) else [error]
    return leaves


def _result(
    batch_id: str,
    model: UpscaleModel,
    entries: list[_Entry],
    skipped: list[Skipped],
    folder: Path,
    *,
    dry_run: bool,
) -> BatchResult:
    views = [_view(entry) for entry in entries]
    costs = [view.creativeUnitsCost for view in views if dry_run or view.jobId is not None]
    return BatchResult(
        batchId=batch_id,
        model=model.model_id,
        dryRun=dry_run,
        images=views,
        totalCost=None if any(cost is None for cost in costs) else sum(cost or 0.0 for cost in costs),
        skipped=[SkippedFile(path=item.path, reason=item.reason) for item in skipped],
        notSubmitted=0 if dry_run else sum(view.jobId is None for view in views),
        outputDir=str(folder),
    )


def _view(entry: _Entry) -> BatchImage:
    if entry.same_as is not None:
        original = entry.same_as
        return BatchImage(
            image=entry.label,
            jobId=original.job_id,
            status=original.status,
            creativeUnitsCost=0.0,
            notice=f"same content as {original.label}: shares its job, costs nothing more",
        )
    return BatchImage(
        image=entry.label,
        jobId=entry.job_id,
        status=entry.status,
        creativeUnitsCost=entry.cost,
        notice=entry.notice,
    )


def _already(entries: list[_Entry]) -> str:
    reused = sum(entry.reused for entry in entries)
    return f" ({reused} already submitted in this batch, not billed again)" if reused else ""


def _skipped_text(skipped: list[Skipped]) -> str:
    if not skipped:
        return ""
    named = "; ".join(f"{item.path} ({item.reason})" for item in skipped[:SKIPPED_LISTED])
    more = f"; and {len(skipped) - SKIPPED_LISTED} more" if len(skipped) > SKIPPED_LISTED else ""
    return f" Skipped {count(len(skipped), 'file')}: {named}{more}."


TOOL = ToolSpec(
    fn=upscale_batch,
    title="Upscale a batch of images",
    annotations=ToolAnnotations(
        read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
    ),
)
