"""The flow both model tools share: check inputs, resolve images to assets, submit, watch, save, answer.

Everything that can be refused locally is checked before the first request, so a bad argument or
a forbidden file costs no HTTP request at all.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import anyio
from mcp.types import CallToolResult, ContentBlock, ImageContent, ResourceLink, TextContent
from pydantic import Field

from scenario_upscale_mcp.api_models import Job
from scenario_upscale_mcp.errors import MissingCredentialsError
from scenario_upscale_mcp.files import (
    LocalImage,
    check_readable,
    is_asset_id,
    local_path_of,
    make_preview,
    resolve_output_dir,
)
from scenario_upscale_mcp.jobs import NamingHint, save_job_outputs, watch_job
from scenario_upscale_mcp.state import AppState
from scenario_upscale_tools.common import (
    JobView,
    OutputFile,
    ToolContext,
    app_state,
    structured_result,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSpec:
    model_id: str
    tag: str  # short name used in output file names
    image_list_field: str  # the input holding extra reference images


class UpscaleResult(JobView):
    dryRun: bool = Field(default=False, description="True when this was only a cost estimate.")
    next: str | None = Field(default=None, description="What to do next, when the job is not finished.")


UpscaleToolResult = Annotated[CallToolResult, UpscaleResult]


@dataclass(frozen=True)
class Options:
    dry_run: bool
    wait: float
    output_dir: str | None


async def run_upscale(
    ctx: ToolContext, spec: ModelSpec, inputs: dict[str, Any], options: Options
) -> CallToolResult:
    state = app_state(ctx)
    settings = state.settings
    # Local checks first: nothing below this block may be skipped by an early request.
    folder = resolve_output_dir(options.output_dir, settings)
    image_fields = _image_fields(inputs, spec)
    paths = {key: local_path_of(value, key) for key, value in image_fields.items() if not is_asset_id(value)}
    if settings.credentials() is None:
        raise MissingCredentialsError
    local_images = {
        key: await anyio.to_thread.run_sync(check_readable, path, settings, key)
        for key, path in paths.items()
    }

    resolved = await _upload_local_images(state, local_images)
    body = _api_body(inputs, spec, resolved)
    factor = float(inputs["upscaleFactor"])
    source = image_fields["image"]
    naming = NamingHint(
        source_stem=local_images["image"].path.stem if "image" in local_images else source,
        model_tag=spec.tag,
        factor=factor,
    )

    answer = await state.client.generate(spec.model_id, body, dry_run=options.dry_run)
    if options.dry_run or answer.job is None:
        estimate = UpscaleResult(
            jobId=None,
            model=spec.model_id,
            status="not-submitted",
            progress=0.0,
            creativeUnitsCost=answer.creative_units_cost,
            dryRun=True,
        )
        cost = (
            f"{answer.creative_units_cost:g} creative units"
            if answer.creative_units_cost is not None
            else "unknown"
        )
        return structured_result(estimate, f"Dry run: this upscale would cost {cost}. Nothing was submitted.")

    job = answer.job
    logger.info("submitted %s as job %s", spec.model_id, job.job_id)
    wait = min(options.wait, settings.max_wait_seconds)
    if wait > 0:

        async def report(update: Job) -> None:
            await ctx.report_progress(update.progress, 1.0, f"{update.status} ({update.progress:.0%})")

        job = await watch_job(
            state.client,
            job.job_id,
            wait_seconds=wait,
            first_interval=settings.poll_initial_seconds,
            max_interval=settings.poll_max_seconds,
            on_update=report,
        )
    return await finish(state, job, spec.model_id, answer.creative_units_cost, folder, naming)


async def finish(
    state: AppState, job: Job, model: str, cost: float | None, folder: Path, naming: NamingHint
) -> CallToolResult:
    """Answer for a job as it stands: save and preview its outputs if it succeeded."""
    if job.status != "success":
        view = UpscaleResult.model_validate(JobView.of(job, model, cost=cost).model_dump())
        if job.is_terminal:
            reason = f" Error: {job.metadata.error}" if job.metadata.error else ""
            hint = f" Hint: {job.metadata.hint}" if job.metadata.hint else ""
            return structured_result(view, f"Job {job.job_id} ended with status {job.status}.{reason}{hint}")
        view.next = (
            f"The job is still running. Call get_job with jobId {job.job_id} to check on it; it keeps "
            "running (and is billed) whether or not you wait."
        )
        return structured_result(view, f"Job {job.job_id} is {job.status} ({job.progress:.0%}). {view.next}")

    saved = await save_job_outputs(state.client, job, folder, naming)
    outputs = [
        OutputFile.saved(asset_id, file) for asset_id, file in zip(job.metadata.asset_ids, saved, strict=True)
    ]
    view = UpscaleResult.model_validate(JobView.of(job, model, cost=cost, outputs=outputs).model_dump())
    lines = [
        f"Job {job.job_id} succeeded"
        + (f" ({view.creativeUnitsCost:g} creative units)." if view.creativeUnitsCost is not None else ".")
    ]
    lines += [f"Saved {o.path} ({o.width}×{o.height}, {o.bytes:,} bytes)." for o in outputs]
    blocks: list[ContentBlock] = [TextContent(text=" ".join(lines))]
    if saved:
        preview, mime_type = await anyio.to_thread.run_sync(make_preview, saved[0].path)
        blocks.append(ImageContent(data=base64.b64encode(preview).decode("ascii"), mime_type=mime_type))
    blocks += [
        ResourceLink(uri=file.path.as_uri(), name=file.path.name, mime_type=file.mime_type, size=file.bytes)
        for file in saved
    ]
    return CallToolResult(content=blocks, structured_content=view.model_dump(mode="json"))


def _image_fields(inputs: dict[str, Any], spec: ModelSpec) -> dict[str, str]:
    """Every image reference in the inputs, keyed by its field name (`styleImages[2]` for list items)."""
    fields = {"image": inputs["image"]}
    for index, reference in enumerate(inputs.get(spec.image_list_field) or []):
        fields[f"{spec.image_list_field}[{index}]"] = reference
    return fields


async def _upload_local_images(state: AppState, local_images: dict[str, LocalImage]) -> dict[str, str]:
    """Upload each distinct local file once; map field name → asset id."""
    by_path: dict[Path, str] = {}
    resolved: dict[str, str] = {}
    for key, image in local_images.items():
        if image.path not in by_path:
            data = await anyio.Path(image.path).read_bytes()
            asset = await state.client.create_asset(image.path.name, data)
            logger.info("uploaded %s as %s", image.path.name, asset.id)
            by_path[image.path] = asset.id
        resolved[key] = by_path[image.path]
    return resolved


def _api_body(inputs: dict[str, Any], spec: ModelSpec, resolved: dict[str, str]) -> dict[str, Any]:
    """The JSON body: inputs with image references replaced by asset ids, unset optionals left out."""
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
