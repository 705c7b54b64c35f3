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

import errno
import io
import os
import re
import secrets
import stat
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import anyio

from scenario_upscale_mcp.api.errors import DownloadError, InputError

if TYPE_CHECKING:
    from PIL.Image import Image as PillowImage
    from PIL.ImageFile import ImageFile

    from scenario_upscale_mcp.config import Settings

ASSET_ID = re.compile(r"^asset_[A-Za-z0-9_-]+$")
# POST /assets takes the file inline (a data URL) below this size; larger files go through /uploads.
SIMPLE_UPLOAD_LIMIT = 3_500_000
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
# The most pixels a preview may decode (a JPEG counts at the reduced scale it decodes at). Pillow holds
# up to 4 bytes a pixel, so this bounds a preview's memory near 400 MB; it is the default of
# SCENARIO_MAX_INPUT_PIXELS too, so one figure bounds the server's largest decode. Results beyond it
# (a 16x upscale reaches a gigapixel) are saved and linked with a sentence instead of a preview.
PREVIEW_MAX_PIXELS = 100_000_000
# Pillow's WebP and AVIF readers load the whole file into memory as soon as it is opened (libwebp and
# libavif decode from memory); every other format reads its header only. Such files are described
# and previewed only up to this size, so a padded file cannot inflate memory either.
WHOLE_READ_MAX_BYTES = 256 * 1024 * 1024
# A preview converts and shrinks a huge image a band of about this many pixels at a time.
PREVIEW_BAND_PIXELS = 4_000_000


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

    Pillow is imported here, on first use, because start-up never needs it. Its global bomb guard
    (`Image.MAX_IMAGE_PIXELS`: a DecompressionBombWarning above ~89 megapixels, an error above ~179)
    is switched off on purpose, because it fires when a file is *opened*, before anything is decoded,
    and would refuse even to read the size of the API's own large outputs (a 16x upscale is hundreds
    of megapixels). The server's own caps replace it, each checked on the header before any pixel is
    decoded: SCENARIO_MAX_INPUT_PIXELS for inputs (`check_image_file`) and PREVIEW_MAX_PIXELS for
    previews (`make_preview`); `describe_image` never decodes.
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


def check_readable(path: Path, settings: Settings, field: str, folder: Path) -> LocalImage:
    """Apply every reading rule to `path` and take a private copy of it into `folder` (blocking).

    Everything after this (the image check, the content hash, the upload) reads the copy: a file
    swapped for a symlink or rewritten after being checked cannot change what is uploaded.
    """
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
    copy = _snapshot(resolved, settings, field, folder)
    return check_image_file(copy, settings, field, display=str(resolved))


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


def expand_user(text: str, field: str) -> Path:
    """`text` as a path, a leading `~` or `~user` expanded; refused by `field` if no file could have it.

    A NUL byte ends a path for the operating system (Python refuses it with a ValueError), and a
    `~user` that does not exist cannot be expanded (a RuntimeError): both are the caller's mistake,
    so both are said as such, not left to crash the call.
    """
    if "\x00" in text:
        raise InputError(f"{field}: {text!r} contains a NUL character (\\x00), which no path can hold.")
    path = Path(text)
    try:
        return path.expanduser()
    except RuntimeError:
        prefix = path.parts[0] if path.parts else text
        why = (
            f"there is no user {prefix[1:]!r} on this machine"
            if len(prefix) > 1
            else "the server's home folder is not known (HOME is not set)"
        )
        raise InputError(
            f"{field}: cannot expand {prefix!r}: {why}. Give an absolute path, or ~/... for the home folder "
            "of the user the server runs as."
        ) from None


def _check_path_length(path: Path, field: str) -> None:
    """Refuse a path the file system cannot hold: a name over NAME_MAX or the whole over PATH_MAX bytes.

    Found out only when the result is saved, that would be after paying; so it is checked first.
    """
    limits = _path_limits(path)
    for name in path.parts:
        size = len(os.fsencode(name))
        if size > limits[0]:
            raise InputError(
                f"{field}: the name {name[:24]!r}... is {size:,} bytes long; names are limited to "
                f"{limits[0]:,} bytes on this file system."
            )
    size = len(os.fsencode(str(path)))
    if size >= limits[1]:
        raise InputError(
            f"{field}: the path {str(path)[:40]!r}... is {size:,} bytes long; paths are limited to "
            f"{limits[1] - 1:,} bytes on this system."
        )


def _path_limits(path: Path) -> tuple[int, int]:
    """(NAME_MAX, PATH_MAX) of the nearest existing folder of `path`; POSIX's usual 255 and 4096 if unknown."""
    for folder in path.parents:
        try:
            return os.pathconf(folder, "PC_NAME_MAX"), os.pathconf(folder, "PC_PATH_MAX")
        except (OSError, ValueError, AttributeError):  # missing folder, unknown name, no pathconf (Windows)
            continue
    return 255, 4096


def _cannot_resolve(field: str, requested: str, exc: OSError | RuntimeError) -> InputError:
    if isinstance(exc, RuntimeError) or exc.errno == errno.ELOOP:  # Python 3.11 raises RuntimeError
        why = "it goes through a symbolic link loop"
    else:
        why = exc.strerror or type(exc).__name__
    return InputError(f"{field}: cannot use {requested!r}: {why}.")


