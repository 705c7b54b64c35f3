"""What a saved result looks like: its type and size from the header, and a preview small enough for hosts.

Headers are read with Pillow. The pixels of an image that must shrink are decoded with libvips
(pyvips[binary], a self-contained wheel) where it loads: it streams rows through the shrink, so a
preview costs about the decode alone and a few strips of memory; Pillow is the fallback, and does
small images and formats Scenario does not deliver.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from scenario_upscale_mcp.image_files import VIPS_FORMATS, load_vips, open_image

if TYPE_CHECKING:
    from PIL.Image import Image as PillowImage

logger = logging.getLogger(__name__)

PREVIEW_MAX_EDGE = 1568  # the long edge Claude's vision uses without resampling


PREVIEW_MAX_BYTES = 560_000  # base64 grows it to ~750 KB, keeping the whole result under 1 MB


# The most pixels a preview may decode (a JPEG counts at the reduced scale it decodes at). libvips
# streams them in bounded memory, but Pillow, the fallback, holds up to 4 bytes a pixel, so this
# bounds a preview's memory near 400 MB whichever decodes (and the time of a decode either way); it is
# the default of SCENARIO_MAX_INPUT_PIXELS too, so one figure bounds the server's largest decode.
# Results beyond it (a 16x upscale reaches a gigapixel) are saved and linked with a sentence instead.
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


Library = Literal["auto", "pillow"]  # auto: libvips where it loads and the image must shrink


def make_preview(
    path: Path, *, max_pixels: int = PREVIEW_MAX_PIXELS, library: Library = "auto"
) -> tuple[bytes, str]:
    """A small rendition for the host: long edge ≤ 1568 px, ≤ ~560 KB. Blocking (run in a thread).

    The pixels come from `decode_reduced` (which bounds memory and refuses, with PreviewUnavailable,
    an image over `max_pixels`); an image with transparency is sent as a PNG, any other as a JPEG,
    its quality and then its size lowered until it fits the answer.
    """
    from PIL import Image

    image = decode_reduced(path, PREVIEW_MAX_EDGE, max_pixels=max_pixels, library=library)
    has_alpha = image.mode == "RGBA"
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


def decode_reduced(
    path: Path,
    max_edge: int,
    *,
    region: tuple[int, int, int, int] | None = None,
    max_pixels: int = PREVIEW_MAX_PIXELS,
    library: Library = "auto",
) -> PillowImage:
    """The image in `path` (its first frame), or the `region` of it (left, top, right, bottom in its
    pixels), shrunk to fit `max_edge` (never enlarged): RGBA if it has transparency, else RGB.
    Blocking (run in a thread).

    Memory stays bounded whatever the file (results can be huge, and a one-colour PNG of 169
    megapixels is 657 KB): the pixels a decode would hold are counted from the header first, and an
    image over `max_pixels` is not decoded at all (PreviewUnavailable). Decode no more than needed:
    a JPEG decodes at the smallest scale that still covers the result (shrink-on-load). An image
    that must shrink goes through libvips (pyvips) when it loads, which decodes as a stream of rows
    and shrinks them as they come, on another core, so memory stays a few strips and the time stays
    close to the decode alone; with `library="pillow"`, when pyvips is not installed or does not
    load, for other formats, or when libvips refuses the file, Pillow decodes the whole image, then
    shrinks it by a whole factor (a cheap box average) before the Lanczos filter. Raises what Pillow
    raises for a file that is not an image it can read (OSError, ValueError, ...).
    """
    source = _inspect(path, max_edge, region, max_pixels)
    vips = load_vips() if library == "auto" and source.format in VIPS_FORMATS and source.shrinks else None
    if vips is not None:
        try:
            return _reduced_with_vips(vips, path, source)
        except vips.Error as exc:
            logger.info("libvips could not decode %s, Pillow will: %s", path.name, " ".join(str(exc).split()))
    return _reduced_with_pillow(path, source)


@dataclass(frozen=True)
class _Source:
    """What the header says about an image to reduce, and the plan for it."""

    format: str | None
    width: int
    height: int
    box: tuple[int, int, int, int]  # the region to show, in the image's pixels
    draft: tuple[int, int] | None  # the size asked of Pillow's draft(), for a JPEG decoded at reduced scale
    shrink: int  # the scale a JPEG is decoded at (1, 2, 4 or 8); 1 for any other format
    has_alpha: bool
    target: tuple[int, int]  # the size of the result

    @property
    def shrinks(self) -> bool:
        return self.target != (self.box[2] - self.box[0], self.box[3] - self.box[1])

    @property
    def decoded_box(self) -> tuple[int, int, int, int]:
        """`box` in the pixels of the (JPEG: reduced) decode."""
        left, top, right, bottom = self.box
        scale = self.shrink
        return left // scale, top // scale, -(-right // scale), -(-bottom // scale)


def _inspect(path: Path, max_edge: int, region: tuple[int, int, int, int] | None, max_pixels: int) -> _Source:
    """Read the header and check the caps; no pixel is decoded."""
    size = path.stat().st_size
    if size > WHOLE_READ_MAX_BYTES and _read_whole_when_opened(path):
        raise PreviewUnavailable(
            f"No preview: {path.name} is a {size:,}-byte WebP or AVIF file, and those are read whole to be "
            f"decoded, so they are previewed only up to {WHOLE_READ_MAX_BYTES:,} bytes; the file is saved "
            "and linked in full."
        )
    with open_image(path) as image:
        width, height = image.size
        box = (0, 0, width, height) if region is None else region
        left, top, right, bottom = box
        if not (0 <= left < right <= width and 0 <= top < bottom <= height):
            raise ValueError(f"the region {box} is not inside the {width}×{height} image {path.name}")
        target = _fitted((right - left, bottom - top), max_edge)
        scale = max_edge / max(right - left, bottom - top)
        draft, shrink = None, 1
        if scale < 1:  # only a JPEG honours this, and its size then reads as the reduced one
            draft = (max(1, int(width * scale)), max(1, int(height * scale)))
            drafted = image.draft(image.mode, draft)
            if drafted is not None:
                shrink = round(width / drafted[1][2])
        if image.width * image.height > max_pixels:
            raise PreviewUnavailable(
                f"No preview: {path.name} is {width}×{height} pixels ({width * height / 1e6:.3g} "
                f"megapixels), over the {max_pixels / 1e6:.3g}-megapixel limit for previews that keeps the "
                "server's memory bounded; the file is saved and linked in full."
            )
        has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        return _Source(image.format, width, height, box, draft, shrink, has_alpha, target)


def _fitted(size: tuple[int, int], max_edge: int) -> tuple[int, int]:
    """`size` shrunk to fit a `max_edge` square, its aspect kept as Pillow's thumbnail() keeps it."""
    width, height = size
    if max(width, height) <= max_edge:
        return size
    aspect = width / height
    if width >= height:
        return max_edge, _round_aspect(
            max_edge / aspect, lambda n: 0 if n == 0 else abs(aspect - max_edge / n)
        )
    return _round_aspect(max_edge * aspect, lambda n: abs(aspect - n / max_edge)), max_edge


