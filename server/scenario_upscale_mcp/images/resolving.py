"""From image references to asset ids: every input checked first (its identity known), then uploaded once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import anyio

from scenario_upscale_mcp.api.errors import MissingCredentialsError
from scenario_upscale_mcp.images.reading import LocalImage, check_readable
from scenario_upscale_mcp.images.references import (
    AssetReference,
    DataReference,
    LocalReference,
    UrlReference,
    parse_reference,
)
from scenario_upscale_mcp.images.sources import decode_data_uri
from scenario_upscale_mcp.images.uploads import UploadedImage, Uploader, upload_image

if TYPE_CHECKING:
    from scenario_upscale_mcp.config import Settings

UrlFetcher = Callable[[UrlReference, Path, str], Awaitable[LocalImage]]
"""How an https input is fetched into a folder and checked as an image: (reference, folder, field) → the
image. In the server, `images.sources.fetch_url` over the API client, public hosts only."""


@dataclass(frozen=True)
class CheckedImage:
    """An image input that passed every check; its identity is known before anything is uploaded."""

    identity: str  # the asset id given, or "sha256:<hex>" of the content
    stem: str  # what output files are named after
    image: LocalImage | None  # None for an asset id given directly (then nothing to upload)


@dataclass(frozen=True)
class ResolvedImage:
    asset_id: str
    stem: str  # what output files are named after
    image: LocalImage | None  # None for an asset id given directly
    uploaded: bool  # False when the id was given, or the same content had been uploaded before


async def check_images(
    references: dict[str, str], scratch: Path, *, settings: Settings, fetch_url: UrlFetcher
) -> dict[str, CheckedImage]:
    """Check every reference (keyed by field name) and learn its identity, in an order that fails cheaply.

    1. parse every reference (pure); 2. check local files (copied into `scratch`) and data: URIs
    (disk only); 3. require credentials; 4. fetch https URLs (public hosts only). A refusal in steps
    1-3 costs no network request at all; nothing is uploaded here.
    """
    parsed = {field: parse_reference(value, field) for field, value in references.items()}
    local: dict[str, LocalImage] = {}
    stems: dict[str, str] = {}
    for field, reference in parsed.items():
        if isinstance(reference, LocalReference):
            local[field] = await anyio.to_thread.run_sync(
                check_readable, reference.path, settings, field, scratch
            )
            stems[field] = reference.path.stem
        elif isinstance(reference, DataReference):
            local[field] = await anyio.to_thread.run_sync(
                decode_data_uri, reference, settings, scratch, field
            )
            stems[field] = "image"
    if settings.credentials() is None:
        raise MissingCredentialsError
    for field, reference in parsed.items():
        if isinstance(reference, UrlReference):
            local[field] = await fetch_url(reference, scratch, field)
            stems[field] = Path(urlparse(reference.url).path).stem or "image"

    checked: dict[str, CheckedImage] = {}
    for field, reference in parsed.items():
        if isinstance(reference, AssetReference):
            checked[field] = CheckedImage(reference.asset_id, reference.asset_id, None)
        else:
            checked[field] = CheckedImage(f"sha256:{local[field].digest}", stems[field], local[field])
    return checked


async def upload_images(uploader: Uploader, checked: dict[str, CheckedImage]) -> dict[str, ResolvedImage]:
    """Turn every checked image into an asset id, uploading each distinct content once."""
    resolved: dict[str, ResolvedImage] = {}
    by_content: dict[str, UploadedImage] = {}
    for field, item in checked.items():
        if item.image is None:
            resolved[field] = ResolvedImage(item.identity, item.stem, None, uploaded=False)
            continue
        if item.identity not in by_content:
            digest = item.identity.removeprefix("sha256:")
            name = _upload_name(item.stem, item.image)
            by_content[item.identity] = await upload_image(uploader, item.image, digest, name=name)
        upload = by_content[item.identity]
        resolved[field] = ResolvedImage(upload.asset_id, item.stem, item.image, uploaded=not upload.reused)
    return resolved


def _upload_name(stem: str, image: LocalImage) -> str:
    if image.path.suffix:
        return image.path.name if image.path.stem == stem else f"{stem}{image.path.suffix}"
    extension = {"image/jpeg": ".jpg"}.get(image.mime_type, "." + image.mime_type.split("/")[-1])
    return f"{stem}{extension}"
