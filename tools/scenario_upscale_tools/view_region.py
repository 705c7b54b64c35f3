"""view_region: a rectangle of a job's saved result or of its original (or of an image file the server may
read), at most maxEdge pixels, for the viewer (`ui://scenario-upscale/viewer.html`).

App-only: hosts that render the viewer hide it from the model (`_meta.ui.visibility: ["app"]`). A 100
megapixel result is inspected at 1:1 this way without moving it whole; the cutting and its cache are
`scenario_upscale_mcp.viewer.regions`. Every argument is checked before any request: only a job's
original that is no longer on this machine is fetched from Scenario, once, into the state folder.
"""

from __future__ import annotations

import base64
import functools
import logging
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal
from weakref import WeakKeyDictionary

import anyio
from mcp.types import CallToolResult, ImageContent, TextContent, ToolAnnotations
from pydantic import Field

from scenario_upscale_mcp.api.errors import InputError, MissingCredentialsError, NotFoundError
from scenario_upscale_mcp.images.reading import content_digest, readable_path
from scenario_upscale_mcp.images.references import LocalReference, parse_reference
from scenario_upscale_mcp.outputs.previews import PREVIEW_MAX_PIXELS
from scenario_upscale_mcp.outputs.writing import safe_stem
from scenario_upscale_mcp.viewer.regions import RegionSource, render_region
from scenario_upscale_tools.arguments import JobIdText, ToolContext, upscaler_of
from scenario_upscale_tools.inventory import ToolSpec
from scenario_upscale_tools.not_found import unknown_id
from scenario_upscale_tools.views import ResultModel

if TYPE_CHECKING:
    from scenario_upscale_mcp.jobs.ledger import JobRecord, Ledger
    from scenario_upscale_mcp.service import Upscaler

logger = logging.getLogger(__name__)

ORIGINALS_FOLDER = "viewer-originals"  # in the state folder: originals fetched from Scenario, one per asset
SAVED_FILE_LIMIT = "the preview limit"  # what caps the decode of a file this server saved
MAX_COORDINATE = 1_000_000

Pixels = Annotated[int, Field(ge=0, le=MAX_COORDINATE)]
Extent = Annotated[int, Field(ge=1, le=MAX_COORDINATE)]


class RegionView(ResultModel):
    imageWidth: int = Field(description="The full image's width in pixels.")
    imageHeight: int = Field(description="The full image's height in pixels.")
    x: int = Field(description="The region shown, clipped to the image, in full-size pixels: left edge.")
    y: int = Field(description="Top edge.")
    width: int = Field(description="Width.")
    height: int = Field(description="Height.")
    scale: float = Field(description="Answer pixels per image pixel (at most 1).")
    mimeType: str = Field(description="The answer image's type: image/png or image/jpeg.")


async def view_region(
    ctx: ToolContext,
    x: Annotated[Pixels, Field(description="Region's left edge, in the full image's pixels.")],
    y: Annotated[Pixels, Field(description="Region's top edge.")],
    width: Annotated[Extent, Field(description="Region's width (clipped to the image).")],
    height: Annotated[Extent, Field(description="Region's height (clipped to the image).")],
    jobId: Annotated[JobIdText | None, Field(description="A job's image (or give path).")] = None,
    path: Annotated[
        str | None, Field(min_length=1, description="Or an image file the server may read.")
    ] = None,
    which: Annotated[
        Literal["result", "original"], Field(description="With jobId: its saved result or its input.")
    ] = "result",
    output: Annotated[int, Field(ge=0, le=31, description="With jobId: which output.")] = 0,
    maxEdge: Annotated[int, Field(ge=16, le=2048, description="Longest edge of the answer.")] = 1024,
) -> Annotated[CallToolResult, RegionView]:
    """For the viewer: a region of an upscale job's result or original, or of an image file, scaled down to
    maxEdge (never up).
    """
    if (jobId is None) == (path is None):
        raise InputError("Give exactly one of jobId (a job's result or original) or path (an image file).")
    if path is not None and which != "result":
        raise InputError("which: only with jobId (a job's result or original); path names the image itself.")
    if path is not None and output != 0:
        raise InputError("output: only with jobId (which of a job's outputs); path names the image itself.")
    upscaler = upscaler_of(ctx)
    if path is not None:
        source = await _readable_file(upscaler, path)
    elif which == "result":
        source = await _saved_result(upscaler, str(jobId), output)
    else:
        source = await _original(upscaler, str(jobId))
    region = await anyio.to_thread.run_sync(
        functools.partial(render_region, source, x, y, width, height, maxEdge)
    )
    view = RegionView(
        imageWidth=region.image_width,
        imageHeight=region.image_height,
        x=region.x,
        y=region.y,
        width=region.width,
        height=region.height,
        scale=round(region.scale, 6),
        mimeType=region.mime_type,
    )
    summary = (
        f"{source.path.name}: the region at {region.x},{region.y} of {region.width}×{region.height} pixels "
        f"(of {region.image_width}×{region.image_height}), at {region.scale:.0%} "
        f"({region.answer_width}×{region.answer_height})."
    )
    image = ImageContent(data=base64.b64encode(region.data).decode("ascii"), mime_type=region.mime_type)
    return CallToolResult(
        content=[image, TextContent(text=summary)], structured_content=view.model_dump(mode="json")
    )


