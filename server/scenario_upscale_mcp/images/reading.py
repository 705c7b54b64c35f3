"""Which local images may be read, and the checks every input image passes before it is uploaded.

Reading is confined because an assistant can be talked into asking for any path: only regular files
under the allowed roots, never inside a hidden folder (~/.ssh, ~/.aws, ...), and only files that
decode as images within a size and pixel cap. Every refusal names its rule and happens before any
network request.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import logging
import os
import re
import stat
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from scenario_upscale_mcp.api.errors import InputError
from scenario_upscale_mcp.image_files import VIPS_FORMATS, load_vips, open_image
from scenario_upscale_mcp.paths import hidden_part, within

if TYPE_CHECKING:
    from scenario_upscale_mcp.config import Settings

logger = logging.getLogger(__name__)

ASSET_ID = re.compile(r"^asset_[A-Za-z0-9_-]+$")


COPY_CHUNK_BYTES = 1024 * 1024
KERNEL_COPY_BYTES = 64 * 1024 * 1024
# From these sizes on, the checks use what pays for its set-up on a large image only.
VIPS_MIN_PIXELS = 4_000_000  # the pixel check decodes through libvips
PARALLEL_HASH_BYTES = 4 * 1024 * 1024  # the content hash runs in a thread beside the decode
# copy_file_range's answers for "not here": no such call, not between these files or file systems.
KERNEL_COPY_REFUSALS = {errno.ENOSYS, errno.EXDEV, errno.EINVAL, errno.EOPNOTSUPP}


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
    digest: str  # the SHA-256 of its bytes: the content's identity


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
        try:
            with target.open("xb") as sink:
                # At most one byte past the cap is copied: enough to tell a file that grew while read.
                copied = _copy_up_to(source, sink, settings.max_input_bytes + 1)
        except OSError as exc:
            raise InputError(
                f"{field}: could not copy {path} to a temporary folder to check it ({exc.strerror or exc})."
            ) from None
        if copied > settings.max_input_bytes:
            raise InputError(
                f"{field}: {path} grew past the limit of {settings.max_input_bytes:,} bytes while it was "
                "being read (SCENARIO_MAX_INPUT_BYTES)."
            )
    return target


def _copy_up_to(source: BinaryIO, sink: BinaryIO, limit: int) -> int:
    """Copy `source` from its position into `sink`, at most `limit` bytes; return how many.

    In the kernel (`copy_file_range`) where it works: a 100 MB file copies in a third of the time the
    bytes take through Python. Where it is refused, or copies nothing at first (some file systems
    fail that way silently), a plain loop does the copy, as CPython's `shutil` does.
    """
    copied = 0
    in_kernel = hasattr(os, "copy_file_range")
    while copied < limit:
        want = min(limit - copied, KERNEL_COPY_BYTES if in_kernel else COPY_CHUNK_BYTES)
        if in_kernel:
            try:
                count = os.copy_file_range(source.fileno(), sink.fileno(), want)
            except OSError as exc:
                if copied or exc.errno not in KERNEL_COPY_REFUSALS:
                    raise
                count = 0
            if count == 0 and copied == 0:
                in_kernel = False
                continue
        else:
            count = sink.write(source.read(want))
        if count == 0:
            break
        copied += count
    return copied


def _decode_every_pixel(path: Path, image_format: str, pixel_count: int) -> None:
    """Decode the whole pixel stream once, keeping none of it; raise Pillow's error if it is damaged.

    Large PNG, JPEG and WebP images go through libvips where it loads: it decodes a stream of rows in
    bounded memory at about twice Pillow's speed (a 100 MB PNG: 0.13 s and a few MiB, against 0.3 s
    and 130 MiB). A file libvips refuses is decoded by Pillow as well, and refused only if Pillow
    fails too, so no image Pillow reads is turned away. Pillow decodes small images (libvips' set-up
    would cost more than it saves) and the other formats, holding at most 4 bytes a pixel. A JPEG
    decodes at 1/8 scale either way, which still reads every coefficient.
    """
    large = pixel_count >= VIPS_MIN_PIXELS
    vips = load_vips() if large and image_format in VIPS_FORMATS else None
    if vips is not None:
        name = str(path)
        try:
            if image_format == "JPEG":
                pixels = vips.Image.jpegload(name, shrink=8, access="sequential", fail_on="error")
            else:
                load = vips.Image.pngload if image_format == "PNG" else vips.Image.webpload
                pixels = load(name, access="sequential", fail_on="error")
            pixels.avg()  # pulls every row through the decoder
        except vips.Error as exc:
            logger.info(
                "libvips could not decode %s, Pillow will try: %s", path.name, " ".join(str(exc).split())
            )
        else:
            return
    with open_image(path) as image:
        image.draft(None, (1, 1))
        image.load()


def _too_large(field: str, shown: str, size: int, settings: Settings) -> InputError:
    return InputError(
        f"{field}: {shown} is {size:,} bytes; the limit is {settings.max_input_bytes:,} bytes "
        "(SCENARIO_MAX_INPUT_BYTES)."
    )


def check_image_file(path: Path, settings: Settings, field: str, *, display: str | None = None) -> LocalImage:
    """The content rules for any input image: size cap, pixel cap, a format the API takes, and pixels
    that decode; and its content hash (blocking: the decode of a large image takes a moment; run it
    in a worker thread).

    The hash of a large file is computed in a thread of its own meanwhile: both release the GIL, so
    on two cores a 100 MB image is hashed for free while it decodes.
    """
    shown = display or str(path)
    if path.stat().st_size < PARALLEL_HASH_BYTES:  # a thread would cost more than it saves
        checked = _check_content(path, settings, field, shown)
        return dataclasses.replace(checked, digest=content_digest(path))
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="content-hash") as hasher:
        digest = hasher.submit(content_digest, path)
        checked = _check_content(path, settings, field, shown)
        return dataclasses.replace(checked, digest=digest.result())


def content_digest(path: Path) -> str:
    """The SHA-256 of a file's bytes: the content's identity (blocking)."""
    digest = hashlib.sha256()
    buffer = memoryview(bytearray(COPY_CHUNK_BYTES))
    with path.open("rb", buffering=0) as file:
        while count := file.readinto(buffer):
            digest.update(buffer[:count])
    return digest.hexdigest()


def _check_content(path: Path, settings: Settings, field: str, shown: str) -> LocalImage:
    """`check_image_file` without the hash (the returned image's `digest` is empty)."""
    from PIL import UnidentifiedImageError

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
    # on. So the pixels are decoded once, here, after the pixel cap has bounded what that costs.
    try:
        _decode_every_pixel(path, image_format, width * height)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        reason = next(iter(str(exc).splitlines()), "")[:120] or exc.__class__.__name__
        raise InputError(
            f"{field}: {shown} does not decode as an image: its {image_format} pixel data is damaged or "
            f"cut short ({reason}). Nothing was uploaded."
        ) from None
    return LocalImage(path=path, size=size, width=width, height=height, mime_type=mime_type, digest="")