def _round_aspect(number: float, key: Callable[[int], float]) -> int:
    return max(min(math.floor(number), math.ceil(number), key=key), 1)


def _reduced_with_vips(vips: Any, path: Path, source: _Source) -> PillowImage:
    """libvips: rows stream from the decoder through a box shrink and the Lanczos filter (sequential
    access, so memory holds a few strips), in a pipeline that runs beside the decode."""
    from PIL import Image

    if source.shrink > 1:  # shrink-on-load: libjpeg decodes at 1/2, 1/4 or 1/8 scale
        image = vips.Image.jpegload(str(path), shrink=source.shrink, access="sequential", fail_on="error")
    else:
        image = vips.Image.new_from_file(str(path), access="sequential", fail_on="error")
    if source.box != (0, 0, source.width, source.height):
        left, top, right, bottom = source.decoded_box
        image = image.crop(left, top, min(right, image.width) - left, min(bottom, image.height) - top)
    premultiplied = image.hasalpha()
    if premultiplied:  # so that colours under transparent pixels do not bleed into the average
        image = image.premultiply()
    factor = max(image.width, image.height) // max(source.target)
    if factor > 1:
        image = image.shrink(factor, factor, ceil=True)
    width, height = source.target
    if (image.width, image.height) != source.target:
        image = image.resize(width / image.width, vscale=height / image.height, kernel="lanczos3")
    if premultiplied:
        image = image.unpremultiply()
    if image.interpretation != "srgb":  # grey, 16-bit, CMYK
        image = image.colourspace("srgb")
    if image.format != "uchar":
        image = image.cast("uchar")
    if source.has_alpha and not image.hasalpha():
        image = image.bandjoin(255)
    elif image.hasalpha() and not source.has_alpha:  # libvips' GIF loader always adds one
        image = image.extract_band(0, n=3)
    if image.bands not in (3, 4):
        raise vips.Error(f"{image.bands} bands after conversion to sRGB")
    mode = "RGBA" if image.bands == 4 else "RGB"
    return Image.frombytes(mode, (image.width, image.height), image.write_to_memory())


def _reduced_with_pillow(path: Path, source: _Source) -> PillowImage:
    """Pillow: the whole (JPEG: reduced) image decoded at once, then shrunk a band at a time."""
    from PIL import Image

    with open_image(path) as opened:
        image: Image.Image = opened
        if source.draft is not None:
            image.draft(image.mode, source.draft)
        if source.box != (0, 0, source.width, source.height):
            image = image.crop(source.decoded_box)
        mode = "RGBA" if source.has_alpha else "RGB"
        image = _shrunk(image, max(image.size) // max(source.target), mode)
        if image.size != source.target:
            image = image.resize(source.target, Image.Resampling.LANCZOS)
        return image


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
