"""Local files: which images may be read, where results may be written, and how they are written.

Reading is confined because an assistant can be talked into asking for any path: only regular files
under the allowed roots, never inside a hidden folder (~/.ssh, ~/.aws, ...), and only files that
decode as images within a size and pixel cap. Every refusal names its rule and happens before any
network request.

Writing is atomic and never overwrites: bytes stream to a hidden temporary file in the target
folder, which is then linked to a free final name, so a crash or a cut connection never leaves a
half file under the final name and an existing file is never replaced.
"""

from __future__ import annotations

import io
import os
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import anyio

from scenario_upscale_mcp.api.errors import DownloadError, InputError

if TYPE_CHECKING:
    from PIL.ImageFile import ImageFile

    from scenario_upscale_mcp.config import Settings

ASSET_ID = re.compile(r"^asset_[A-Za-z0-9_-]+$")
# POST /assets takes the file inline (a data URL) below this size; larger files go through /uploads.
SIMPLE_UPLOAD_LIMIT = 3_500_000  # inline below this (as a data URL); the multipart flow from here on
# Formats the API accepts that Pillow can decode here (SVG and HEIF need plugins this server lacks).
READABLE_FORMATS = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "AVIF": "image/avif",
    "TIFF": "image/tiff",
}
EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/avif": "avif",
    "image/tiff": "tiff",
}
WRITE_BATCH_BYTES = 4 * 1024 * 1024
PREVIEW_MAX_EDGE = 1568  # the long edge Claude's vision uses without resampling
PREVIEW_MAX_BYTES = 560_000  # base64 grows it to ~750 KB, keeping the whole result under 1 MB


@dataclass(frozen=True)
class LocalImage:
    """A local file that passed every reading rule."""

    path: Path
    size: int
    width: int
    height: int
    mime_type: str


@dataclass(frozen=True)
class SavedFile:
    path: Path
    bytes: int
    mime_type: str | None
    width: int | None
    height: int | None


def open_image(path: Path) -> ImageFile:
    """Open an image lazily (header only until pixels are asked for).

    Pillow is imported here, on first use, because start-up never needs it. Its global bomb guard is
    switched off because it would also refuse the API's own large outputs (a 16x upscale is hundreds
    of megapixels): those are trusted, and inputs are held to SCENARIO_MAX_INPUT_PIXELS by
    `check_readable` before any pixel is decoded.
    """
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None
    return Image.open(path)


def is_asset_id(reference: str) -> bool:
    return bool(ASSET_ID.match(reference))


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _hidden_part(path: Path, root: Path) -> str | None:
    """The first hidden folder or file name between `root` and `path`, if any."""
    for part in path.relative_to(root).parts:
        if part.startswith("."):
            return part
    return None


def check_readable(path: Path, settings: Settings, field: str) -> LocalImage:
    """Apply every reading rule to `path`; blocking (run it in a worker thread)."""
    try:
        # Symlinks are resolved first so a link under a root cannot point outside it.
        resolved = path.resolve(strict=True)
    except (FileNotFoundError, NotADirectoryError):
        raise InputError(f"{field}: no file at {path}.") from None
    except (OSError, RuntimeError) as exc:
        raise InputError(f"{field}: cannot resolve {path} ({exc.__class__.__name__}).") from None

    roots = [root for root in settings.read_roots if _within(resolved, root)]
    if not roots:
        allowed = os.pathsep.join(str(root) for root in settings.allowed_dirs)
        raise InputError(
            f"{field}: {resolved} is outside the folders this server may read ({allowed}). Move the "
            "image there, or add its folder to SCENARIO_ALLOWED_DIRS."
        )
    hidden_parts = [_hidden_part(resolved, root) for root in roots]
    if all(hidden_parts):
        hidden = hidden_parts[0]
        raise InputError(
            f"{field}: {resolved} is inside the hidden folder or file {hidden!r}; the server never reads "
            "hidden locations (they hold keys and settings)."
        )
    if not resolved.is_file():
        raise InputError(f"{field}: {resolved} is not a regular file.")
    return check_image_file(resolved, settings, field)


