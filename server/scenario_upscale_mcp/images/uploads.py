"""Turning a checked local image into a Scenario asset: once per content, small files inline, large in parts.

Under 3.5 MB the file goes inline as a data URL (`POST /assets`), as Scenario's own Blender and Unity
clients send it (the gateway caps bodies at 10 MB, and base64 grows a file by a third). From 3.5 MB
on it goes through the multipart `/uploads` flow (a single part is allowed): parts of at least 5 MiB,
a few PUT at once, each read from disk a slice at a time as its connection takes it (`FilePart`), so
memory stays a few slices whatever the file's size; then `complete`, then polling until the upload
is `imported` as an asset.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from scenario_upscale_mcp.api.errors import NotFoundError, UploadError
from scenario_upscale_mcp.api.transfers import FilePart
from scenario_upscale_mcp.clock import Clock, polling
from scenario_upscale_mcp.images.reading import LocalImage

if TYPE_CHECKING:
    from scenario_upscale_mcp.api.client import ScenarioClient
    from scenario_upscale_mcp.jobs.async_ledger import AsyncLedger

logger = logging.getLogger(__name__)

# POST /assets takes the file inline (a data URL) below this size; larger files go through /uploads.
SIMPLE_UPLOAD_LIMIT = 3_500_000
MIN_PART_BYTES = 5 * 1024 * 1024  # S3's minimum for every part but the last
MAX_PARTS = 10_000
PART_CONCURRENCY = 4
IMPORT_TIMEOUT_SECONDS = 300.0
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


@dataclass(frozen=True)
class Uploader:
    """What an upload goes through: the API, the ledger (one upload per content), the clock, and the
    polling of a multipart upload's import."""

    client: ScenarioClient
    ledger: AsyncLedger
    clock: Clock
    poll_initial_seconds: float = 1.0
    poll_max_seconds: float = 5.0


async def upload_image(
    uploader: Uploader, image: LocalImage, digest: str, *, name: str | None = None
) -> UploadedImage:
    """The asset for this content (`digest`, its SHA-256), uploading it only if no live asset has it.

    One upload per content, even when asked for at once: the upload is claimed in the ledger, and
    whoever finds it claimed (in this process or another) waits for that upload's asset instead of
    sending the same bytes again.
    """
    # No deadline of its own: a claim whose owner stops renewing it goes stale and is taken over here.
    async for _ in polling(
        uploader.clock, first=CLAIM_POLL_FIRST_SECONDS, cap=CLAIM_POLL_MAX_SECONDS, deadline=None
    ):
        known = await _live_asset(uploader, digest)
        if known is not None:
            return UploadedImage(asset_id=known, image=image, reused=True)
        if await uploader.ledger(lambda db: db.claim_upload(digest, stale_after=CLAIM_STALE_SECONDS)):
            break
    try:
        # Claimed: but another caller may have finished this very upload since the look above.
        known = await _live_asset(uploader, digest)
        if known is not None:
            return UploadedImage(asset_id=known, image=image, reused=True)
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(_keep_claim, uploader, digest)
                asset_id = await _send(uploader, image, name or image.path.name)
                group.cancel_scope.cancel()
        except ExceptionGroup as failure:  # the upload's own error, not a group of one
            raise failure.exceptions[0] from None
        await uploader.ledger(
            lambda db: db.record_upload(
                content_hash=digest, asset_id=asset_id, name=name or image.path.name, size=image.size
            )
        )
        return UploadedImage(asset_id=asset_id, image=image, reused=False)
    finally:
        with anyio.CancelScope(shield=True):
            await uploader.ledger(lambda db: db.release_upload(digest))


async def _live_asset(uploader: Uploader, digest: str) -> str | None:
    """The asset this content was uploaded as, if the API still has it."""
    known = await uploader.ledger(lambda db: db.asset_for_content(digest))
    if known is None:
        return None
    try:
        await uploader.client.get_asset(known)
    except NotFoundError:
        await uploader.ledger(lambda db: db.forget_upload(digest, asset_id=known))
        return None
    return known


async def _keep_claim(uploader: Uploader, digest: str) -> None:
    """Renew the claim while the upload runs, so that only a claim whose owner died goes stale."""
    while True:
        await uploader.clock.sleep(CLAIM_RENEW_SECONDS)
        await uploader.ledger(lambda db: db.renew_upload_claim(digest))


async def _send(uploader: Uploader, image: LocalImage, file_name: str) -> str:
    if image.size < SIMPLE_UPLOAD_LIMIT:
        data = await anyio.Path(image.path).read_bytes()
        asset_id = (await uploader.client.create_asset(file_name, data, image.mime_type)).id
    else:
        asset_id = await upload_in_parts(
            uploader.client,
            image,
            file_name=file_name,
            clock=uploader.clock,
            poll_initial=uploader.poll_initial_seconds,
            poll_max=uploader.poll_max_seconds,
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
    clock: Clock,
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
    limiter = anyio.CapacityLimiter(concurrency)

    async def send(number: int, url: str) -> None:
        async with limiter:
            offset = (number - 1) * part_size
            part = FilePart(image.path, offset, min(part_size, image.size - offset))
            await client.put_part(url, part)

    try:
        async with anyio.create_task_group() as group:
            for part in upload.parts:
                group.start_soon(send, part.number, part.url)
    except ExceptionGroup as failure:
        # The first failed part says what went wrong; the others were cancelled because of it.
        raise failure.exceptions[0] from None
    await client.complete_upload(upload.id)

    deadline = clock.now() + IMPORT_TIMEOUT_SECONDS
    async for _ in polling(clock, first=poll_initial, cap=poll_max, deadline=deadline):
        state = await client.get_upload(upload.id)
        if state.status == "imported" and state.entity_id:
            return state.entity_id
        if state.status == "failed":
            raise UploadError(
                f"Scenario could not import {file_name}: {state.error_message or 'no reason given'}."
            )
    raise UploadError(
        f"Scenario did not finish importing {file_name} within {IMPORT_TIMEOUT_SECONDS:.0f} s; try again."
    )
