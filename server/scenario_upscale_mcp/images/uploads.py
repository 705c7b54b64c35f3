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
from scenario_upscale_mcp.images.reading import LocalImage

if TYPE_CHECKING:
    from scenario_upscale_mcp.api.client import ScenarioClient
    from scenario_upscale_mcp.state import AppState

logger = logging.getLogger(__name__)

# POST /assets takes the file inline (a data URL) below this size; larger files go through /uploads.
SIMPLE_UPLOAD_LIMIT = 3_500_000
MIN_PART_BYTES = 5 * 1024 * 1024  # S3's minimum for every part but the last
MAX_PARTS = 10_000
PART_CONCURRENCY = 4
IMPORT_TIMEOUT_SECONDS = 300.0
HASH_CHUNK_BYTES = 1024 * 1024
# A claimed upload is renewed every CLAIM_RENEW_SECONDS; one not renewed for CLAIM_STALE_SECONDS
# belongs to a caller that died, and is taken over.
CLAIM_RENEW_SECONDS = 5.0
CLAIM_STALE_SECONDS = 30.0
CLAIM_POLL_FIRST_SECONDS = 0.05
CLAIM_POLL_MAX_SECONDS = 1.0


@dataclass(frozen=True)
class UploadedImage:
    asset_id: str
    image: LocalImage
    reused: bool  # the same content was uploaded before and its asset still exists


async def upload_image(
    state: AppState, image: LocalImage, digest: str, *, name: str | None = None
) -> UploadedImage:
    """The asset for this content (`digest`, its SHA-256), uploading it only if no live asset has it.

    One upload per content, even when asked for at once: the upload is claimed in the ledger, and
    whoever finds it claimed (in this process or another) waits for that upload's asset instead of
    sending the same bytes again.
    """
    interval = CLAIM_POLL_FIRST_SECONDS
    while True:
        known = await _live_asset(state, digest)
        if known is not None:
            return UploadedImage(asset_id=known, image=image, reused=True)
        if await state.in_ledger(lambda ledger: ledger.claim_upload(digest, stale_after=CLAIM_STALE_SECONDS)):
            break
        await anyio.sleep(interval)
        interval = min(interval * 1.5, CLAIM_POLL_MAX_SECONDS)
    try:
        # Claimed: but another caller may have finished this very upload since the look above.
        known = await _live_asset(state, digest)
        if known is not None:
            return UploadedImage(asset_id=known, image=image, reused=True)
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(_keep_claim, state, digest)
                asset_id = await _send(state, image, name or image.path.name)
                group.cancel_scope.cancel()
        except ExceptionGroup as failure:  # the upload's own error, not a group of one
            raise failure.exceptions[0] from None
        await state.in_ledger(
            lambda ledger: ledger.record_upload(
                content_hash=digest, asset_id=asset_id, name=name or image.path.name, size=image.size
            )
        )
        return UploadedImage(asset_id=asset_id, image=image, reused=False)
    finally:
        with anyio.CancelScope(shield=True):
            await state.in_ledger(lambda ledger: ledger.release_upload(digest))


async def _live_asset(state: AppState, digest: str) -> str | None:
    """The asset this content was uploaded as, if the API still has it."""
    known = await state.in_ledger(lambda ledger: ledger.asset_for_content(digest))
    if known is None:
        return None
    try:
        await state.client.get_asset(known)
    except NotFoundError:
        await state.in_ledger(lambda ledger: ledger.forget_upload(digest, asset_id=known))
        return None
    return known


async def _keep_claim(state: AppState, digest: str) -> None:
    """Renew the claim while the upload runs, so that only a claim whose owner died goes stale."""
    while True:
        await anyio.sleep(CLAIM_RENEW_SECONDS)
        await state.in_ledger(lambda ledger: ledger.renew_upload_claim(digest))


async def _send(state: AppState, image: LocalImage, file_name: str) -> str:
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
    return asset_id


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


def content_digest(path: Path) -> str:
    """The SHA-256 of a file's bytes: the content's identity (blocking)."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
