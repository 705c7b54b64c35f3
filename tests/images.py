"""Test images: a small flat PNG for most tests, incompressible PNGs of random pixels for size limits,
multipart uploads and long downloads (the benchmarks, tests/benchmarks/, use them too), PNGs written
chunk by chunk for damaged or huge ones, and a probe of what Pillow decodes."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageFile


def png_bytes(width: int = 64, height: int = 48, color: tuple[int, int, int] = (200, 80, 40)) -> bytes:
    """A PNG of one flat colour: tiny, whatever its size in pixels."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "PNG")
    return buffer.getvalue()


def noise_png(size: tuple[int, int]) -> bytes:
    """A PNG of random pixels, stored without compression: about three bytes a pixel."""
    buffer = io.BytesIO()
    _noise(size).save(buffer, "PNG", compress_level=0)
    return buffer.getvalue()


def write_noise_png(path: Path, megabytes: float) -> Path:
    """Writes a square PNG of random pixels of about `megabytes` MB (10⁶ bytes) to `path`; returns `path`."""
    _noise(noise_size(megabytes)).save(path, "PNG", compress_level=0)
    return path


def noise_size(megabytes: float) -> tuple[int, int]:
    """The square whose noise PNG is about `megabytes` MB."""
    side = int((megabytes * 1_000_000 / 3) ** 0.5)
    return side, side


def _noise(size: tuple[int, int]) -> Image.Image:
    return Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))


RGB, RGBA = 2, 6  # PNG colour types


def png_with_idat(width: int, height: int, idat: bytes, color_type: int = RGB) -> bytes:
    """An 8-bit PNG written chunk by chunk, its one IDAT chunk holding `idat` as given (a damaged or
    unusual pixel stream stays so), every CRC correct."""
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def record_decoded_sizes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """From now on in this test, the size of every pixel buffer Pillow allocates to decode a file into."""
    sizes: list[tuple[int, int]] = []
    prepare = ImageFile.ImageFile.load_prepare

    def recording(self: ImageFile.ImageFile) -> None:
        sizes.append(self.size)
        prepare(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load_prepare", recording)
    return sizes
