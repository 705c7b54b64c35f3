"""Which local images may be read, and the checks every input image passes before it is uploaded.

Reading is confined because an assistant can be talked into asking for any path: only regular files
under the allowed roots, never inside a hidden folder (~/.ssh, ~/.aws, ...), and only files that
decode as images within a size and pixel cap. Every refusal names its rule and happens before any
network request.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from scenario_upscale_mcp.api.errors import InputError
from scenario_upscale_mcp.image_files import open_image
from scenario_upscale_mcp.paths import hidden_part, within

if TYPE_CHECKING:
    from scenario_upscale_mcp.config import Settings
ASSET_ID = re.compile(r"^asset_[A-Za-z0-9_-]+$")


COPY_CHUNK_BYTES = 1024 * 1024


# Formats the API accepts that Pillow can decode here (SVG and HEIF need plugins this server lacks).
READABLE_FORMATS = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "AVIF": "image/avif",
    "TIFF": "image/tiff",
}


@dataclass(frozen=True)
class LocalImage:
    """A local file that passed every reading rule."""

    path: Path
    size: int
    width: int
    height: int
    mime_type: str


def is_asset_id(reference: str) -> bool:
    return bool(ASSET_ID.match(reference))


def check_readable(path: Path, settings: Settings, field: str, folder: Path) -> LocalImage:
    """Apply every reading rule to `path` and take a private copy of it into `folder` (blocking).

    Everything after this (the image check, the content hash, the upload) reads the copy: a file
    swapped for a symlink or rewritten after being checked cannot change what is uploaded.
    """
    resolved = readable_path(path, settings, field)
    copy = _snapshot(resolved, settings, field, folder)
    return check_image_file(copy, settings, field, display=str(resolved))


def readable_path(path: Path, settings: Settings, field: str, *, kind: str = "file") -> Path:
    """`path` resolved, if the server may read it: under an allowed root, not inside a hidden folder.

    Only the path's rules: opening it (never through a symlink), its size and its content are the
    reader's to check. `kind` ("file", or "folder" for a batch's folder) words the refusals.
    """
    try:
        # Symlinks are resolved first so a link under a root cannot point outside it.
        resolved = path.resolve(strict=True)
    except (FileNotFoundError, NotADirectoryError):
        raise InputError(f"{field}: no {kind} at {path}.") from None
    except (OSError, RuntimeError) as exc:
        raise InputError(f"{field}: cannot resolve {path} ({exc.__class__.__name__}).") from None

    roots = [root for root in settings.read_roots if within(resolved, root)]
    if not roots:
        allowed = os.pathsep.join(str(root) for root in settings.allowed_dirs)
        raise InputError(
            f"{field}: {resolved} is outside the folders this server may read ({allowed}). Move "
            + (
                "the image there, or add its folder"
                if kind == "file"
                else "the images there, or add the folder"
            )
            + " to SCENARIO_ALLOWED_DIRS."
        )
    hidden_parts = [hidden_part(resolved, root) for root in roots]
    if all(hidden_parts):
        hidden = hidden_parts[0]
        raise InputError(
            f"{field}: {resolved} is inside the hidden folder or file {hidden!r}; the server never reads "
            "hidden locations (they hold keys and settings)."
        )
    return resolved


def _snapshot(path: Path, settings: Settings, field: str, folder: Path) -> Path:
    """Copy the regular file at `path` (opened once, never through a symlink) into its own sub-folder
    of `folder`, under the same name, within the size cap."""
    flags = (
        os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    )
    try:
        descriptor = os.open(path, flags)
    except OSError as exc:
        # ELOOP: the path became a symlink after it was resolved (the check and the open race).
        raise InputError(f"{field}: cannot open {path} ({exc.strerror or type(exc).__name__}).") from None
    with os.fdopen(descriptor, "rb") as source:
        status = os.fstat(source.fileno())
        if not stat.S_ISREG(status.st_mode):
            raise InputError(f"{field}: {path} is not a regular file.")
        if status.st_size > settings.max_input_bytes:
            raise _too_large(field, str(path), status.st_size, settings)
        target_folder = Path(tempfile.mkdtemp(prefix="input-", dir=folder))
        target = target_folder / path.name
        copied = 0
        try:
            with target.open("xb") as sink:
                while chunk := source.read(COPY_CHUNK_BYTES):
                    copied += len(chunk)
                    if copied > settings.max_input_bytes:  # it grew while being read
                        raise _too_large(field, str(path), copied, settings)
                    sink.write(chunk)
        except OSError as exc:
            raise InputError(
                f"{field}: could not copy {path} to a temporary folder to check it ({exc.strerror or exc})."
            ) from None
    return target


def _too_large(field: str, shown: str, size: int, settings: Settings) -> InputError:
    return InputError(
        f"{field}: {shown} is {size:,} bytes; the limit is {settings.max_input_bytes:,} bytes "
        "(SCENARIO_MAX_INPUT_BYTES)."
    )


def check_image_file(path: Path, settings: Settings, field: str, *, display: str | None = None) -> LocalImage:
    """The content rules for any input image: size cap, pixel cap, a format the API takes, and pixels
    that decode (blocking: the decode of a large image takes a moment; run it in a worker thread)."""
    from PIL import UnidentifiedImageError

    shown = display or str(path)
    size = path.stat().st_size
    if size > settings.max_input_bytes:
        raise InputError(
            f"{field}: {shown} is {size:,} bytes; the limit is {settings.max_input_bytes:,} bytes "
            "(SCENARIO_MAX_INPUT_BYTES)."
        )
    try:
        with open_image(path) as image:
            image_format = image.format or ""
            width, height = image.size
            if width * height > settings.max_input_pixels:
                raise InputError(
                    f"{field}: {shown} is {width}×{height} pixels, over the {settings.max_input_pixels:,}-pixel "
                    "limit (SCENARIO_MAX_INPUT_PIXELS); refused as a possible decompression bomb."
                )
            image.verify()  # the structure (for PNG, every chunk's CRC), not the pixels
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(
            f"{field}: {shown} does not decode as an image ({exc.__class__.__name__})."
        ) from None
    mime_type = READABLE_FORMATS.get(image_format)
    if mime_type is None:
        accepted = ", ".join(READABLE_FORMATS)
        raise InputError(f"{field}: {shown} is {image_format or 'an unknown format'}; accepted: {accepted}.")
    # verify() leaves the pixel stream unread: a PNG with sound CRCs can still hold a broken deflate
    # stream, an unknown row filter or rows cut short, which the API would accept, bill, and then fail
    # on. So the pixels are decoded once, here, after the pixel cap has bounded what that costs (Pillow
    # holds at most 4 bytes a pixel). PNG and the others decode in full, since damage can be anywhere;
    # a JPEG decodes at 1/8 scale (draft), which still reads every coefficient of the stream.
    try:
        with open_image(path) as image:  # verify() leaves an image unusable: open it again
            image.draft(None, (1, 1))
            image.load()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        reason = next(iter(str(exc).splitlines()), "")[:120] or exc.__class__.__name__
        raise InputError(
            f"{field}: {shown} does not decode as an image: its {image_format} pixel data is damaged or "
            f"cut short ({reason}). Nothing was uploaded."
        ) from None
    return LocalImage(path=path, size=size, width=width, height=height, mime_type=mime_type)
