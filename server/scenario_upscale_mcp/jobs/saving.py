"""Saving a finished job's outputs where its call asked, named for what they are, remembered in the ledger."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from scenario_upscale_mcp.api.answers import Job
from scenario_upscale_mcp.api.errors import DownloadError
from scenario_upscale_mcp.outputs.previews import describe_image
from scenario_upscale_mcp.outputs.writing import EXTENSIONS, SavedFile, output_file_name, save_download

if TYPE_CHECKING:
    from scenario_upscale_mcp.api.client import ScenarioClient
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class NamingHint:
    """What an output file's name is made of: `<stem>_<model tag>_x<factor>_<short job id>`."""

    source_stem: str
    model_tag: str
    factor: float | None


async def save_asset(
    client: ScenarioClient,
    asset_id: str,
    folder: Path,
    file_name_for: Callable[[str], str],
    *,
    target_format: str | None = None,
) -> SavedFile:
    """Fetch a fresh link (signed URLs expire), download the file to disk, describe what was saved.

    With `target_format`, Scenario converts the asset first (`POST /assets/{id}/download`). A link
    refused as expired is fetched again once, and a cut connection is retried once; neither leaves
    a file under the final name.
    """
    last_error: DownloadError | None = None
    for _attempt in range(2):
        if target_format is not None:
            link = await client.convert_asset(asset_id, target_format)
            url, mime_type = link.url, link.mime_type
        else:
            asset = await client.get_asset(asset_id)
            if not asset.url:
                raise DownloadError(
                    f"Asset {asset_id} has no download URL yet (status {asset.status}); try again shortly."
                )
            url, mime_type = asset.url, asset.mime_type
        extension = EXTENSIONS.get(mime_type or "", target_format or "png")
        try:
            async with client.open_download(url) as download:
                path, size = await save_download(folder, file_name_for(extension), download)
        except DownloadError as exc:
            logger.info("download of %s failed once: %s", asset_id, exc)
            last_error = exc
            continue
        described_type, width, height = await anyio.to_thread.run_sync(describe_image, path)
        return SavedFile(
            path=path, bytes=size, mime_type=described_type or mime_type, width=width, height=height
        )
    assert last_error is not None
    raise last_error


async def save_job_outputs(
    client: ScenarioClient, job: Job, folder: Path, naming: NamingHint, *, target_format: str | None = None
) -> list[SavedFile]:
    """Save every output asset of a successful job under descriptive, never-overwriting names."""
    saved: list[SavedFile] = []
    for index, asset_id in enumerate(job.metadata.asset_ids):

        def name_for(extension: str, index: int = index) -> str:
            return output_file_name(
                naming.source_stem, naming.model_tag, naming.factor, job.job_id, extension, index
            )

        saved.append(await save_asset(client, asset_id, folder, name_for, target_format=target_format))
    return saved
