"""Opening image files: Pillow (headers, small images, every format) imported on first use, its global
bomb guard replaced by our caps; and libvips (pyvips[binary], a self-contained wheel), which decodes
large PNG, JPEG and WebP files as a stream of rows, where it loads."""

from __future__ import annotations

import functools
import logging
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from PIL.ImageFile import ImageFile

logger = logging.getLogger(__name__)

# The formats decoded through libvips where it loads: those Scenario delivers, whose large files
# libvips streams in bounded memory at about twice Pillow's speed. Pillow is enough for the others.
VIPS_FORMATS = frozenset({"PNG", "JPEG", "WEBP"})


def open_image(path: Path | IO[bytes]) -> ImageFile:
    """Open an image (a path, or a file already open) lazily: header only until pixels are asked for.

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


@functools.cache
def load_vips() -> Any:
    """The pyvips module, or None (logged once, with why) where it is not installed or does not load."""
    try:
        import pyvips  # type: ignore[import-untyped]  # no py.typed marker
    except Exception as exc:  # ImportError, OSError from dlopen, or "unable to init libvips"
        logger.warning(
            "images decode with Pillow only: pyvips did not load (%s: %s)", type(exc).__name__, exc
        )
        return None
    # Every decode reads a new file once: libvips' operation cache would only keep files open and
    # memory held, and could answer a later call from a replaced file of the same name.
    pyvips.cache_set_max(0)
    chatter = logging.getLogger("pyvips")  # libvips' own messages: its plans at INFO, one per step
    if chatter.level == logging.NOTSET:
        chatter.setLevel(logging.WARNING)
    return pyvips


def vips_library() -> str:
    """What decodes large images here: "pyvips (libvips 8.18.7)", or "Pillow"."""
    vips = load_vips()
    if vips is None:
        return "Pillow"
    return f"pyvips (libvips {vips.version(0)}.{vips.version(1)}.{vips.version(2)})"
