"""Image inputs: what a reference names, and how it becomes a checked local file ready to upload.

A reference is an asset id (used as is), a local file (absolute, `~`, or `file://`), an `https` URL,
or a `data:` URI. Local files and data URIs are checked with no network at all; URLs are checked
host by host (public addresses only) and their bodies capped and sniffed like any file.
"""

from __future__ import annotations

import base64
import binascii
import re
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

import anyio

from scenario_upscale_mcp.api.errors import InputError, MissingCredentialsError
from scenario_upscale_mcp.files import LocalImage, check_image_file, check_readable, is_asset_id, save_stream
from scenario_upscale_mcp.uploads import UploadedImage, upload_image
from scenario_upscale_mcp.urls import Resolver, host_checker

if TYPE_CHECKING:
    from scenario_upscale_mcp.api.client import ScenarioClient
    from scenario_upscale_mcp.config import Settings
    from scenario_upscale_mcp.state import AppState

DATA_URI = re.compile(
    r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w-]+=[\w.+-]+)*)(?P<b64>;base64)?,", re.I
)


@dataclass(frozen=True)
class AssetReference:
    asset_id: str


@dataclass(frozen=True)
class LocalReference:
    path: Path


@dataclass(frozen=True)
class UrlReference:
    url: str


@dataclass(frozen=True)
class DataReference:
    text: str


Reference = AssetReference | LocalReference | UrlReference | DataReference


def parse_reference(reference: str, field: str) -> Reference:
    """What a reference names. Pure: no file system, no network."""
    text = reference.strip()
    lowered = text.lower()
    if is_asset_id(text):
        return AssetReference(text)
    if lowered.startswith("data:"):
        return DataReference(text)
    if lowered.startswith("https://"):
        return UrlReference(text)
    if lowered.startswith("http://"):
        raise InputError(f"{field}: only https:// URLs are accepted, not http:// ({reference}).")
    if lowered.startswith("file://"):
        parsed = urlparse(text)
        if parsed.netloc not in ("", "localhost"):
            raise InputError(
                f"{field}: file URIs must name a local file (file:///...), not host {parsed.netloc!r}."
            )
        return LocalReference(Path(unquote(parsed.path)))
    path = Path(text).expanduser()
    if not path.is_absolute():
        raise InputError(
            f"{field}: {reference!r} is neither an asset id (asset_...), an https URL, a data: URI nor an "
            "absolute path. Give the full path (e.g. /Users/me/art/castle.png or ~/art/castle.png): the "
            "server does not know the assistant's working folder."
        )
    return LocalReference(path)


def decode_data_uri(reference: DataReference, settings: Settings, folder: Path, field: str) -> LocalImage:
    """Write a data: URI's bytes to a file in `folder` and check it as an image (blocking)."""
    match = DATA_URI.match(reference.text)
    if match is None:
        raise InputError(f"{field}: not a valid data: URI (expected data:image/png;base64,...).")
    payload = reference.text[match.end() :]
    # base64 grows data by 4/3: refuse an oversized payload before decoding any of it.
    if len(payload) * 3 // 4 > settings.max_input_bytes:
        raise InputError(
            f"{field}: the data: URI holds more than {settings.max_input_bytes:,} bytes (SCENARIO_MAX_INPUT_BYTES)."
        )
    try:
        data = (
            base64.b64decode(payload, validate=True) if match["b64"] else unquote(payload).encode("latin-1")
        )
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise InputError(f"{field}: the data: URI's base64 payload does not decode.") from None
    path = folder / f"{re.sub(r'[^A-Za-z0-9]+', '-', field).strip('-') or 'image'}-data"
    path.write_bytes(data)
    return check_image_file(path, settings, field, display=f"{field} (data: URI)")


async def fetch_url(
    client: ScenarioClient,
    reference: UrlReference,
    settings: Settings,
    resolver: Resolver,
    folder: Path,
    field: str,
) -> LocalImage:
    """Fetch an https image (public hosts only, size-capped) into `folder`, then check it as an image."""
    name = Path(urlparse(reference.url).path).name or "image"
    cap = settings.max_input_bytes

    async def capped(chunks: AsyncIterator[bytes], length: int | None) -> AsyncIterator[bytes]:
        if length is not None and length > cap:
            raise InputError(
                f"{field}: the image at {reference.url} is {length:,} bytes; the limit is {cap:,}."
            )
        received = 0
        async for chunk in chunks:
            received += len(chunk)
            if received > cap:
                raise InputError(f"{field}: the image at {reference.url} is over the {cap:,}-byte limit.")
            yield chunk

    async with client.open_public_url(reference.url, check_host=host_checker(resolver)) as (length, chunks):
        path, _ = await save_stream(folder, _safe_name(name), None, capped(chunks, length))
    return await anyio.to_thread.run_sync(
        lambda: check_image_file(path, settings, field, display=f"{field} ({reference.url})")
    )


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:80] or "image"


def scratch_folder() -> tempfile.TemporaryDirectory[str]:
    """Where fetched and decoded inputs wait for their upload; removed after the call."""
    return tempfile.TemporaryDirectory(prefix="scenario-upscale-")


@dataclass(frozen=True)
class ResolvedImage:
    asset_id: str
    stem: str  # what output files are named after
    image: LocalImage | None  # None for an asset id given directly
    uploaded: bool  # False when the id was given, or the same content had been uploaded before


async def resolve_images(
    state: AppState, references: dict[str, str], scratch: Path
) -> dict[str, ResolvedImage]:
    """Turn every reference (keyed by field name) into an asset id, in an order that fails cheaply.

    1. parse every reference (pure); 2. check local files and data: URIs (disk only); 3. require
    credentials; 4. fetch https URLs (public hosts only); 5. upload each distinct content once.
    A refusal in steps 1-3 therefore costs no network request at all.
    """
    parsed = {field: parse_reference(value, field) for field, value in references.items()}
    settings = state.settings
    local: dict[str, LocalImage] = {}
    stems: dict[str, str] = {}
    for field, reference in parsed.items():
        if isinstance(reference, LocalReference):
            local[field] = await anyio.to_thread.run_sync(check_readable, reference.path, settings, field)
            stems[field] = local[field].path.stem
        elif isinstance(reference, DataReference):
            local[field] = await anyio.to_thread.run_sync(
                decode_data_uri, reference, settings, scratch, field
            )
            stems[field] = "image"
    if settings.credentials() is None:
        raise MissingCredentialsError
    for field, reference in parsed.items():
        if isinstance(reference, UrlReference):
            local[field] = await fetch_url(state.client, reference, settings, state.resolver, scratch, field)
            stems[field] = Path(urlparse(reference.url).path).stem or "image"

    resolved: dict[str, ResolvedImage] = {}
    by_path: dict[Path, UploadedImage] = {}
    for field, reference in parsed.items():
        if isinstance(reference, AssetReference):
            resolved[field] = ResolvedImage(reference.asset_id, reference.asset_id, None, uploaded=False)
            continue
        image = local[field]
        if image.path not in by_path:
            by_path[image.path] = await upload_image(state, image, name=_upload_name(stems[field], image))
        upload = by_path[image.path]
        resolved[field] = ResolvedImage(upload.asset_id, stems[field], image, uploaded=not upload.reused)
    return resolved


def _upload_name(stem: str, image: LocalImage) -> str:
    if image.path.suffix:
        return image.path.name if image.path.stem == stem else f"{stem}{image.path.suffix}"
    extension = {"image/jpeg": ".jpg"}.get(image.mime_type, "." + image.mime_type.split("/")[-1])
    return f"{stem}{extension}"
