"""Previews of results keep the server's memory bounded whatever the asset.

A 13000×13000 PNG of one colour is 657 KB on disk and 676 MB once decoded: previews decode no more
than PREVIEW_MAX_PIXELS (a JPEG at reduced scale), stream large images through libvips (pyvips) or,
in the Pillow fallback, shrink them a band at a time, and answer without a preview, saying why, when
an image is too large to decode at all. The rules hold on both paths: `library` runs a test on each.
"""

from __future__ import annotations

import importlib.abc
import io
import logging
import subprocess
import sys
import textwrap
import zlib
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from mcp import Client
from mcp.types import ResourceLink, TextContent
from PIL import Image, ImageChops, ImageStat

from scenario_upscale_mcp.config import Settings
from scenario_upscale_mcp.image_files import load_vips, vips_library
from scenario_upscale_mcp.outputs import previews
from scenario_upscale_mcp.outputs.previews import (
    PREVIEW_MAX_EDGE,
    PREVIEW_MAX_PIXELS,
    Library,
    PreviewUnavailable,
    decode_reduced,
    describe_image,
    make_preview,
)
from scenario_upscale_mcp.sandbox.app import Sandbox
from tests.images import RGB, RGBA, png_with_idat, record_decoded_sizes

pytestmark = pytest.mark.anyio

HUGE_EDGE = 13_000
PILLOW_DEFAULT_MAX_IMAGE_PIXELS = 1024 * 1024 * 1024 // 4 // 3  # Pillow's own default


def blank_rgba_png(width: int, height: int) -> bytes:
    """A transparent RGBA PNG, compressed row by row so the test never holds its pixels either."""
    row = b"\x00" + bytes(width * 4)
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return png_with_idat(width, height, idat, RGBA)


@pytest.fixture(scope="module")
def huge_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("huge") / "huge.png"
    path.write_bytes(blank_rgba_png(HUGE_EDGE, HUGE_EDGE))
    return path


@pytest.fixture
def decoded_sizes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The size of every pixel buffer Pillow allocates to decode a file into."""
    return record_decoded_sizes(monkeypatch)


@pytest.fixture
def vips_loads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The size of every image libvips opens for a preview from now on in this test (it decodes
    them later, as a stream), libvips itself otherwise untouched."""
    vips = load_vips()
    assert vips is not None, "pyvips[binary] is a dependency: it should load here"
    loads: list[tuple[int, int]] = []

    def recorded(load: Callable[..., Any]) -> Callable[..., Any]:
        def loading(*args: Any, **kwargs: Any) -> Any:
            image = load(*args, **kwargs)
            loads.append((image.width, image.height))
            return image

        return loading

    image_class = SimpleNamespace(
        jpegload=recorded(vips.Image.jpegload), new_from_file=recorded(vips.Image.new_from_file)
    )
    monkeypatch.setattr(previews, "load_vips", lambda: SimpleNamespace(Image=image_class, Error=vips.Error))
    return loads


@pytest.fixture(params=["auto", "pillow"])
def library(request: pytest.FixtureRequest) -> Library:
    """Each rule on both paths: libvips where it loads ("auto"), and the Pillow fallback."""
    value: Library = request.param
    return value


@pytest.fixture
def pillows_own_bomb_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pillow's default guard, as a fresh process has it: opening a 169-megapixel file would warn
    (DecompressionBombWarning, an error under this suite's warnings-as-errors) unless the server
    deliberately replaces the guard with its own caps."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", PILLOW_DEFAULT_MAX_IMAGE_PIXELS)


