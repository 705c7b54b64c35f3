"""An input image's pixels must decode before anything is uploaded (and billed).

`verify()` checks a file's structure (for PNG, every chunk's CRC) but not its pixel stream, so a PNG
with a broken deflate stream, an unknown row filter or rows cut short passes it. These files are
built byte by byte with valid CRCs, so only decoding the pixels can tell.
"""

from __future__ import annotations

import base64
import io
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from mcp import Client
from PIL import Image

from scenario_upscale_mcp.api.errors import InputError
from scenario_upscale_mcp.config import Settings
from scenario_upscale_mcp.images.reading import check_image_file
from tests.conftest import RecordingTransport
from tests.images import png_with_idat, record_decoded_sizes

pytestmark = pytest.mark.anyio

WIDTH, HEIGHT = 64, 48
ROW = 1 + WIDTH * 3  # a filter-type byte, then RGB


def rows() -> bytes:
    """Filter type 0 rows of a gradient."""
    return b"".join(b"\x00" + bytes((x * 7 + y) % 256 for x in range(WIDTH * 3)) for y in range(HEIGHT))


def broken_deflate() -> bytes:
    compressed = zlib.compress(rows())
    garbage = compressed[:2] + b"\xff" * (len(compressed) - 2)  # a zlib header, then garbage
    return png_with_idat(WIDTH, HEIGHT, garbage)


def unknown_filter() -> bytes:
    raw = bytearray(rows())
    raw[10 * ROW] = 7  # row 10 names filter type 7; PNG has 0-4
    return png_with_idat(WIDTH, HEIGHT, zlib.compress(bytes(raw)))


def pixel_stream_cut_short() -> bytes:
    compressed = zlib.compress(rows())
    return png_with_idat(
        WIDTH, HEIGHT, compressed[: len(compressed) // 2]
    )  # the stream stops mid-image; chunks are intact


def truncated_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.radial_gradient("L").convert("RGB").save(buffer, "JPEG")
    return buffer.getvalue()[: buffer.tell() // 2]


def truncated_png_file() -> bytes:
    good = png_with_idat(WIDTH, HEIGHT, zlib.compress(rows()))
    return good[: len(good) - 30]  # cut inside the IDAT chunk: already caught by verify()


DAMAGED: dict[str, Callable[[], bytes]] = {
    "broken-deflate.png": broken_deflate,
    "unknown-filter.png": unknown_filter,
    "cut-short.png": pixel_stream_cut_short,
    "truncated.jpg": truncated_jpeg,
    "truncated-file.png": truncated_png_file,
}
PASSES_VERIFY = ["broken-deflate.png", "unknown-filter.png", "cut-short.png", "truncated.jpg"]


@pytest.mark.parametrize("name", PASSES_VERIFY)
def test_the_damaged_files_pass_pillows_verify(name: str) -> None:
    """The premise: a structure check alone lets these through, though their pixels do not decode."""
    data = DAMAGED[name]()
    with Image.open(io.BytesIO(data)) as image:
        image.verify()  # raises nothing
        assert image.format == ("JPEG" if name.endswith(".jpg") else "PNG")
    with (
        Image.open(io.BytesIO(data)) as image,
        pytest.raises(OSError, match=r"broken|unrecognized|truncated"),
    ):
        image.load()


@pytest.mark.parametrize("name", list(DAMAGED))
async def test_an_image_whose_pixels_do_not_decode_is_refused_before_any_request(
    client: Client, api: RecordingTransport, folders: dict[str, Path], name: str
) -> None:
    path = folders["images"] / name
    path.write_bytes(DAMAGED[name]())
    result = await client.call_tool("upscale_v3", {"image": str(path), "wait": 0})

    assert result.is_error, result.content
    text: str = result.content[0].text  # type: ignore[union-attr]
    assert "image: " in text and name in text and "does not decode" in text, text
    assert api.requests == []


async def test_a_damaged_image_in_a_data_uri_is_refused_the_same_way(
    client: Client, api: RecordingTransport
) -> None:
    uri = "data:image/png;base64," + base64.b64encode(unknown_filter()).decode("ascii")
    result = await client.call_tool("upscale_v3", {"image": uri, "wait": 0})

    assert result.is_error, result.content
    text: str = result.content[0].text  # type: ignore[union-attr]
    assert "image: image (data: URI)" in text and "pixel data is damaged or cut short" in text, text
    assert api.requests == []


@pytest.fixture
def decoded_sizes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The size of every pixel buffer Pillow allocates to decode a file into."""
    return record_decoded_sizes(monkeypatch)


def test_a_jpeg_is_decoded_at_an_eighth_of_its_size(
    tmp_path: Path, settings: Settings, decoded_sizes: list[tuple[int, int]]
) -> None:
    """Every coefficient is still read (a truncated JPEG fails above), in 1/64 of the memory."""
    path = tmp_path / "photo.jpg"
    Image.linear_gradient("L").resize((2000, 1600)).save(path, "JPEG")
    checked = check_image_file(path, settings, "image")

    assert (checked.width, checked.height, checked.mime_type) == (2000, 1600, "image/jpeg")
    assert decoded_sizes == [(250, 200)]


def test_the_pixel_cap_is_checked_before_any_pixel_is_decoded(
    tmp_path: Path, settings: Settings, decoded_sizes: list[tuple[int, int]]
) -> None:
    path = tmp_path / "wide.png"
    path.write_bytes(unknown_filter())
    tight = settings.model_copy(update={"max_input_pixels": WIDTH * HEIGHT - 1})
    with pytest.raises(InputError, match="SCENARIO_MAX_INPUT_PIXELS"):
        check_image_file(path, tight, "image")
    assert decoded_sizes == []
