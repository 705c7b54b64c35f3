"""Writing results: atomic, never overwriting, no half files; previews sized for hosts."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from PIL import Image

from scenario_upscale_mcp.api.errors import DownloadError
from scenario_upscale_mcp.outputs.previews import PREVIEW_MAX_BYTES, PREVIEW_MAX_EDGE, make_preview
from scenario_upscale_mcp.outputs.writing import output_file_name, save_stream
from tests.images import noise_png

pytestmark = pytest.mark.anyio


async def chunks_of(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_a_saved_file_never_overwrites_an_existing_one(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"original")
    first, _ = await save_stream(tmp_path, "a.png", 3, chunks_of(b"new"))
    second, _ = await save_stream(tmp_path, "a.png", 5, chunks_of(b"newer"))

    assert (tmp_path / "a.png").read_bytes() == b"original"
    assert first.name == "a-1.png" and first.read_bytes() == b"new"
    assert second.name == "a-2.png" and second.read_bytes() == b"newer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-1.png", "a-2.png", "a.png"]


async def test_a_short_download_leaves_no_file_at_all(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="cut short"):
        await save_stream(tmp_path, "b.png", 100, chunks_of(b"only-part"))
    assert list(tmp_path.iterdir()) == []


async def test_a_stream_that_breaks_leaves_no_file_at_all(tmp_path: Path) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"start"
        raise DownloadError("connection cut")

    with pytest.raises(DownloadError):
        await save_stream(tmp_path, "c.png", None, broken())
    assert list(tmp_path.iterdir()) == []


def test_output_names_say_what_they_are() -> None:
    assert (
        output_file_name("castle", "upscale-v3", 4.0, "job_abc123def456", "png", 0)
        == "castle_upscale-v3_x4_abc123de.png"
    )
    assert (
        output_file_name("my tile (1)", "texture", 2.5, "job_x", "webp", 1)
        == "my-tile-1_texture_x2.5_x_2.webp"
    )


def test_a_huge_preview_is_bounded_in_edge_and_bytes(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(noise_png((3000, 2000)))
    data, mime_type = make_preview(path)

    assert mime_type == "image/jpeg" and len(data) <= PREVIEW_MAX_BYTES
    with Image.open(io.BytesIO(data)) as preview:
        assert max(preview.size) <= PREVIEW_MAX_EDGE
        assert preview.size[0] / preview.size[1] == pytest.approx(1.5, rel=0.01)


def test_a_transparent_preview_keeps_its_alpha(tmp_path: Path) -> None:
    path = tmp_path / "sprite.png"
    Image.new("RGBA", (400, 300), (10, 200, 30, 128)).save(path)
    data, mime_type = make_preview(path)
    assert mime_type == "image/png"
    with Image.open(io.BytesIO(data)) as preview:
        assert preview.mode == "RGBA" and preview.size == (400, 300)


async def test_a_cancelled_download_leaves_no_file_at_all(tmp_path: Path) -> None:
    stalled = anyio.Event()

    async def stalls() -> AsyncIterator[bytes]:
        yield b"start"
        stalled.set()
        await anyio.sleep_forever()
        yield b"never"

    async def download() -> None:
        await save_stream(tmp_path, "d.png", None, stalls())

    async with anyio.create_task_group() as group:
        group.start_soon(download)
        await stalled.wait()  # the download has begun and now stalls: cancel it there
        group.cancel_scope.cancel()
    assert list(tmp_path.iterdir()) == []