@pytest.mark.usefixtures("pillows_own_bomb_guard")
async def test_a_huge_result_is_saved_and_linked_and_the_text_says_why_there_is_no_preview(
    client: Client,
    sandbox: Sandbox,
    folders: dict[str, Path],
    huge_png: Path,
    decoded_sizes: list[tuple[int, int]],
) -> None:
    data = huge_png.read_bytes()
    assert len(data) < 700_000  # small on disk...
    asset = sandbox._new_asset(data, "image/png", HUGE_EDGE, HUGE_EDGE, "huge.png")  # ...169 megapixels
    sandbox.assets[asset.id] = asset

    result = await client.call_tool("download_assets", {"assetIds": [asset.id]})

    assert not result.is_error, result.content
    assert result.structured_content is not None
    [file] = result.structured_content["files"]
    saved = Path(file["path"])
    assert saved.parent == folders["output"] and saved.read_bytes() == data
    assert (file["width"], file["height"], file["mimeType"]) == (HUGE_EDGE, HUGE_EDGE, "image/png")
    assert [type(block) for block in result.content] == [TextContent, ResourceLink]
    text = result.content[0]
    assert isinstance(text, TextContent)
    assert str(saved) in text.text
    assert f"No preview: {saved.name} is 13000×13000 pixels" in text.text
    assert "100-megapixel" in text.text
    # Nothing was decoded at all, let alone at full size.
    assert decoded_sizes == []


def test_describing_a_huge_image_reads_its_header_only(
    huge_png: Path, decoded_sizes: list[tuple[int, int]], pillows_own_bomb_guard: None
) -> None:
    assert describe_image(huge_png) == ("image/png", HUGE_EDGE, HUGE_EDGE)
    assert decoded_sizes == []


def test_a_huge_jpeg_is_previewed_from_a_reduced_decode(
    tmp_path: Path,
    decoded_sizes: list[tuple[int, int]],
    vips_loads: list[tuple[int, int]],
    library: Library,
) -> None:
    path = tmp_path / "photo.jpg"
    Image.linear_gradient("L").resize((4000, 3000)).save(path, "JPEG")

    data, mime_type = make_preview(path, max_pixels=4_000_000, library=library)

    assert mime_type == "image/jpeg" and len(data) > 0
    reduced = [(2000, 1500)]  # half scale: the largest that still covers 1568×1176
    assert (vips_loads, decoded_sizes) == ((reduced, []) if library == "auto" else ([], reduced))


def test_an_image_that_would_decode_over_the_cap_is_not_decoded_at_all(
    tmp_path: Path,
    decoded_sizes: list[tuple[int, int]],
    vips_loads: list[tuple[int, int]],
    library: Library,
) -> None:
    jpeg, png = tmp_path / "photo.jpg", tmp_path / "picture.png"
    gradient = Image.linear_gradient("L").resize((4000, 3000))
    gradient.save(jpeg, "JPEG")
    gradient.save(png, "PNG")

    with pytest.raises(PreviewUnavailable, match=r"picture\.png is 4000×3000 pixels \(12 megapixels\)"):
        make_preview(png, max_pixels=11_999_999, library=library)
    with pytest.raises(PreviewUnavailable, match=r"photo\.jpg is 4000×3000 pixels"):
        make_preview(jpeg, max_pixels=2_999_999, library=library)  # even at half scale, 3 megapixels
    assert decoded_sizes == [] and vips_loads == []


def test_the_default_cap_matches_the_input_cap() -> None:
    assert Settings().max_input_pixels == PREVIEW_MAX_PIXELS


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_a_large_transparent_image_keeps_its_alpha_when_shrunk(
    tmp_path: Path, mode: str, library: Library, vips_loads: list[tuple[int, int]]
) -> None:
    """Shrunk premultiplied by libvips; or by Pillow band by band (one full-size copy only), in a mode
    reduce() cannot take directly too."""
    image = Image.new("RGBA", (5000, 1000), (0, 0, 0, 0))
    image.paste((200, 30, 40, 255), (2500, 0, 5000, 1000))
    if mode == "P":
        image = image.quantize(colors=4)
        image.info["transparency"] = image.getpixel((0, 0))
    else:
        image = image.convert(mode)
    path = tmp_path / f"sprite-{mode}.png"
    image.save(path)

    data, mime_type = make_preview(path, library=library)

    assert vips_loads == ([(5000, 1000)] if library == "auto" else [])
    assert mime_type == "image/png"
    with Image.open(io.BytesIO(data)) as preview:
        assert preview.mode == "RGBA" and preview.size == (PREVIEW_MAX_EDGE, 314)
        alpha = preview.getchannel("A")
        assert alpha.getpixel((10, 150)) == 0 and alpha.getpixel((PREVIEW_MAX_EDGE - 10, 150)) == 255


