"""What a saved result looks like: its type and size from the header, and a preview small enough for hosts."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

from scenario_upscale_mcp.image_files import open_image

if TYPE_CHECKING:
    from PIL.Image import Image as PillowImage

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