async def _readable_file(upscaler: Upscaler, path: str) -> RegionSource:
    """`path`, if the server may read it: the reading rules and caps of every input image."""
    settings = upscaler.settings
    reference = parse_reference(path, "path")
    if not isinstance(reference, LocalReference):
        raise InputError(
            f"path: {path[:80]!r} is not a local file; give its absolute path (or ~/..., file://)."
        )
    resolved = await anyio.to_thread.run_sync(readable_path, reference.path, settings, "path")
    return RegionSource(
        resolved, "path", settings.max_input_pixels, "SCENARIO_MAX_INPUT_PIXELS", settings.max_input_bytes
    )


async def _saved_result(upscaler: Upscaler, job_id: str, output: int) -> RegionSource:
    """The file this server saved for the job's output (`saved_outputs`), the first still there."""
    outputs = await upscaler.ledger(functools.partial(saved_outputs, job_id=job_id))
    if not outputs:
        raise InputError(
            f"jobId: {job_id} has no saved result yet; call wait_for_jobs with jobIds [{job_id!r}] to wait "
            "for it and save it."
        )
    if output >= len(outputs):
        raise InputError(
            f"output: job {job_id} has {len(outputs)} saved output{'s' if len(outputs) > 1 else ''}; "
            f"give 0 to {len(outputs) - 1}."
        )
    paths = outputs[output]
    found = await anyio.to_thread.run_sync(_first_file, paths)
    if found is None:
        raise InputError(
            f"jobId: the saved result of job {job_id} ({paths[0] if paths else 'no path'}) is no longer "
            f"there; download_assets with jobId {job_id} saves it again."
        )
    return RegionSource(found, "jobId", PREVIEW_MAX_PIXELS, SAVED_FILE_LIMIT)


def saved_outputs(ledger: Ledger, *, job_id: str) -> list[list[str]]:
    """Each output of the job, in order, as the paths it was saved at: where the ledger recorded it (an
    upscale tool or wait_for_jobs saved it), then where download_assets saved it since, newest first."""
    record = ledger.get_job(job_id)
    outputs: dict[str, list[str]] = {}
    for entry in record.outputs if record is not None else []:
        path = entry.get("path")
        outputs.setdefault(str(entry.get("assetId")), []).extend([path] if isinstance(path, str) else [])
    downloads = ledger.downloads_for_job(job_id)
    for asset_id, _ in downloads:  # a job saved only by download_assets: its outputs in the order saved
        outputs.setdefault(asset_id, [])
    for asset_id, path in reversed(downloads):
        outputs[asset_id].append(path)
    return list(outputs.values())


def _first_file(paths: list[str]) -> Path | None:
    # Not resolved: the file is opened without following a symlink, so one put in its place is refused.
    return next((Path(text) for text in paths if Path(text).is_file()), None)