def check_image_file(path: Path, settings: Settings, field: str, *, display: str | None = None) -> LocalImage:
    """The content rules for any input image: size cap, pixel cap, a format the API takes, decodes (blocking)."""
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
            image.verify()  # checks the structure without decoding the pixels
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(
            f"{field}: {shown} does not decode as an image ({exc.__class__.__name__})."
        ) from None
    mime_type = READABLE_FORMATS.get(image_format)
    if mime_type is None:
        accepted = ", ".join(READABLE_FORMATS)
        raise InputError(f"{field}: {shown} is {image_format or 'an unknown format'}; accepted: {accepted}.")
    return LocalImage(path=path, size=size, width=width, height=height, mime_type=mime_type)


def resolve_output_dir(requested: str | None, settings: Settings) -> Path:
    """The folder results go to: the output folder, or `requested` if it is inside an allowed place."""
    if not requested:
        return settings.output_dir
    path = Path(requested).expanduser()
    if not path.is_absolute():
        path = settings.output_dir / path
    # Resolve what exists so a symlinked folder cannot lead outside the allowed places.
    resolved = path.resolve()
    roots = [root for root in [settings.output_dir, *settings.allowed_dirs] if _within(resolved, root)]
    if not roots:
        raise InputError(
            f"outputDir: {resolved} is outside the output folder ({settings.output_dir}) and the allowed "
            "folders (SCENARIO_ALLOWED_DIRS)."
        )
    if all(_hidden_part(resolved, root) is not None for root in roots):
        raise InputError(f"outputDir: {resolved} is a hidden folder; choose a visible one.")
    # Checked before anything is paid for: a file where the folder should be would fail the save.
    blocker = next((part for part in [resolved, *resolved.parents] if part.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise InputError(f"outputDir: {blocker} is a file, not a folder; choose a folder.")
    return resolved


def safe_stem(text: str, *, limit: int = 60) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._")
    return stem[:limit] or "image"


def output_file_name(
    source_stem: str, model_tag: str, factor: float | None, job_id: str, extension: str, index: int
) -> str:
    """`<source stem>_<model>_x<factor>_<short job id>[_<n>].<ext>` (the n only for a job's later outputs)."""
    factor_text = f"_x{factor:g}" if factor else ""
    short_job = safe_stem(safe_stem(job_id.removeprefix("job_"))[:8])
    suffix = f"_{index + 1}" if index else ""
    return f"{safe_stem(source_stem)}_{model_tag}{factor_text}_{short_job}{suffix}.{extension}"


async def save_stream(
    folder: Path, file_name: str, expected_bytes: int | None, chunks: AsyncIterator[bytes]
) -> tuple[Path, int]:
    """Stream `chunks` to `folder/file_name` (or a numbered variant if taken); return (path, bytes).

    A disk problem (full, read-only, a file where the folder should be) is a DownloadError saying so.
    """
    try:
        await anyio.Path(folder).mkdir(parents=True, exist_ok=True)
        temporary = folder / f".{file_name}.{secrets.token_hex(4)}.part"
        sink = await anyio.to_thread.run_sync(temporary.open, "xb")
    except OSError as exc:
        raise DownloadError(f"Cannot write in {folder}: {exc.strerror or exc}.") from None
    try:
        try:
            written = await _write_in_batches(sink, chunks)
        finally:
            with anyio.CancelScope(shield=True):  # closed even when the call is cancelled
                await anyio.to_thread.run_sync(sink.close)
        if expected_bytes is not None and written != expected_bytes:
            raise DownloadError(
                f"The download of {file_name} was cut short ({written:,} of {expected_bytes:,} bytes); "
                "nothing was saved under that name. Try again."
            )
        final = await anyio.to_thread.run_sync(_claim_free_name, temporary, folder / file_name)
    except OSError as exc:
        raise DownloadError(f"Cannot save {file_name} in {folder}: {exc.strerror or exc}.") from None
    finally:
        with anyio.CancelScope(shield=True):  # no half file left behind, even on cancellation
            await anyio.Path(temporary).unlink(missing_ok=True)
    return final, written


async def _write_in_batches(sink: BinaryIO, chunks: AsyncIterator[bytes]) -> int:
    """Write chunks to `sink`, overlapping network reads with disk writes.

    Chunks are gathered into batches of a few MiB: a worker thread writes one batch while the next
    is received, so the event loop never blocks on the disk and a thread is woken once per batch,
    not per network read. At most three batches are in memory at once.
    """
    send, receive = anyio.create_memory_object_stream[list[bytes]](1)
    written = 0

    async def write_batches() -> None:
        async with receive:
            async for batch in receive:
                await anyio.to_thread.run_sync(sink.writelines, batch)

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(write_batches)
            async with send:
                batch: list[bytes] = []
                batched = 0
                async for chunk in chunks:
                    batch.append(chunk)
                    batched += len(chunk)
                    if batched >= WRITE_BATCH_BYTES:
                        await send.send(batch)
                        written += batched
                        batch, batched = [], 0
                await send.send(batch)
                written += batched
    except ExceptionGroup as failure:
        # A failed read or write ends both sides; callers expect that error itself, not a group.
        raise failure.exceptions[0] from None
    return written


def _claim_free_name(temporary: Path, wanted: Path) -> Path:
    """Give `temporary` the first free name among wanted, wanted-1, wanted-2, ... without overwriting."""
    for number in range(10_000):
        candidate = wanted if number == 0 else wanted.with_name(f"{wanted.stem}-{number}{wanted.suffix}")
        try:
            # A hard link fails if the name exists, so two writers can never take the same name.
            os.link(temporary, candidate)
        except FileExistsError:
            continue
        except OSError:
            # Filesystems without hard links: reserve the name exclusively, then move over the reservation.
            try:
                with open(candidate, "xb"):
                    pass
            except FileExistsError:
                continue
            os.replace(temporary, candidate)
        return candidate
    raise DownloadError(f"No free file name near {wanted}.")


def describe_image(path: Path) -> tuple[str | None, int | None, int | None]:
    """(mime type, width, height) from the file's header; Nones if it does not open as an image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with open_image(path) as image:
            return Image.MIME.get(image.format or ""), image.size[0], image.size[1]
    except (UnidentifiedImageError, OSError):
        return None, None, None


def make_preview(path: Path) -> tuple[bytes, str]:
    """A small rendition for the host: long edge ≤ 1568 px, ≤ ~560 KB. Blocking (run in a thread).

    Decode no more than needed: a JPEG decodes at reduced scale (draft); any other format is first
    shrunk by a whole factor (`reduce`, a cheap box average) to just above the target, so the
    expensive Lanczos filter only ever runs on a small image.
    """
    from PIL import Image

    with open_image(path) as source:
        image: Image.Image = source
        image.draft(image.mode, (PREVIEW_MAX_EDGE, PREVIEW_MAX_EDGE))
        factor = max(image.size) // PREVIEW_MAX_EDGE
        if factor > 1:
            image = image.reduce(factor)
        image.thumbnail((PREVIEW_MAX_EDGE, PREVIEW_MAX_EDGE), Image.Resampling.LANCZOS, reducing_gap=None)
        has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
    while True:
        buffer = io.BytesIO()
        if has_alpha:
            image.save(buffer, "PNG", optimize=True)
            mime_type = "image/png"
        else:
            for quality in (85, 75, 60):
                buffer = io.BytesIO()
                image.save(buffer, "JPEG", quality=quality, optimize=True)
                if buffer.tell() <= PREVIEW_MAX_BYTES:
                    break
            mime_type = "image/jpeg"
        if buffer.tell() <= PREVIEW_MAX_BYTES or max(image.size) <= 64:
            return buffer.getvalue(), mime_type
        image = image.resize(
            (max(1, image.width * 3 // 4), max(1, image.height * 3 // 4)), Image.Resampling.LANCZOS
        )
