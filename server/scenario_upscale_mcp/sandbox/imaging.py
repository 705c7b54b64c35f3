"""What the simulator does with pixels, through Pillow: recognising an image, the real upscale (a
LANCZOS resize) that stands in for the model, and format conversions for downloads."""

from __future__ import annotations

from io import BytesIO

from PIL import Image

Image.init()


def pillow_writes(pillow_format: str) -> bool:
    """Whether this Pillow build can write the format (builds without libavif cannot write AVIF)."""
    return pillow_format in Image.SAVE


def sniff_image(data: bytes) -> tuple[str, int, int] | None:
    """(MIME type, width, height) if Pillow can read `data` as an image, else None."""
    try:
        with Image.open(BytesIO(data)) as image:
            image_format, (width, height) = image.format, image.size
            image.verify()
    except Exception:  # Pillow reports bad data through many exception types.
        return None
    if image_format is None:
        return None
    mime = "image/jpeg" if image_format == "MPO" else Image.MIME.get(image_format, "application/octet-stream")
    return mime, width, height


def upscaled_png(data: bytes, factor: float, max_edge: int) -> tuple[bytes, int, int]:
    """The image really resized with LANCZOS by `factor`, long edge capped at `max_edge`, as PNG."""
    with Image.open(BytesIO(data)) as opened:
        image: Image.Image = opened
        if image.mode not in ("RGB", "RGBA", "L", "LA"):
            # Palette images would be resized with NEAREST; convert so LANCZOS applies.
            image = image.convert("RGBA" if image.has_transparency_data else "RGB")
        width, height = image.size
        target = (max(1, round(width * factor)), max(1, round(height * factor)))
        longest = max(target)
        if longest > max_edge:
            # A simulator limit, not Scenario's: keeps memory and time bounded on a laptop.
            scale = max_edge / longest
            target = (max(1, round(target[0] * scale)), max(1, round(target[1] * scale)))
        resized = image.resize(target, Image.Resampling.LANCZOS)
        out = BytesIO()
        # Fast compression: outputs can reach 8192², and speed matters more than size here.
        resized.save(out, "PNG", compress_level=1)
    return out.getvalue(), target[0], target[1]


def reformatted(data: bytes, pillow_format: str) -> bytes:
    """The image written in another format (JPEG drops transparency: it has none)."""
    with Image.open(BytesIO(data)) as opened:
        image: Image.Image = opened
        if pillow_format == "JPEG" and image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        elif image.mode not in ("RGB", "RGBA", "L", "LA"):
            image = image.convert("RGBA" if image.has_transparency_data else "RGB")
        out = BytesIO()
        image.save(out, pillow_format)
    return out.getvalue()
