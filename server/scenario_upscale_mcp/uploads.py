"""Turning a checked local image into a Scenario asset: once per content, small files inline, large in parts.

Under 3.5 MB the file goes inline as a data URL (`POST /assets`), as Scenario's own Blender and Unity
clients send it (the gateway caps bodies at 10 MB, and base64 grows a file by a third). From 3.5 MB
on it goes through the multipart `/uploads` flow (a single part is allowed): parts of at least 5 MiB read from disk one at a time and PUT a few at once, so
memory stays bounded by part size × concurrency whatever the file's size; then `complete`, then
polling until the upload is `imported` as an asset.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from scenario_upscale_mcp.api.errors import NotFoundError, UploadError
from scenario_upscale_mcp.files import SIMPLE_UPLOAD_LIMIT, LocalImage

if TYPE_CHECKING:
    from scenario_upscale_mcp.api.client import ScenarioClient
    from scenario_upscale_mcp.state import AppState

logger = logging.getLogger(__name__)

MIN_PART_BYTES = 5 * 1024 * 1024  # S3's minimum for every part but the last
MAX_PARTS = 10_000
PART_CONCURRENCY = 4
IMPORT_TIMEOUT_SECONDS = 300.0
HASH_CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class UploadedImage:
    asset_id: str
    image: LocalImage
    reused: bool  # the same content was uploaded before and its asset still exists


async def upload_image(state: AppState, image: LocalImage, *, name: str | None = None) -> UploadedImage:
    """The asset for this image's content, uploading it only if no live asset has the same bytes."""
    digest = await anyio.to_thread.run_sync(_sha256, image.path)
    known = await state.in_ledger(lambda ledger: ledger.asset_for_content(digest))
    if known is not None:
        try:
            await state.client.get_asset(known)
        except NotFoundError:
            await state.in_ledger(lambda ledger: ledger.forget_upload(digest, asset_id=known))
        else:
            return UploadedImage(asset_id=known, image=image, reused=True)
    file_name = name or image.path.name
    if image.size < SIMPLE_UPLOAD_LIMIT:
        data = await anyio.Path(image.path).read_bytes()
        asset_id = (await state.client.create_asset(file_name, data, image.mime_type)).id
    else:
        asset_id = await upload_in_parts(
            state.client,
            image,
            file_name=file_name,
            poll_initial=state.settings.poll_initial_seconds,
            poll_max=state.settings.poll_max_seconds,
        )
    logger.info("uploaded %s (%d bytes) as %s", file_name, image.size, asset_id)
    await state.in_ledger(
        lambda ledger: ledger.record_upload(
            content_hash=digest, asset_id=asset_id, name=file_name, size=image.size
        )
    )
    return UploadedImage(asset_id=asset_id, image=image, reused=False)


def part_plan(size: int) -> tuple[int, int]:
    """(part size, number of parts): parts of at least 5 MiB, at most 10,000 of them."""
    part_size = max(MIN_PART_BYTES, math.ceil(size / MAX_PARTS))
    return part_size, max(1, math.ceil(size / part_size))


async def upload_in_parts(
    client: ScenarioClient,
    image: LocalImage,
    *,
    file_name: str,
    poll_initial: float,
    poll_max: float,
    concurrency: int = PART_CONCURRENCY,
) -> str:
    part_size, count = part_plan(image.size)
    upload = await client.create_upload(
        file_name=file_name, content_type=image.mime_type, file_size=image.size, parts=count
    )
    if len(upload.parts) != count:
        raise UploadError(f"The API prepared {len(upload.parts)} upload parts instead of {count}.")
    # Each part is read inside the limiter, so at most `concurrency` parts are in memory at once.
    limiter = anyio.CapacityLimiter(concurrency)

    async def send(number: int, url: str) -> None:
        async with limiter:
            offset = (number - 1) * part_size
            data = await anyio.to_thread.run_sync(_read_range, image.path, offset, part_size)
            await client.put_part(url, data)

    try:
        async with anyio.create_task_group() as group:
            for part in upload.parts:
                group.start_soon(send, part.number, part.url)
    except ExceptionGroup as failure:
        # The first failed part says what went wrong; the others were cancelled because of it.
        raise failure.exceptions[0] from None
    await client.complete_upload(upload.id)

    interval = poll_initial
    with anyio.move_on_after(IMPORT_TIMEOUT_SECONDS):
        while True:
            state = await client.get_upload(upload.id)
            if state.status == "imported" and state.entity_id:
                return state.entity_id
            if state.status == "failed":
                raise UploadError(
                    f"Scenario could not import {file_name}: {state.error_message or 'no reason given'}."
                )
            await anyio.sleep(interval)
            interval = min(interval * 1.5, poll_max)
    raise UploadError(
        f"Scenario did not finish importing {file_name} within {IMPORT_TIMEOUT_SECONDS:.0f} s; try again."
    )


def _read_range(path: Path, offset: int, length: int) -> bytes:
    with path.open("rb") as file:
        file.seek(offset)
        return file.read(length)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
