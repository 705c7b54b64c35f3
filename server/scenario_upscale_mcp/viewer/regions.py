"""Regions of images for the viewer: a rectangle of a large image, cut out and scaled down to a small
answer, cheaply enough to follow a loupe.

A 16x result can be 100 megapixels; the viewer never moves it whole. `render_region` decodes an image
once (a JPEG at the smallest scale that still covers the answer: draft), keeps the few images decoded
last for a little while (`DecodedImages`: least recently used first out, bounded by pixels, emptied
after a minute unused), and cuts every rectangle asked for from memory. The pixels held at once stay
within PREVIEW_MAX_PIXELS, the figure that bounds previews: one figure bounds the server's largest decode.
"""

from __future__ import annotations

import io
import os
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from scenario_upscale_mcp.api.errors import InputError
from scenario_upscale_mcp.image_files import open_image
from scenario_upscale_mcp.images.reading import READABLE_FORMATS
from scenario_upscale_mcp.outputs.previews import PREVIEW_MAX_PIXELS

if TYPE_CHECKING:
    from PIL.Image import Image as PillowImage

ANSWER_MAX_BYTES = 500_000  # an answer's image: ~670 KB once base64, within the 1 MB hosts accept
EXACT_MAX_PIXELS = 512 * 512  # an answer up to this size is a PNG (exact pixels) when that fits
JPEG_QUALITIES = (90, 80, 70)
IDLE_SECONDS = 60.0  # a decoded image unused this long is let go
JPEG_DRAFT_FACTORS = (8, 4, 2)  # the reduced scales a JPEG decodes at directly

# Modes every step below handles as they are (crop, reduce, resize, PNG); others are converted once.
_KEPT_MODES = ("RGB", "RGBA", "L", "LA")

FileKey = tuple[str, int, int, int, int]  # path, device, inode, modification time (ns), size


@dataclass(frozen=True)
class RegionSource:
    """An image file the viewer may read (`path` resolved), and the limits it is read within."""

    path: Path
    field: str  # the argument an error names
    max_pixels: int  # the most pixels its decode may hold
    pixel_limit: str  # what sets `max_pixels`, for the error that cites it
    max_bytes: int | None = None


@dataclass(frozen=True)
class Region:
    """A rectangle of an image (clipped to it; in the full image's pixels), as an encoded answer image."""

    data: bytes
    mime_type: str
    image_width: int
    image_height: int
    x: int
    y: int
    width: int
    height: int
    answer_width: int
    answer_height: int

    @property
    def scale(self) -> float:
        """Answer pixels per image pixel, along the longer edge (≤ 1)."""
        return max(self.answer_width, self.answer_height) / max(self.width, self.height)


@dataclass
class _Decoded:
    image: PillowImage
    factor: int  # the JPEG draft reduction it was decoded at; 1: full size
    has_alpha: bool
    used: float

    @property
    def pixels(self) -> int:
        return self.image.width * self.image.height


