"""An input image's pixels must decode before anything is uploaded (and billed).

`verify()` checks a file's structure (for PNG, every chunk's CRC) but not its pixel stream, so a PNG
with a broken deflate stream, an unknown row filter or rows cut short passes it. These files are
built byte by byte with valid CRCs, so only decoding the pixels can tell. Each rule holds on both
decoding paths: libvips (PNG, JPEG and WebP, where it loads) and Pillow.
"""

from __future__ import annotations

import base64
import hashlib
import io
import threading
import zlib
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import pytest
from mcp import Client
from PIL import Image

from scenario_upscale_mcp.api.errors import InputError
from scenario_upscale_mcp.config import Settings
from scenario_upscale_mcp.image_files import load_vips
from scenario_upscale_mcp.images import reading
from scenario_upscale_mcp.images.reading import check_image_file
from tests.conftest import RecordingTransport
from tests.images import png_with_idat, record_decoded_sizes

pytestmark = pytest.mark.anyio

Decoder = Literal["libvips", "pillow"]


@pytest.fixture(params=["libvips", "pillow"])
def decoder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Decoder:
    """Input images decoded by libvips where it loads (the default here), or by Pillow alone."""
    if request.param == "pillow":
        monkeypatch.setattr(reading, "load_vips", lambda: None)
    else:
        assert load_vips() is not None, "pyvips[binary] is a dependency: it should load here"
        monkeypatch.setattr(reading, "VIPS_MIN_PIXELS", 0)  # libvips takes large images only: these too
    return request.param  # type: ignore[no-any-return]


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
    client: Client, api: RecordingTransport, folders: dict[str, Path], name: str, decoder: Decoder
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


@pytest.fixture
def vips_loads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """Every libvips load of an input image from now on in this test: (loader, its options)."""
    vips = load_vips()
    loads: list[tuple[str, dict[str, Any]]] = []

    def recorded(name: str) -> Callable[..., Any]:
        def loading(path: str, **options: Any) -> Any:
            loads.append((name, options))
            return getattr(vips.Image, name)(path, **options)

        return loading

    image_class = SimpleNamespace(**{name: recorded(name) for name in ("jpegload", "pngload", "webpload")})
    monkeypatch.setattr(reading, "load_vips", lambda: SimpleNamespace(Image=image_class, Error=vips.Error))
    return loads


def test_a_jpeg_is_decoded_at_an_eighth_of_its_size(
    tmp_path: Path, settings: Settings, decoded_sizes: list[tuple[int, int]], decoder: Decoder
) -> None:
    """Every coefficient is still read (a truncated JPEG fails above), in 1/64 of the memory."""
    path = tmp_path / "photo.jpg"
    Image.linear_gradient("L").resize((2000, 1600)).save(path, "JPEG")
    checked = check_image_file(path, settings, "image")

    assert (checked.width, checked.height, checked.mime_type) == (2000, 1600, "image/jpeg")
    assert decoded_sizes == ([] if decoder == "libvips" else [(250, 200)])


def test_libvips_reads_a_jpeg_at_an_eighth_and_a_png_as_a_stream_of_rows(
    tmp_path: Path,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    decoded_sizes: list[tuple[int, int]],
    vips_loads: list[tuple[str, dict[str, Any]]],
) -> None:
    """Pillow decodes no pixels at all: it reads the header and the structure only."""
    monkeypatch.setattr(reading, "VIPS_MIN_PIXELS", 0)  # these small files stand for large ones
    jpeg, png = tmp_path / "photo.jpg", tmp_path / "texture.png"
    Image.linear_gradient("L").resize((2000, 1600)).save(jpeg, "JPEG")
    png.write_bytes(png_with_idat(WIDTH, HEIGHT, zlib.compress(rows())))
    check_image_file(jpeg, settings, "image")
    check_image_file(png, settings, "image")

    sequential = {"access": "sequential", "fail_on": "error"}
    assert vips_loads == [("jpegload", {"shrink": 8, **sequential}), ("pngload", sequential)]
    assert decoded_sizes == []


def test_libvips_takes_large_images_only_and_the_hash_is_the_same_either_way(
    tmp_path: Path,
    settings: Settings,
    decoded_sizes: list[tuple[int, int]],
    vips_loads: list[tuple[str, dict[str, Any]]],
) -> None:
    """Below 4 megapixels libvips' set-up costs more than it saves; below 4 MiB so does a hash thread."""
    small, large = tmp_path / "small.png", tmp_path / "large.png"
    small.write_bytes(png_with_idat(WIDTH, HEIGHT, zlib.compress(rows())))
    Image.linear_gradient("L").resize((2048, 2048)).save(large)  # 4.2 megapixels, a small file
    checked_small = check_image_file(small, settings, "image")
    checked_large = check_image_file(large, settings, "image")

    assert decoded_sizes == [(WIDTH, HEIGHT)]
    assert [loader for loader, _ in vips_loads] == ["pngload"]
    for checked in (checked_small, checked_large):
        assert checked.digest == hashlib.sha256(checked.path.read_bytes()).hexdigest()


def test_a_large_files_hash_runs_beside_its_decode_and_is_the_same(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    digest = reading.content_digest

    def recorded(path: Path) -> str:
        threads.append(threading.current_thread().name)
        return digest(path)

    monkeypatch.setattr(reading, "content_digest", recorded)
    monkeypatch.setattr(reading, "PARALLEL_HASH_BYTES", 0)
    path = tmp_path / "texture.png"
    path.write_bytes(png_with_idat(WIDTH, HEIGHT, zlib.compress(rows())))
    checked = check_image_file(path, settings, "image")

    assert checked.digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert [name.split("_")[0] for name in threads] == ["content-hash"]


def test_a_file_libvips_refuses_is_still_accepted_when_pillow_decodes_it(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch, decoded_sizes: list[tuple[int, int]]
) -> None:
    """libvips is the fast path, not a stricter rule: only a file both refuse is refused."""
    vips = load_vips()

    def refusing(path: str, **options: Any) -> Any:
        raise vips.Error("unable to load (a loader this build lacks)")

    image_class = SimpleNamespace(jpegload=refusing, pngload=refusing, webpload=refusing)
    monkeypatch.setattr(reading, "load_vips", lambda: SimpleNamespace(Image=image_class, Error=vips.Error))
    monkeypatch.setattr(reading, "VIPS_MIN_PIXELS", 0)
    good, damaged = tmp_path / "good.png", tmp_path / "unknown-filter.png"
    good.write_bytes(png_with_idat(WIDTH, HEIGHT, zlib.compress(rows())))
    damaged.write_bytes(unknown_filter())

    assert check_image_file(good, settings, "image").mime_type == "image/png"
    assert decoded_sizes == [(WIDTH, HEIGHT)]
    with pytest.raises(InputError, match="pixel data is damaged or cut short"):
        check_image_file(damaged, settings, "image")


def test_the_pixel_cap_is_checked_before_any_pixel_is_decoded(
    tmp_path: Path, settings: Settings, decoded_sizes: list[tuple[int, int]]
) -> None:
    path = tmp_path / "wide.png"
    path.write_bytes(unknown_filter())
    tight = settings.model_copy(update={"max_input_pixels": WIDTH * HEIGHT - 1})
    with pytest.raises(InputError, match="SCENARIO_MAX_INPUT_PIXELS"):
        check_image_file(path, tight, "image")
    assert decoded_sizes == []
