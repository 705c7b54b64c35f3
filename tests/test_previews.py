"""Previews of results keep the server's memory bounded whatever the asset.

A 13000×13000 PNG of one colour is 657 KB on disk and 676 MB once decoded: previews decode no more
than PREVIEW_MAX_PIXELS (a JPEG at reduced scale), shrink huge images a band at a time, and answer
without a preview, saying why, when an image is too large to decode at all.
"""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import pytest
from mcp import Client
from mcp.types import ResourceLink, TextContent
from PIL import Image

from scenario_upscale_mcp.config import Settings
from scenario_upscale_mcp.outputs import previews
from scenario_upscale_mcp.outputs.previews import (
    PREVIEW_MAX_EDGE,
    PREVIEW_MAX_PIXELS,
    PreviewUnavailable,
    describe_image,
    make_preview,
)
from scenario_upscale_mcp.sandbox.app import Sandbox
from tests.images import RGBA, png_with_idat, record_decoded_sizes

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
    tmp_path: Path, decoded_sizes: list[tuple[int, int]]
) -> None:
    path = tmp_path / "photo.jpg"
    Image.linear_gradient("L").resize((4000, 3000)).save(path, "JPEG")

    data, mime_type = make_preview(path, max_pixels=4_000_000)

    assert mime_type == "image/jpeg" and len(data) > 0
    assert decoded_sizes == [(2000, 1500)]  # half scale: the largest that still covers 1568×1176


def test_an_image_that_would_decode_over_the_cap_is_not_decoded_at_all(
    tmp_path: Path, decoded_sizes: list[tuple[int, int]]
) -> None:
    jpeg, png = tmp_path / "photo.jpg", tmp_path / "picture.png"
    gradient = Image.linear_gradient("L").resize((4000, 3000))
    gradient.save(jpeg, "JPEG")
    gradient.save(png, "PNG")

    with pytest.raises(PreviewUnavailable, match=r"picture\.png is 4000×3000 pixels \(12 megapixels\)"):
        make_preview(png, max_pixels=11_999_999)
    with pytest.raises(PreviewUnavailable, match=r"photo\.jpg is 4000×3000 pixels"):
        make_preview(jpeg, max_pixels=2_999_999)  # even at half scale, 3 megapixels
    assert decoded_sizes == []


def test_the_default_cap_matches_the_input_cap() -> None:
    assert Settings().max_input_pixels == PREVIEW_MAX_PIXELS


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_a_large_transparent_image_keeps_its_alpha_when_shrunk(tmp_path: Path, mode: str) -> None:
    """Shrunk band by band (one full-size copy only), in a mode reduce() cannot take directly too."""
    image = Image.new("RGBA", (5000, 1000), (0, 0, 0, 0))
    image.paste((200, 30, 40, 255), (2500, 0, 5000, 1000))
    if mode == "P":
        image = image.quantize(colors=4)
        image.info["transparency"] = image.getpixel((0, 0))
    else:
        image = image.convert(mode)
    path = tmp_path / f"sprite-{mode}.png"
    image.save(path)

    data, mime_type = make_preview(path)

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
