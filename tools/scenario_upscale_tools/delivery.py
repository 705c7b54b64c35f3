"""Delivering a job: record what the API said, save a successful job's outputs once into the folder its
call asked for, remember them, and view the job.

Shared by the model tools and wait_for_jobs, so a job looks the same whichever tool delivered it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from scenario_upscale_mcp.api.errors import InputError, ScenarioError
from scenario_upscale_mcp.jobs.saving import NamingHint
from scenario_upscale_mcp.outputs.folders import resolve_output_dir
from scenario_upscale_mcp.outputs.writing import SavedFile
from scenario_upscale_tools.scenario_models import MODELS
from scenario_upscale_tools.views import JobView, OutputFile, job_view, recorded_outputs

if TYPE_CHECKING:
    from scenario_upscale_mcp.api.answers import Job
    from scenario_upscale_mcp.config import Settings
    from scenario_upscale_mcp.jobs.ledger import JobRecord, Ledger
    from scenario_upscale_mcp.service import Upscaler


async def settle(
    upscaler: Upscaler,
    job: Job,
    folder: Path | None,
    *,
    cost: float | None = None,
    notice: str | None = None,
) -> tuple[JobView, list[SavedFile]]:
    """Record the job's state; if it succeeded, save its outputs. Returns its view and the saved files.

    `folder` None saves into the folder the job's submitting call asked for (`remembered_folder`).
    A failure to save does not fail the answer: the view carries it as its notice, with no files.
    """
    record = await upscaler.observe(job)
    if job.status != "success":
        return job_view(record, job, cost=cost, notice=notice), []
    if folder is None:
        folder, fallback = remembered_folder(upscaler.settings, record)
        if fallback:
            notice = f"{notice} {fallback}" if notice else fallback
    already = _saved_before(record, job, folder)
    if already is not None:
        # A job returned again (an identical request, a second wait) keeps the files it already has.
        return job_view(record, job, cost=cost, outputs=recorded_outputs(record), notice=notice), already
    try:
        saved = await upscaler.save_job_outputs(job, folder, naming_for(record, job))
    except ScenarioError as exc:
        # The job is done and paid for: its answer must still come back, saying what to do.
        failed = (
            f"The job succeeded but its outputs could not be saved: {exc} Call download_assets with "
            f"jobId {job.job_id} to try again."
        )
        notice = f"{notice} {failed}" if notice else failed
        return job_view(record, job, cost=cost, notice=notice), []
    outputs = [
        OutputFile.saved(asset_id, file) for asset_id, file in zip(job.metadata.asset_ids, saved, strict=True)
    ]

    def remember(ledger: Ledger) -> None:
        ledger.record_outputs(job.job_id, [output.model_dump() for output in outputs])
        for output in outputs:
            ledger.record_download(asset_id=output.assetId, path=str(output.path), job_id=job.job_id)

    await upscaler.ledger(remember)
    return job_view(record, job, cost=cost, outputs=outputs, notice=notice), saved


def remembered_folder(settings: Settings, record: JobRecord | None) -> tuple[Path, str | None]:
    """The folder the job's submitting call asked for (its `outputDir`, kept in the ledger), or the output
    folder when it named none. A remembered folder no longer allowed or usable (the allowed folders changed,
    a file took its place) gives the output folder too, with a sentence saying so.
    """
    if record is None or not record.output_dir:
        return settings.output_dir, None
    try:
        return resolve_output_dir(record.output_dir, settings), None
    except InputError as exc:
        return settings.output_dir, (
            f"Job {record.job_id} was to be saved into {record.output_dir}, which can no longer be used "
            f"({str(exc).rstrip('.')}); it is saved into the output folder {settings.output_dir} instead."
        )


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
    model = MODELS.get(record.model)
    sent = job.metadata.input or {}
    factor = record.upscale_factor
    if factor is None and isinstance(sent.get("upscaleFactor"), int | float):
        factor = float(sent["upscaleFactor"])
    return NamingHint(
        source_stem=record.source_stem or str(sent.get("image") or job.job_id),
        model_tag=model.tag if model else "upscale",
        factor=factor,
    )
