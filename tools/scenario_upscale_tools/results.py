"""Turning a job into an answer: save a successful job's outputs, record them, build the tool result.

Shared by the model tools and wait_for_jobs, so a result looks the same whichever tool delivered it.
"""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from mcp.types import CallToolResult, ContentBlock, ImageContent, ResourceLink, TextContent
from pydantic import BaseModel

from scenario_upscale_mcp.api.errors import ScenarioError
from scenario_upscale_mcp.jobs.saving import NamingHint, save_job_outputs
from scenario_upscale_mcp.jobs.submission import observe
from scenario_upscale_mcp.outputs.previews import PreviewUnavailable, make_preview
from scenario_upscale_mcp.outputs.writing import SavedFile
from scenario_upscale_tools.common import MODELS, JobView, OutputFile

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from scenario_upscale_mcp.api.answers import Job
    from scenario_upscale_mcp.jobs.ledger import JobRecord, Ledger
    from scenario_upscale_mcp.state import AppState


async def settle(
    state: AppState, job: Job, folder: Path, *, cost: float | None = None, notice: str | None = None
) -> tuple[JobView, list[SavedFile]]:
    """Record the job's state; if it succeeded, save its outputs. Returns its view and the saved files.

    A failure to save does not fail the answer: the view carries it as its notice, with no files.
    """
    record = await observe(state, job)
    cost = cost if cost is not None else record.cost
    if job.status != "success":
        return JobView.of(job, record.model, cost=cost, notice=notice), []
    already = _saved_before(record, job, folder)
    if already is not None:
        # A job returned again (an identical request, a second wait) keeps the files it already has.
        outputs = [OutputFile.model_validate(output) for output in record.outputs]
        return JobView.of(job, record.model, cost=cost, outputs=outputs, notice=notice), already
    try:
        saved = await save_job_outputs(state.client, job, folder, naming_for(record, job))
    except ScenarioError as exc:
        # The job is done and paid for: its answer must still come back, saying what to do.
        failed = (
            f"The job succeeded but its outputs could not be saved: {exc} Call download_assets with "
            f"jobId {job.job_id} to try again."
        )
        notice = f"{notice} {failed}" if notice else failed
        return JobView.of(job, record.model, cost=cost, notice=notice), []
    outputs = [
        OutputFile.saved(asset_id, file) for asset_id, file in zip(job.metadata.asset_ids, saved, strict=True)
    ]

    def remember(ledger: Ledger) -> None:
        ledger.record_outputs(job.job_id, [output.model_dump() for output in outputs])
        for output in outputs:
            ledger.record_download(asset_id=output.assetId, path=str(output.path), job_id=job.job_id)

    await state.in_ledger(remember)
    return JobView.of(job, record.model, cost=cost, outputs=outputs, notice=notice), saved


def _saved_before(record: JobRecord, job: Job, folder: Path) -> list[SavedFile] | None:
    """The job's outputs as saved earlier into `folder`, if every one of them is still there."""
    if not record.outputs or len(record.outputs) != len(job.metadata.asset_ids):
        return None
    if any(not output.get("path") for output in record.outputs):
        return None
    paths = [Path(output["path"]) for output in record.outputs]
    if any(path.parent != folder or not path.is_file() for path in paths):
        return None
    return [
        SavedFile(
            path=path,
            bytes=output.get("bytes") or path.stat().st_size,
            mime_type=output.get("mimeType"),
            width=output.get("width"),
            height=output.get("height"),
        )
        for path, output in zip(paths, record.outputs, strict=True)
    ]


def naming_for(record: JobRecord, job: Job) -> NamingHint:
    """Name outputs after their source; for a job submitted elsewhere, after its input asset."""
    spec = MODELS.get(record.model)
    sent = job.metadata.input or {}
    factor = record.upscale_factor
    if factor is None and isinstance(sent.get("upscaleFactor"), int | float):
        factor = float(sent["upscaleFactor"])
    return NamingHint(
        source_stem=record.source_stem or str(sent.get("image") or job.job_id),
        model_tag=spec.tag if spec else "upscale",
        factor=factor,
    )


async def answer(
    view: BaseModel, summary: str, saved: list[SavedFile], *, preview: bool = True
) -> CallToolResult:
    """The tool result: a summary, one preview (of the first saved file), and a link to every saved file.

    One preview only: hosts reject results over 1 MB, and one look is enough to judge a result. A
    file that cannot be previewed still gets its link, and the text says why it has no preview; the
    answer never fails for want of a preview.
    """
    blocks: list[ContentBlock] = [TextContent(text=summary)]
    if saved and preview:
        try:
            image, mime_type = await anyio.to_thread.run_sync(make_preview, saved[0].path)
        except PreviewUnavailable as exc:  # too large to decode within the server's memory bound
            blocks[0] = TextContent(text=f"{summary} {exc}")
        except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:  # Pillow: "cannot read it"
            logger.info("no preview for %s: %s", saved[0].path, exc)
            blocks[0] = TextContent(
                text=f"{summary} No preview: {saved[0].path.name} could not be read as an image here."
            )
        else:
            blocks.append(ImageContent(data=base64.b64encode(image).decode("ascii"), mime_type=mime_type))
    blocks += [
        ResourceLink(uri=file.path.as_uri(), name=file.path.name, mime_type=file.mime_type, size=file.bytes)
        for file in saved
    ]
    return CallToolResult(content=blocks, structured_content=view.model_dump(mode="json"))