def resolve_output_dir(requested: str | None, settings: Settings) -> Path:
    """The folder results go to: the output folder, or `requested` if it is inside an allowed place.

    Everything that would make the save fail later is refused here, before anything is paid for: a
    path no file system can hold, a symlink loop, a file where a folder should be.
    """
    if not requested:
        return settings.output_dir
    path = expand_user(requested, "outputDir")
    if not path.is_absolute():
        path = settings.output_dir / path
    _check_path_length(path, "outputDir")
    # Resolve what exists so a symlinked folder cannot lead outside the allowed places.
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError) as exc:
        raise _cannot_resolve("outputDir", requested, exc) from None
    _check_path_length(resolved, "outputDir")  # a symlink may have made it longer
    roots = [root for root in [settings.output_dir, *settings.allowed_dirs] if _within(resolved, root)]
    if not roots:
        raise InputError(
            f"outputDir: {resolved} is outside the output folder ({settings.output_dir}) and the allowed "
            "folders (SCENARIO_ALLOWED_DIRS)."
        )
    if all(_hidden_part(resolved, root) is not None for root in roots):
        raise InputError(f"outputDir: {resolved} is a hidden folder; choose a visible one.")
    # Checked before anything is paid for: a file where the folder should be would fail the save.
    try:
        blocker = next((part for part in [resolved, *resolved.parents] if part.exists()), None)
    except (OSError, RuntimeError) as exc:  # e.g. a folder on the way that cannot be searched
        raise _cannot_resolve("outputDir", requested, exc) from None
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


def _read_whole_when_opened(path: Path) -> bool:
    """Whether Pillow reads all of `path` into memory just to open it: WebP and AVIF, by their magic."""
    with path.open("rb") as file:
        head = file.read(12)
    webp = head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    avif = head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis", b"mif1", b"msf1")
    return webp or avif


def describe_image(path: Path) -> tuple[str | None, int | None, int | None]:
    """(mime type, width, height) from the file's header; Nones if it does not open as an image.

    No pixel is decoded, so any pixel count is safe here; only a WebP or AVIF file, which Pillow
    reads whole just to open it, is left undescribed beyond WHOLE_READ_MAX_BYTES.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        if path.stat().st_size > WHOLE_READ_MAX_BYTES and _read_whole_when_opened(path):
            return None, None, None
        with open_image(path) as image:
            return Image.MIME.get(image.format or ""), image.size[0], image.size[1]
    except (UnidentifiedImageError, OSError):
        return None, None, None


class PreviewUnavailable(Exception):
    """No preview of a result, to keep memory bounded; the message is a sentence for the answer."""


def make_preview(path: Path, *, max_pixels: int = PREVIEW_MAX_PIXELS) -> tuple[bytes, str]:
    """A small rendition for the host: long edge ≤ 1568 px, ≤ ~560 KB. Blocking (run in a thread).

    Memory stays bounded whatever the file (results can be huge, and a one-colour PNG of 169
    megapixels is 657 KB): the pixels a decode would hold are counted from the header first, and
    an image over `max_pixels` is not decoded at all (PreviewUnavailable). Decode no more than
    needed: a JPEG decodes at the smallest scale that still covers the preview (draft); a large
    image is then shrunk by a whole factor (`reduce`, a cheap box average) to just above the
    target, so the expensive Lanczos filter only ever runs on a small image.
    """
    from PIL import Image

    size = path.stat().st_size
    if size > WHOLE_READ_MAX_BYTES and _read_whole_when_opened(path):
        raise PreviewUnavailable(
            f"No preview: {path.name} is a {size:,}-byte WebP or AVIF file, and those are read whole to be "
            f"decoded, so they are previewed only up to {WHOLE_READ_MAX_BYTES:,} bytes; the file is saved "
            "and linked in full."
        )
    with open_image(path) as source:
        image: Image.Image = source
        width, height = image.size
        scale = PREVIEW_MAX_EDGE / max(width, height, 1)
        if scale < 1:  # only a JPEG honours this, and its size then reads as the reduced one
            image.draft(image.mode, (max(1, int(width * scale)), max(1, int(height * scale))))
        if image.width * image.height > max_pixels:
            raise PreviewUnavailable(
                f"No preview: {path.name} is {width}×{height} pixels ({width * height / 1e6:.3g} "
                f"megapixels), over the {max_pixels / 1e6:.3g}-megapixel limit for previews that keeps the "
                "server's memory bounded; the file is saved and linked in full."
            )
        has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        image = _shrunk(image, max(image.size) // PREVIEW_MAX_EDGE, "RGBA" if has_alpha else "RGB")
        image.thumbnail((PREVIEW_MAX_EDGE, PREVIEW_MAX_EDGE), Image.Resampling.LANCZOS, reducing_gap=None)
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


def _shrunk(image: PillowImage, factor: int, mode: str) -> PillowImage:
    """`image` in `mode`, box-reduced by a whole `factor`, holding one full-size copy only: the decode.

    A conversion copies the whole image, and so does reduce() of an image with alpha (it
    premultiplies a copy first), which doubled the memory of a huge preview; palette and 1-bit
    images cannot be reduced as they are at all. So those go a band of rows at a time.
    """
    from PIL import Image

    if factor <= 1:
        return image.convert(mode)
    if image.mode in ("RGB", "L"):  # reduced as they are, with no full-size copy
        return image.reduce(factor).convert(mode)
    width, height = image.size
    rows = factor * max(1, PREVIEW_BAND_PIXELS // (width * factor))  # whole blocks, so bands join exactly
    shrunk = Image.new(mode, (-(-width // factor), -(-height // factor)))
    for top in range(0, height, rows):
        band = image.crop((0, top, width, min(top + rows, height))).convert(mode)
        shrunk.paste(band.reduce(factor), (0, top // factor))
    return shrunk
