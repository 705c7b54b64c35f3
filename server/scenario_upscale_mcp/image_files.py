"""Opening image files with Pillow: imported on first use, its global bomb guard replaced by our caps."""

from __future__ import annotations

from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from PIL.ImageFile import ImageFile


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