async def _original(upscaler: Upscaler, job_id: str) -> RegionSource:
    """The job's input image: the local file it was uploaded from, if that file still holds the same
    content; else a copy fetched from Scenario into the state folder (once)."""
    record = await upscaler.ledger(lambda ledger: ledger.get_job(job_id))
    asset_id = record.inputs.get("image") if record is not None else None
    if record is not None and isinstance(asset_id, str):
        local = await _local_original(upscaler, record, asset_id)
        if local is not None:
            return local
    settings = upscaler.settings
    if settings.credentials() is None:
        raise MissingCredentialsError
    if not isinstance(asset_id, str):  # a job this server did not submit: the API says what it upscaled
        try:
            job = await upscaler.client.get_job(job_id)
        except NotFoundError as exc:
            raise unknown_id("jobId", job_id, exc, "list_jobs shows the recent jobs.") from exc
        asset_id = (job.metadata.input or {}).get("image")
        if not isinstance(asset_id, str):
            raise InputError(f"jobId: the API does not say which image job {job_id} upscaled.")
    path = await _fetched_original(upscaler, job_id, asset_id)
    return RegionSource(path, "jobId", PREVIEW_MAX_PIXELS, SAVED_FILE_LIMIT)


async def _local_original(upscaler: Upscaler, record: JobRecord, asset_id: str) -> RegionSource | None:
    """The file the job's image was given as, if the reading rules still allow it and its content is
    still the one uploaded as `asset_id`."""
    given = record.parameters.get("image")
    if not isinstance(given, str):
        return None
    settings = upscaler.settings
    try:
        reference = parse_reference(given, "image")
        if not isinstance(reference, LocalReference):
            return None
        resolved = await anyio.to_thread.run_sync(readable_path, reference.path, settings, "image")
        status = await anyio.to_thread.run_sync(resolved.stat)
    except (InputError, OSError) as exc:
        logger.info("the original of job %s is not read from %s: %s", record.job_id, given[:200], exc)
        return None
    digest = await anyio.to_thread.run_sync(_digest, str(resolved), status.st_mtime_ns, status.st_size)
    if await upscaler.ledger(lambda ledger: ledger.asset_for_content(digest)) != asset_id:
        return None  # changed since, or never uploaded from here
    return RegionSource(
        resolved, "jobId", settings.max_input_pixels, "SCENARIO_MAX_INPUT_PIXELS", settings.max_input_bytes
    )


@functools.lru_cache(maxsize=64)
def _digest(path: str, mtime_ns: int, size: int) -> str:
    """The file's content hash, computed once per version of the file (its time and size in the key)."""
    return content_digest(Path(path))


# Per server: one fetch of an original at a time for each asset, so a loupe's burst of calls fetches once.
_fetching: WeakKeyDictionary[Upscaler, defaultdict[str, anyio.Lock]] = WeakKeyDictionary()


async def _fetched_original(upscaler: Upscaler, job_id: str, asset_id: str) -> Path:
    settings = upscaler.settings
    # The state folder the ledger is in (the simulator's jobs have a ledger of their own).
    state = settings.sandbox_state_dir if settings.sandbox else settings.state_dir
    folder = state / ORIGINALS_FOLDER
    stem = safe_stem(asset_id)
    async with _fetching.setdefault(upscaler, defaultdict(anyio.Lock))[asset_id]:
        found = await anyio.to_thread.run_sync(_fetched_before, folder, stem)
        if found is not None:
            return found
        await anyio.Path(folder).mkdir(parents=True, exist_ok=True)
        try:
            saved = await upscaler.save_asset(asset_id, folder, lambda extension: f"{stem}.{extension}")
        except NotFoundError as exc:
            raise InputError(
                f"jobId: the image job {job_id} upscaled ({asset_id}) is no longer in your Scenario project."
            ) from exc
        return saved.path


def _fetched_before(folder: Path, stem: str) -> Path | None:
    if not folder.is_dir():
        return None
    return next((path for path in sorted(folder.glob(f"{stem}.*")) if path.is_file()), None)


TOOL = ToolSpec(
    fn=view_region,
    title="View part of an image (viewer)",
    annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=True),
)