class DecodedImages:
    """The images decoded last, kept for the next regions of them: least recently used goes first, the
    pixels held stay within `max_pixels`, and what lies unused for `idle_seconds` is let go.

    `lock` serializes renders, so that two at once never hold two large decodes.
    """

    def __init__(
        self,
        *,
        max_pixels: int = PREVIEW_MAX_PIXELS,
        idle_seconds: float = IDLE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_pixels = max_pixels
        self.idle_seconds = idle_seconds
        self._clock = clock
        self._entries: OrderedDict[tuple[FileKey, int], _Decoded] = OrderedDict()
        self._sweeper: threading.Timer | None = None
        self.lock = threading.RLock()

    @property
    def pixels(self) -> int:
        return sum(entry.pixels for entry in self._entries.values())

    def find(self, key: FileKey, factor: int) -> _Decoded | None:
        """The decode of `key` that serves a draft `factor`: at that reduction or finer, the coarsest."""
        self.sweep()
        fitting = [k for k in self._entries if k[0] == key and k[1] <= factor]
        if not fitting:
            return None
        best = max(fitting, key=lambda k: k[1])
        self._entries.move_to_end(best)
        entry = self._entries[best]
        entry.used = self._clock()
        return entry

    def make_room(self, pixels: int) -> None:
        """Let go of the least recently used until `pixels` more fit (all of them, for an image too
        large to keep): called before a decode, so the decode never adds to a full cache."""
        while self._entries and self.pixels + pixels > self.max_pixels:
            self._entries.popitem(last=False)

    def keep(self, key: FileKey, entry: _Decoded) -> None:
        if entry.pixels > self.max_pixels:
            return
        self.make_room(entry.pixels)
        entry.used = self._clock()
        self._entries[key, entry.factor] = entry
        self._sweep_later()

    def sweep(self) -> None:
        """Let go of what lay unused for `idle_seconds`."""
        with self.lock:
            now = self._clock()
            for key in [k for k, entry in self._entries.items() if now - entry.used >= self.idle_seconds]:
                del self._entries[key]

    def clear(self) -> None:
        with self.lock:
            self._entries.clear()

    def _sweep_later(self) -> None:
        """One timer at a time empties the cache once idle: no decoded image outlives its use by much."""
        if self._sweeper is not None and self._sweeper.is_alive():
            return

        def sweep_and_rearm() -> None:
            self.sweep()
            with self.lock:
                self._sweeper = None
                if self._entries:
                    self._sweep_later()

        self._sweeper = threading.Timer(self.idle_seconds, sweep_and_rearm)
        self._sweeper.daemon = True
        self._sweeper.name = "viewer-cache-sweeper"
        self._sweeper.start()


DECODED = DecodedImages()
"""The process's cache of decoded images (one per process: memory is the process's)."""


def render_region(
    source: RegionSource,
    x: int,
    y: int,
    width: int,
    height: int,
    max_edge: int,
    *,
    cache: DecodedImages = DECODED,
) -> Region:
    """The rectangle (x, y, width, height) of `source`, clipped to the image, scaled down (never up) so
    that its longer edge is at most `max_edge`, as a PNG (alpha, or small enough to send exactly) or a
    JPEG, under ANSWER_MAX_BYTES. Blocking: run it in a worker thread.

    Every refusal is an InputError naming the argument at fault: `source.field` for the file, `x` or
    `y` for a rectangle outside the image.
    """
    with _opened(source) as (file, key), cache.lock:
        image = _header(file, source)
        image_width, image_height = image.size
        left, top = _clip_start(x, "x", image_width, "wide"), _clip_start(y, "y", image_height, "tall")
        right, bottom = min(left + width, image_width), min(top + height, image_height)
        long_edge = max(right - left, bottom - top)
        scale = min(1.0, max_edge / long_edge)
        size = (max(1, round((right - left) * scale)), max(1, round((bottom - top) * scale)))
        factor = _draft_factor(image, scale)
        decoded = cache.find(key, factor)
        if decoded is None:
            decoded = _decode(image, source, factor, cache)
            cache.keep(key, decoded)
        cut = _cut(decoded, (image_width, image_height), (left, top, right, bottom), size)
    data, mime_type, cut = _encode(cut, decoded.has_alpha)
    return Region(
        data=data,
        mime_type=mime_type,
        image_width=image_width,
        image_height=image_height,
        x=left,
        y=top,
        width=right - left,
        height=bottom - top,
        answer_width=cut.width,
        answer_height=cut.height,
    )


@contextmanager
def _opened(source: RegionSource) -> Iterator[tuple[IO[bytes], FileKey]]:
    """The file, opened once and never through a symlink (it was resolved when checked), and its key."""
    flags = (
        os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    )
    shown = f"{source.field}: {source.path}"
    try:
        descriptor = os.open(source.path, flags)
    except FileNotFoundError:
        raise InputError(f"{shown} is no longer there.") from None
    except OSError as exc:
        raise InputError(f"{shown} cannot be opened ({exc.strerror or type(exc).__name__}).") from None
    with os.fdopen(descriptor, "rb") as file:
        status = os.fstat(file.fileno())
        if not stat.S_ISREG(status.st_mode):
            raise InputError(f"{shown} is not a regular file.")
        if source.max_bytes is not None and status.st_size > source.max_bytes:
            raise InputError(
                f"{shown} is {status.st_size:,} bytes; the limit is {source.max_bytes:,} bytes "
                "(SCENARIO_MAX_INPUT_BYTES)."
            )
        yield file, (str(source.path), status.st_dev, status.st_ino, status.st_mtime_ns, status.st_size)


def _header(file: IO[bytes], source: RegionSource) -> PillowImage:
    """The image, opened lazily (its header read, no pixel decoded), in a format the server reads."""
    from PIL import UnidentifiedImageError

    try:
        image = open_image(file)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(
            f"{source.field}: {source.path} does not decode as an image ({exc.__class__.__name__})."
        ) from None
    if image.format not in READABLE_FORMATS:
        accepted = ", ".join(READABLE_FORMATS)
        raise InputError(
            f"{source.field}: {source.path} is {image.format or 'an unknown format'}; accepted: {accepted}."
        )
    return image


def _clip_start(start: int, field: str, extent: int, adjective: str) -> int:
    if start >= extent:
        raise InputError(
            f"{field}: {start} is outside the image, which is {extent} pixels {adjective} "
            f"({field} goes from 0 to {extent - 1})."
        )
    return start


def _draft_factor(image: PillowImage, scale: float) -> int:
    """The reduction a JPEG can decode at directly that still gives the answer all its pixels; 1 for
    other formats, or when the answer is the image's own size."""
    if image.format != "JPEG":
        return 1
    for factor in JPEG_DRAFT_FACTORS:
        if factor * scale <= 1 and min(image.size) >= factor:
            return factor
    return 1


def _decode(image: PillowImage, source: RegionSource, factor: int, cache: DecodedImages) -> _Decoded:
    """Decode the image (a JPEG reduced by `factor`), in a mode the cutting handles, within the pixel cap."""
    width, height = image.size
    if factor > 1:  # the size now reads as the reduced one
        image.draft(image.mode, (width // factor, height // factor))
    pixels = image.width * image.height
    if pixels > source.max_pixels:
        at = "" if factor == 1 else f" even at 1/{factor} scale"
        raise InputError(
            f"{source.field}: {source.path} is {width}×{height} pixels; decoding it{at} would hold "
            f"{pixels / 1e6:.3g} megapixels, over the {source.max_pixels / 1e6:.3g}-megapixel limit "
            f"({source.pixel_limit}) that keeps the server's memory bounded. A larger region with a "
            "smaller maxEdge decodes less (JPEG only); or open the file itself."
        )
    cache.make_room(pixels)
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    try:
        image.load()
        if has_alpha and image.mode not in ("RGBA", "LA"):
            image = image.convert("RGBA")
        elif image.mode not in _KEPT_MODES:
            image = image.convert("RGB")
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        reason = next(iter(str(exc).splitlines()), "")[:120] or exc.__class__.__name__
        raise InputError(
            f"{source.field}: {source.path} does not decode: its pixel data is damaged or cut short ({reason})."
        ) from None
    return _Decoded(image=image, factor=factor, has_alpha=has_alpha, used=0.0)


def _cut(
    decoded: _Decoded, full_size: tuple[int, int], box: tuple[int, int, int, int], size: tuple[int, int]
) -> PillowImage:
    """The box (in full-size pixels) of the decoded image, at `size`: a plain crop at 1:1, else a Lanczos
    resize of the box alone (box-reduced first when much larger, so no full-size copy is made)."""
    from PIL import Image

    image = decoded.image
    left, top, right, bottom = box
    if image.size == full_size and size == (right - left, bottom - top):
        return image.crop(box)
    across, down = full_size[0] / image.width, full_size[1] / image.height
    scaled = (left / across, top / down, right / across, bottom / down)
    return image.resize(size, Image.Resampling.LANCZOS, box=scaled, reducing_gap=2.0)


def _encode(image: PillowImage, has_alpha: bool) -> tuple[bytes, str, PillowImage]:
    """The image as a PNG (alpha, or small enough to send exactly) or a JPEG, under ANSWER_MAX_BYTES:
    shrunk by steps of 3/4 only if neither fits. Returns the bytes, their type and the image encoded."""
    from PIL import Image

    while True:
        if has_alpha or image.width * image.height <= EXACT_MAX_PIXELS:
            buffer = io.BytesIO()
            image.save(buffer, "PNG")
            if buffer.tell() <= ANSWER_MAX_BYTES or (has_alpha and max(image.size) <= 64):
                return buffer.getvalue(), "image/png", image
        if not has_alpha:
            for quality in JPEG_QUALITIES:
                buffer = io.BytesIO()
                image.save(buffer, "JPEG", quality=quality)
                if buffer.tell() <= ANSWER_MAX_BYTES or max(image.size) <= 64:
                    return buffer.getvalue(), "image/jpeg", image
        image = image.resize(
            (max(1, image.width * 3 // 4), max(1, image.height * 3 // 4)), Image.Resampling.LANCZOS
        )
