"""Images that are not files yet: data: URIs decoded and https URLs fetched into a call's scratch folder.

Both are then checked like any local file. URLs are checked host by host (public addresses only),
and their bodies capped and sniffed.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote_to_bytes, urlparse

import anyio

from scenario_upscale_mcp.api.errors import DownloadError, InputError
from scenario_upscale_mcp.images.public_hosts import Resolver, host_checker
from scenario_upscale_mcp.images.reading import LocalImage, check_image_file
from scenario_upscale_mcp.images.references import DATA_URI, DataReference, UrlReference
from scenario_upscale_mcp.outputs.writing import save_stream

if TYPE_CHECKING:
    from scenario_upscale_mcp.api.client import ScenarioClient
    from scenario_upscale_mcp.config import Settings


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