def test_a_webp_beyond_the_whole_read_limit_is_never_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pillow reads a WebP file whole just to open it, so its size is capped before it is opened."""
    webp, png = tmp_path / "result.webp", tmp_path / "result.png"
    noise = Image.effect_noise((64, 64), 50).convert("RGB")
    noise.save(webp, "WEBP", lossless=True)
    noise.save(png, "PNG")
    monkeypatch.setattr(previews, "WHOLE_READ_MAX_BYTES", min(webp.stat().st_size, png.stat().st_size) - 1)

    assert describe_image(webp) == (None, None, None)
    with pytest.raises(PreviewUnavailable, match=r"result\.webp is a [\d,]+-byte WebP or AVIF file"):
        make_preview(webp)
    assert describe_image(png) == ("image/png", 64, 64)  # other formats stream: no such limit
    assert make_preview(png)[1] == "image/jpeg"


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's VmHWM")
def test_the_peak_memory_of_previewing_a_huge_png_stays_small(huge_png: Path) -> None:
    """Measured in a fresh process, as its VmHWM (peak resident memory): Pillow allocates in C, out
    of tracemalloc's sight, and a child's ru_maxrss starts at its parent's, pytest's. Before the
    cap, a preview of this 657 KB file peaked at 1.3 GB."""
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from scenario_upscale_mcp.outputs.previews import PreviewUnavailable, describe_image, make_preview
        describe_image(Path({str(huge_png)!r}))
        try:
            make_preview(Path({str(huge_png)!r}))
        except PreviewUnavailable:
            pass
        status = Path("/proc/self/status").read_text()
        print(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    peak_bytes = int(done.stdout.strip()) * 1024
    assert peak_bytes < 200 * 1024 * 1024, f"peak RSS {peak_bytes / 2**20:.0f} MiB"


def gradient_picture(size: tuple[int, int]) -> Image.Image:
    """An RGB picture with detail in both directions, so that two decodes can be compared."""
    across = Image.linear_gradient("L").resize(size)
    down = across.transpose(Image.Transpose.ROTATE_90).resize(size)
    return Image.merge("RGB", (across, down, ImageChops.invert(across)))


def mean_difference(first: Image.Image, second: Image.Image) -> float:
    assert (first.mode, first.size) == (second.mode, second.size)
    return max(ImageStat.Stat(ImageChops.difference(first, second)).mean)


@pytest.mark.parametrize(("suffix", "decoded"), [(".png", (4000, 2400)), (".jpg", (2000, 1200))])
def test_a_large_image_is_decoded_by_libvips_and_looks_as_pillows_decode_of_it(
    tmp_path: Path,
    suffix: str,
    decoded: tuple[int, int],
    decoded_sizes: list[tuple[int, int]],
    vips_loads: list[tuple[int, int]],
) -> None:
    path = tmp_path / f"result{suffix}"
    gradient_picture((4000, 2400)).save(path)

    streamed = decode_reduced(path, PREVIEW_MAX_EDGE)
    assert (vips_loads, decoded_sizes) == ([decoded], [])  # a JPEG at half scale, on load
    whole = decode_reduced(path, PREVIEW_MAX_EDGE, library="pillow")

    assert streamed.mode == "RGB" and streamed.size == (PREVIEW_MAX_EDGE, 941)
    assert mean_difference(streamed, whole) < 1.5
    data, mime_type = make_preview(path)
    assert mime_type == "image/jpeg"
    with Image.open(io.BytesIO(data)) as preview:
        assert preview.size == (PREVIEW_MAX_EDGE, 941)


def test_images_that_need_no_shrinking_and_other_formats_are_left_to_pillow(
    tmp_path: Path, decoded_sizes: list[tuple[int, int]], vips_loads: list[tuple[int, int]]
) -> None:
    small, bitmap = tmp_path / "small.png", tmp_path / "large.bmp"
    gradient_picture((PREVIEW_MAX_EDGE, 1000)).save(small)
    gradient_picture((3000, 1000)).save(bitmap)

    assert make_preview(small)[1] == make_preview(bitmap)[1] == "image/jpeg"

    assert vips_loads == [] and decoded_sizes == [(PREVIEW_MAX_EDGE, 1000), (3000, 1000)]


@pytest.mark.parametrize("suffix", [".png", ".webp"])
def test_an_animated_image_is_previewed_from_its_first_frame(
    tmp_path: Path, suffix: str, library: Library, vips_loads: list[tuple[int, int]]
) -> None:
    path = tmp_path / f"animated{suffix}"
    red, blue = Image.new("RGB", (3000, 1500), (220, 20, 20)), Image.new("RGB", (3000, 1500), (20, 20, 220))
    red.save(path, save_all=True, append_images=[blue], duration=100, loop=0, lossless=True)

    preview = decode_reduced(path, PREVIEW_MAX_EDGE, library=library)

    assert preview.size == (PREVIEW_MAX_EDGE, 784)
    assert preview.getpixel((784, 392)) == pytest.approx((220, 20, 20), abs=3)
    assert vips_loads == ([(3000, 1500)] if library == "auto" else [])


def test_exif_orientation_is_left_as_it_was_on_both_paths(
    tmp_path: Path, library: Library, vips_loads: list[tuple[int, int]]
) -> None:
    """Not applied, as before libvips (whose thumbnail() would): the preview matches the reported size."""
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    gradient_picture((3200, 1600)).save(path, exif=exif)

    assert decode_reduced(path, PREVIEW_MAX_EDGE, library=library).size == (PREVIEW_MAX_EDGE, 784)
    assert vips_loads == ([(1600, 800)] if library == "auto" else [])  # at half scale, as it is stored


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_a_region_is_cut_from_the_image_then_shrunk(tmp_path: Path, library: Library, suffix: str) -> None:
    """For the viewer: a region, in the image's own pixels, comes back shrunk to fit the edge asked
    (a JPEG decoded at half scale, the largest that covers it)."""
    path = tmp_path / f"halves{suffix}"
    halves = Image.new("RGB", (6000, 2000), (200, 30, 40))
    halves.paste((30, 40, 200), (3000, 0, 6000, 2000))
    halves.save(path, quality=95)

    right = decode_reduced(path, 800, region=(3200, 400, 5600, 1600), library=library)

    assert right.size == (800, 400)
    assert (
        max(
            ImageStat.Stat(ImageChops.difference(right, Image.new("RGB", (800, 400), (30, 40, 200)))).extrema[
                0
            ]
        )
        < 24
    )
    with pytest.raises(ValueError, match="not inside the 6000×2000 image"):
        decode_reduced(path, 800, region=(5000, 0, 6001, 100), library=library)


def test_a_file_libvips_refuses_is_decoded_by_pillow_and_why_is_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    vips = load_vips()
    assert vips is not None

    def refusing(*args: Any, **kwargs: Any) -> Any:
        raise vips.Error("unable to load", "vipspng: a detail\n  on two lines")

    image_class = SimpleNamespace(jpegload=refusing, new_from_file=refusing)
    monkeypatch.setattr(previews, "load_vips", lambda: SimpleNamespace(Image=image_class, Error=vips.Error))
    path = tmp_path / "result.png"
    gradient_picture((3000, 2000)).save(path)

    with caplog.at_level(logging.INFO, logger=previews.__name__):
        data, mime_type = make_preview(path)

    assert mime_type == "image/jpeg" and len(data) > 0
    assert (
        "libvips could not decode result.png, Pillow will: unable to load vipspng: a detail on two lines"
        in caplog.messages
    )


def test_a_damaged_file_fails_on_both_paths_as_pillow_fails(tmp_path: Path) -> None:
    """libvips stops at the damage (it would otherwise show grey rows), and Pillow's error is raised:
    the answer then says the file could not be read."""
    row = b"\x00" + bytes(3000 * 3)
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(2000)) + compressor.flush()
    path = tmp_path / "cut.png"
    path.write_bytes(png_with_idat(3000, 2000, idat[: len(idat) // 2], RGB))

    with pytest.raises(OSError, match="truncated"):
        make_preview(path)


class FailingImport(importlib.abc.MetaPathFinder):
    """Makes `import pyvips` raise `error`, as it does where it is not installed or libvips does not load."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def find_spec(self, name: str, path: object, target: object = None) -> None:
        if name == "pyvips":
            raise self.error


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ModuleNotFoundError("No module named 'pyvips'"), "ModuleNotFoundError: No module named 'pyvips'"),
        (OSError("cannot load library 'libvips.so.42'"), "OSError: cannot load library 'libvips.so.42'"),
    ],
)
def test_without_pyvips_previews_are_made_by_pillow_and_why_is_logged_once(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    decoded_sizes: list[tuple[int, int]],
    error: Exception,
    reason: str,
) -> None:
    path = tmp_path / "result.png"
    gradient_picture((3000, 2000)).save(path)
    monkeypatch.delitem(sys.modules, "pyvips", raising=False)
    monkeypatch.setattr(sys, "meta_path", [FailingImport(error), *sys.meta_path])
    load_vips.cache_clear()
    try:
        with caplog.at_level(logging.INFO, logger=previews.__name__):
            assert make_preview(path)[1] == make_preview(path)[1] == "image/jpeg"
        library_named = vips_library()
    finally:
        monkeypatch.undo()
        load_vips.cache_clear()

    assert decoded_sizes == [(3000, 2000), (3000, 2000)]
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == f"images decode with Pillow only: pyvips did not load ({reason})"
    assert library_named == "Pillow"
    assert vips_library().startswith("pyvips (libvips 8.")  # loaded again, once it can be


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="reads Linux's VmHWM")
def test_the_peak_memory_of_a_streamed_preview_is_a_fraction_of_the_decode(tmp_path: Path) -> None:
    """A 6000×6000 PNG holds 137 MiB once decoded by Pillow (4 bytes a pixel); libvips streams it
    through the shrink. Measured in a fresh process, as in the test above, from its idle memory with
    every library loaded."""
    path = tmp_path / "large.png"
    row = b"\x00" + bytes(range(256)) * (6000 * 3 // 256) + bytes(6000 * 3 % 256)
    compressor = zlib.compressobj(6)
    path.write_bytes(
        png_with_idat(
            6000, 6000, b"".join(compressor.compress(row) for _ in range(6000)) + compressor.flush()
        )
    )
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from PIL import Image
        from scenario_upscale_mcp.outputs.previews import make_preview

        def status(key):
            text = Path("/proc/self/status").read_text()
            return int(next(line.split()[1] for line in text.splitlines() if line.startswith(key + ":")))

        warm = Path({str(tmp_path / "warm.png")!r})
        Image.new("RGB", (2000, 1000)).save(warm)
        make_preview(warm)  # every library and codec loaded
        idle = status("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
        make_preview(Path({str(path)!r}))
        print(status("VmHWM") - idle)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    peak_bytes = int(done.stdout.strip()) * 1024
    assert peak_bytes < 48 * 1024 * 1024, f"peak RSS above idle {peak_bytes / 2**20:.0f} MiB"
