"""Image inputs: what a reference names, and how it becomes a checked local file ready to upload.

A reference is an asset id (used as is), a local file (absolute, `~`, or `file://`), an `https` URL,
or a `data:` URI. Local files and data URIs are checked with no network at all; URLs are checked
host by host (public addresses only) and their bodies capped and sniffed like any file.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, unquote_to_bytes, urlparse

import anyio

from scenario_upscale_mcp.api.errors import DownloadError, InputError, MissingCredentialsError
from scenario_upscale_mcp.files import (
    LocalImage,
    check_image_file,
    check_readable,
    expand_user,
    is_asset_id,
    save_stream,
)
from scenario_upscale_mcp.uploads import UploadedImage, content_digest, upload_image
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


CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


def parse_reference(reference: str, field: str) -> Reference:
    """What a reference names. Pure: no file system, no network.

    Whatever no file or URL can be (a NUL byte in a path, a control character in a URL, a `~user`
    that does not exist) is refused here, by `field`, rather than failing later in the OS or HTTP layer.
    """
    text = reference.strip()
    lowered = text.lower()
    if is_asset_id(text):
        return AssetReference(text)
    if lowered.startswith("data:"):
        return DataReference(text)
    if lowered.startswith(("https://", "file://")) and (bad := CONTROL_CHARACTER.search(text)):
        kind = "image URL" if lowered.startswith("https://") else "file URI"
        raise InputError(
            f"{field}: the {kind} contains a control character ({bad.group()!r}); such characters must be "
            "percent-encoded, and none belongs in an image address."
        )
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
        return LocalReference(expand_user(unquote(parsed.path), field))  # a %00 is a NUL too
    path = expand_user(text, field)
    if not path.is_absolute():
        raise InputError(
            f"{field}: {reference!r} is neither an asset id (asset_...), an https URL, a data: URI nor an "
            "absolute path. Give the full path (e.g. /Users/me/art/castle.png or ~/art/castle.png): the "
            "server does not know the assistant's working folder."
        )
    return LocalReference(path)


def decode_data_uri(reference: DataReference, settings: Settings, folder: Path, field: str) -> LocalImage:
    """Write a data: URI's bytes to a file in `folder` and check it as an image (blocking).

    Both forms of RFC 2397: `data:image/png;base64,iVBOR...` and percent-encoded,
    `data:image/png,%89PNG%0D%0A...` (each %XX is one byte, other characters stand for themselves).
    Either way the bytes get the same checks as any image file.
    """
    match = DATA_URI.match(reference.text)
    if match is None:
        raise InputError(f"{field}: not a valid data: URI (expected data:image/png;base64,...).")
    payload = reference.text[match.end() :]
    cap = settings.max_input_bytes
    too_big = f"{field}: the data: URI holds more than {cap:,} bytes (SCENARIO_MAX_INPUT_BYTES)."
    # Refuse an oversized payload before decoding any of it: base64 holds 3 bytes in 4 characters,
    # percent-encoding at least 1 byte in 3.
    if (len(payload) * 3 // 4 if match["b64"] else len(payload) // 3) > cap:
        raise InputError(too_big)
    if match["b64"]:
        try:
            # Percent-escapes and line breaks may appear inside base64 too (RFC 2397; browsers accept them).
            data = base64.b64decode(re.sub(rb"\s+", b"", unquote_to_bytes(payload)), validate=True)
        except (binascii.Error, ValueError):
            raise InputError(f"{field}: the data: URI's base64 payload does not decode.") from None
    else:
        data = unquote_to_bytes(payload)
    if len(data) > cap:
        raise InputError(too_big)
    path = folder / f"{re.sub(r'[^A-Za-z0-9]+', '-', field).strip('-') or 'image'}-data"
    try:
        path.write_bytes(data)
    except OSError as exc:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)  # no half-written image left behind
        raise InputError(
            f"{field}: the data: URI's image could not be written to the temporary folder {folder} "
            f"({exc.strerror or exc}). Free some space there (or point TMPDIR at another folder) and try again."
        ) from None
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

    check_host = host_checker(resolver)
    try:
        async with client.open_public_url(reference.url, check_host=check_host) as (length, chunks):
            path, _ = await save_stream(folder, _safe_name(name), None, capped(chunks, length))
    except DownloadError as exc:  # the temporary folder is full or not writable
        raise InputError(
            f"{field}: the image at {reference.url} could not be saved to the temporary folder ({exc}) "
            "Free some space there (or point TMPDIR at another folder) and try again."
        ) from None
    return await anyio.to_thread.run_sync(
        lambda: check_image_file(path, settings, field, display=f"{field} ({reference.url})")
    )


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:80] or "image"


def scratch_folder() -> tempfile.TemporaryDirectory[str]:
    """Where fetched and decoded inputs wait for their upload; removed after the call."""
    return tempfile.TemporaryDirectory(prefix="scenario-upscale-")


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


async def check_images(state: AppState, references: dict[str, str], scratch: Path) -> dict[str, CheckedImage]:
    """Check every reference (keyed by field name) and learn its identity, in an order that fails cheaply.

    1. parse every reference (pure); 2. check local files (copied into `scratch`) and data: URIs
    (disk only); 3. require credentials; 4. fetch https URLs (public hosts only). A refusal in steps
    1-3 costs no network request at all; nothing is uploaded here.
    """
    parsed = {field: parse_reference(value, field) for field, value in references.items()}
    settings = state.settings
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
            local[field] = await fetch_url(state.client, reference, settings, state.resolver, scratch, field)
            stems[field] = Path(urlparse(reference.url).path).stem or "image"

    checked: dict[str, CheckedImage] = {}
    for field, reference in parsed.items():
        if isinstance(reference, AssetReference):
            checked[field] = CheckedImage(reference.asset_id, reference.asset_id, None)
        else:
            digest = await anyio.to_thread.run_sync(content_digest, local[field].path)
            checked[field] = CheckedImage(f"sha256:{digest}", stems[field], local[field])
    return checked


async def upload_images(state: AppState, checked: dict[str, CheckedImage]) -> dict[str, ResolvedImage]:
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
            by_content[item.identity] = await upload_image(state, item.image, digest, name=name)
        upload = by_content[item.identity]
        resolved[field] = ResolvedImage(upload.asset_id, item.stem, item.image, uploaded=not upload.reused)
    return resolved


async def resolve_images(
    state: AppState, references: dict[str, str], scratch: Path
) -> dict[str, ResolvedImage]:
    """Check every reference, then upload what needs uploading: each to an asset id."""
    return await upload_images(state, await check_images(state, references, scratch))


def _upload_name(stem: str, image: LocalImage) -> str:
    if image.path.suffix:
        return image.path.name if image.path.stem == stem else f"{stem}{image.path.suffix}"
    extension = {"image/jpeg": ".jpg"}.get(image.mime_type, "." + image.mime_type.split("/")[-1])
    return f"{stem}{extension}"
