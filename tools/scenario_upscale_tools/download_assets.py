"""download_assets: save assets (by id, or a job's outputs) to the output folder, optionally converted."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from scenario_upscale_mcp.api.errors import InputError, MissingCredentialsError, NotFoundError
from scenario_upscale_mcp.outputs.folders import resolve_output_dir
from scenario_upscale_mcp.outputs.writing import SavedFile, safe_stem
from scenario_upscale_tools.arguments import JobIdText, LaterOutputDir, ToolContext, upscaler_of
from scenario_upscale_tools.delivery import naming_for, remembered_folder
from scenario_upscale_tools.inventory import ToolSpec
from scenario_upscale_tools.not_found import unknown_id
from scenario_upscale_tools.views import OutputFile, ResultModel, count, tool_result

if TYPE_CHECKING:
    from scenario_upscale_mcp.jobs.ledger import Ledger

AssetId = Annotated[str, Field(pattern=r"^asset_[A-Za-z0-9_-]+$")]


class DownloadResult(ResultModel):
    jobId: str | None = Field(
        default=None, description="The job whose outputs these are, when one was given."
    )
    files: list[OutputFile] = Field(description="Every saved file, in the order asked.")


async def download_assets(
    ctx: ToolContext,
    assetIds: Annotated[
        list[AssetId] | None,
        Field(min_length=1, max_length=32, description="Asset ids to save (or give jobId)."),
    ] = None,
    jobId: Annotated[
        JobIdText | None, Field(description="Save this finished job's outputs (or give assetIds).")
    ] = None,
    outputDir: LaterOutputDir = None,
    format: Annotated[
        Literal["png", "jpeg", "webp"] | None,
        Field(description="Convert to this format; default: the asset's own."),
    ] = None,
    preview: Annotated[
        bool,
        Field(description="Preview the first file in the answer."),
    ] = True,
) -> Annotated[CallToolResult, DownloadResult]:
    """Save assets (by id, or a finished job's outputs) to the output folder, optionally converted;
    never overwrites. Returns paths and a preview.
    """
    if (assetIds is None) == (jobId is None):
        raise InputError("Give exactly one of assetIds (a list of asset ids) or jobId (a finished job's id).")
    upscaler = upscaler_of(ctx)
    folder = resolve_output_dir(outputDir, upscaler.settings)
    if upscaler.settings.credentials() is None:
        raise MissingCredentialsError
    saved: list[SavedFile]
    fallback: str | None = None
    if jobId is not None:
        try:
            job = await upscaler.client.get_job(jobId)
        except NotFoundError as exc:
            raise unknown_id("jobId", jobId, exc, "list_jobs shows the recent jobs.") from exc
        record = await upscaler.observe(job)
        if job.status != "success":
            raise InputError(
                f"Job {jobId} is {job.status}; only a successful job has outputs to download "
                "(wait_for_jobs waits for it and saves them)."
            )
        if not outputDir:  # the folder the job's upscale call asked for
            folder, fallback = remembered_folder(upscaler.settings, record)
        asset_ids = job.metadata.asset_ids
        saved = await upscaler.save_job_outputs(job, folder, naming_for(record, job), target_format=format)
    else:
        asset_ids = list(dict.fromkeys(assetIds or []))
        saved = []
        for asset_id in asset_ids:

            def name_for(extension: str, asset_id: str = asset_id) -> str:
                return f"{safe_stem(asset_id)}.{extension}"

            try:
                saved.append(await upscaler.save_asset(asset_id, folder, name_for, target_format=format))
            except NotFoundError as exc:
                argument = f"assetIds[{(assetIds or []).index(asset_id)}]"
                raise unknown_id(argument, asset_id, exc) from exc

    files = [OutputFile.saved(asset_id, file) for asset_id, file in zip(asset_ids, saved, strict=True)]

    def remember(ledger: Ledger) -> None:
        for file in files:
            ledger.record_download(asset_id=file.assetId, path=str(file.path), job_id=jobId)

    await upscaler.ledger(remember)
    listing = "; ".join(f"{f.path} ({f.width}×{f.height}, {f.bytes:,} bytes)" for f in files)
    summary = f"Saved {count(len(files), 'file')}: {listing}."
    if fallback:
        summary += f" {fallback}"
    return await tool_result(DownloadResult(jobId=jobId, files=files), summary, saved, preview=preview)


TOOL = ToolSpec(
    fn=download_assets,
    title="Download upscaled images",
    annotations=ToolAnnotations(
        read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
    ),
)
