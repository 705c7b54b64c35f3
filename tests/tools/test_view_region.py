"""view_region through the MCP client: regions of saved results, of originals and of readable files, cut
at 1:1 or scaled down, bounded, cached; refusals that name the argument and cost no request."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import CallToolResult, ImageContent, TextContent
from PIL import Image

from scenario_upscale_mcp.config import Settings
from scenario_upscale_mcp.viewer.regions import ANSWER_MAX_BYTES, DecodedImages, RegionSource, render_region
from scenario_upscale_tools.view_region import ORIGINALS_FOLDER
from tests.conftest import RecordingTransport
from tests.fake_clock import FakeClock
from tests.images import noise_png, record_decoded_sizes
from tests.servers import structured

pytestmark = pytest.mark.anyio


async def view(
    client: Client, decoded: list[tuple[int, int]] | None = None, **arguments: Any
) -> tuple[dict[str, Any], Image.Image, CallToolResult]:
    """The region's structured content, its image decoded, and the whole answer. With `decoded` (from
    `record_decoded_sizes`), the decode of the answer here is taken off it: it keeps the server's alone."""
    result = await client.call_tool("view_region", arguments)
    content = structured(result)
    image_block = result.content[0]
    assert isinstance(image_block, ImageContent), result.content
    assert image_block.mime_type == content["mimeType"]
    data = base64.b64decode(image_block.data)
    assert len(data) <= ANSWER_MAX_BYTES
    with Image.open(io.BytesIO(data)) as image:
        assert Image.MIME[image.format or ""] == content["mimeType"]
        image.load()
    if decoded is not None:
        assert decoded.pop() == image.size
    return content, image, result


def refusal(result: CallToolResult) -> str:
    assert result.is_error, result.content
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


@pytest.fixture
def noise_image(folders: dict[str, Path]) -> Path:
    """A 64×48 image of random pixels (the sandbox's upscale of it is not flat either)."""
    path = folders["images"] / "noise.png"
    path.write_bytes(noise_png((64, 48)))
    return path


async def upscaled(client: Client, image: Path, **arguments: Any) -> tuple[str, Path]:
    """Upscale `image` 2x (to 128×96) and wait for it: the job id and the saved result."""
    result = await client.call_tool(
        "upscale_v3", {"image": str(image), "upscaleFactor": 2, "wait": 20, **arguments}
    )
    job = structured(result)
    [output] = job["outputs"]
    return job["jobId"], Path(output["path"])


def pixels(image: Image.Image) -> bytes:
    return image.convert("RGB").tobytes()


async def test_crops_a_saved_result_at_one_to_one(
    client: Client, api: RecordingTransport, noise_image: Path
) -> None:
    job_id, saved = await upscaled(client, noise_image)
    before = len(api.requests)

    content, image, result = await view(client, jobId=job_id, x=10, y=20, width=50, height=40)

    assert content == {
        "imageWidth": 128, "imageHeight": 96, "x": 10, "y": 20, "width": 50, "height": 40, "scale": 1.0,
        "mimeType": "image/png",
    }  # fmt: skip
    with Image.open(saved) as full:
        assert pixels(image) == pixels(full.crop((10, 20, 60, 60)))
    assert isinstance(result.content[1], TextContent) and saved.name in result.content[1].text
    assert len(api.requests) == before  # the saved file, from the ledger: no request


async def test_clips_the_rectangle_to_the_image(client: Client, noise_image: Path) -> None:
    job_id, _ = await upscaled(client, noise_image)

    content, image, _ = await view(client, jobId=job_id, x=100, y=80, width=500, height=500)

    assert (content["x"], content["y"], content["width"], content["height"]) == (100, 80, 28, 16)
    assert image.size == (28, 16) and content["scale"] == 1.0


async def test_scales_a_region_down_to_max_edge_never_up(client: Client, noise_image: Path) -> None:
    job_id, saved = await upscaled(client, noise_image)

    down, image, _ = await view(client, jobId=job_id, x=0, y=0, width=128, height=96, maxEdge=32)
    same, whole, _ = await view(client, jobId=job_id, x=0, y=0, width=128, height=96, maxEdge=2048)

    assert image.size == (32, 24) and down["scale"] == 0.25
    assert (down["width"], down["height"]) == (128, 96)
    assert whole.size == (128, 96) and same["scale"] == 1.0
    with Image.open(saved) as full:
        assert pixels(whole) == pixels(full)


async def test_a_large_jpeg_decodes_reduced_and_is_cut_from_memory_again(
    client: Client, folders: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = folders["images"] / "large.jpg"
    Image.effect_noise((1600, 1200), 40).convert("RGB").save(path, "JPEG", quality=90)
    decoded = record_decoded_sizes(monkeypatch)
    whole = {"path": str(path), "x": 0, "y": 0, "width": 1600, "height": 1200}

    overview, image, _ = await view(client, decoded, **whole, maxEdge=512)
    assert (overview["imageWidth"], overview["imageHeight"]) == (1600, 1200)
    assert image.size == (512, 384) and overview["scale"] == 0.32
    assert decoded == [(800, 600)]  # JPEG draft: half size covers a 512-pixel answer

    detail, crop, _ = await view(client, decoded, path=str(path), x=1000, y=700, width=300, height=200)
    assert crop.size == (300, 200) and detail["scale"] == 1.0
    assert decoded == [(800, 600), (1600, 1200)]  # 1:1 needs the full size, once

    await view(client, decoded, **whole, maxEdge=256)
    await view(client, decoded, path=str(path), x=100, y=0, width=300, height=200)
    assert len(decoded) == 2  # both answered from the decodes kept


async def test_a_large_region_of_noise_stays_under_the_answer_limit(
    client: Client, folders: dict[str, Path]
) -> None:
    path = folders["images"] / "noise.png"
    path.write_bytes(noise_png((800, 800)))

    content, image, _ = await view(client, path=str(path), x=0, y=0, width=800, height=800, maxEdge=2048)

    assert content["mimeType"] == "image/jpeg" and content["width"] == 800
    assert image.size[0] <= 800 and content["scale"] == image.size[0] / 800


async def test_an_image_with_alpha_comes_back_as_png(client: Client, folders: dict[str, Path]) -> None:
    path = folders["images"] / "sprite.png"
    Image.new("RGBA", (900, 700), (10, 200, 30, 128)).save(path)

    content, image, _ = await view(client, path=str(path), x=0, y=0, width=900, height=700, maxEdge=600)

    assert content["mimeType"] == "image/png" and image.mode == "RGBA"
    assert image.size == (600, 467)
    pixel = image.getpixel((300, 200))
    assert isinstance(pixel, tuple)
    assert all(abs(got - wanted) <= 1 for got, wanted in zip(pixel, (10, 200, 30, 128), strict=True))


async def test_serves_the_original_of_a_job_from_its_local_file_or_else_fetches_it_once(
    client: Client, api: RecordingTransport, noise_image: Path, folders: dict[str, Path]
) -> None:
    sent = noise_image.read_bytes()
    job_id, _ = await upscaled(client, noise_image)
    before = len(api.requests)

    content, image, _ = await view(client, jobId=job_id, which="original", x=0, y=0, width=64, height=48)

    assert (content["imageWidth"], content["imageHeight"], content["scale"]) == (64, 48, 1.0)
    with Image.open(noise_image) as local:
        assert pixels(image) == pixels(local)
    assert len(api.requests) == before  # read from the file it was uploaded from

    noise_image.write_bytes(noise_png((64, 48)))  # no longer the content that was upscaled
    _, fetched, _ = await view(client, jobId=job_id, which="original", x=0, y=0, width=64, height=48)
    _, again, _ = await view(client, jobId=job_id, which="original", x=8, y=8, width=16, height=16)

    with Image.open(io.BytesIO(sent)) as original:
        assert pixels(fetched) == pixels(original)
        assert pixels(again) == pixels(original.crop((8, 8, 24, 24)))
    fetches = [r.url.path for r in api.requests[before:]]
    assert len(fetches) == 2 and fetches[0].startswith("/v1/assets/asset_")  # the asset, then its file
    [copy] = (folders["state"] / ORIGINALS_FOLDER).iterdir()
    assert copy.read_bytes() == sent


async def test_finds_a_result_download_assets_saved_and_a_copy_saved_again(
    client: Client, clock: FakeClock, noise_image: Path, folders: dict[str, Path]
) -> None:
    submitted = structured(await client.call_tool("upscale_v3", {"image": str(noise_image), "wait": 0}))
    job_id = submitted["jobId"]
    await clock.sleep(5)  # the job ends; nothing has saved it
    [first] = structured(await client.call_tool("download_assets", {"jobId": job_id}))["files"]

    _, image, _ = await view(client, jobId=job_id, x=0, y=0, width=128, height=96)
    with Image.open(first["path"]) as saved:
        assert pixels(image) == pixels(saved)

    Path(first["path"]).unlink()
    [again] = structured(await client.call_tool("download_assets", {"jobId": job_id, "outputDir": "again"}))[
        "files"
    ]
    content, _, result = await view(client, jobId=job_id, x=0, y=0, width=8, height=8)
    assert Path(again["path"]).parent == folders["output"] / "again"
    assert isinstance(result.content[1], TextContent) and Path(again["path"]).name in result.content[1].text
    assert content["imageWidth"] == 128


async def test_a_job_without_a_saved_result_says_to_wait_for_it(
    client: Client, api: RecordingTransport, noise_image: Path
) -> None:
    result = await client.call_tool("upscale_v3", {"image": str(noise_image), "wait": 0})
    job_id = structured(result)["jobId"]
    before = len(api.requests)

    text = refusal(
        await client.call_tool("view_region", {"jobId": job_id, "x": 0, "y": 0, "width": 8, "height": 8})
    )

    assert f"jobId: {job_id} has no saved result yet; call wait_for_jobs" in text
    assert len(api.requests) == before


async def test_an_output_the_job_does_not_have_is_refused(client: Client, noise_image: Path) -> None:
    job_id, _ = await upscaled(client, noise_image)

    arguments = {"jobId": job_id, "output": 1, "x": 0, "y": 0, "width": 8, "height": 8}
    text = refusal(await client.call_tool("view_region", arguments))

    assert f"output: job {job_id} has 1 saved output; give 0 to 0." in text


async def test_refuses_paths_it_may_not_read_with_no_request(
    client: Client, api: RecordingTransport, folders: dict[str, Path], tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere" / "secret.png"
    outside.parent.mkdir()
    outside.write_bytes(noise_png((16, 16)))
    hidden = folders["images"] / ".private" / "secret.png"
    hidden.parent.mkdir()
    hidden.write_bytes(noise_png((16, 16)))
    region = {"x": 0, "y": 0, "width": 8, "height": 8}

    away = refusal(await client.call_tool("view_region", {"path": str(outside), **region}))
    secret = refusal(await client.call_tool("view_region", {"path": str(hidden), **region}))
    url = refusal(await client.call_tool("view_region", {"path": "https://example.com/a.png", **region}))

    assert "path: " in away and "outside the folders this server may read" in away
    assert "path: " in secret and "hidden" in secret
    assert "path: " in url and "not a local file" in url
    assert api.requests == []


async def test_refuses_bad_rectangles_and_arguments_naming_the_field(
    client: Client, api: RecordingTransport, noise_image: Path
) -> None:
    image = str(noise_image)

    async def refused(**arguments: Any) -> str:
        return refusal(await client.call_tool("view_region", arguments))

    zero = await refused(path=image, x=0, y=0, width=0, height=8)
    negative = await refused(path=image, x=-1, y=0, width=8, height=8)
    beyond = await refused(path=image, x=64, y=0, width=8, height=8)
    below = await refused(path=image, x=0, y=48, width=8, height=8)
    tiny = await refused(path=image, x=0, y=0, width=8, height=8, maxEdge=8)
    neither = await refused(x=0, y=0, width=8, height=8)
    both = await refused(jobId="job_x", path=image, x=0, y=0, width=8, height=8)
    which = await refused(path=image, which="original", x=0, y=0, width=8, height=8)

    assert "width" in zero and "greater than or equal to 1" in zero
    assert "x\n" in negative and "greater than or equal to 0" in negative
    assert "x: 64 is outside the image, which is 64 pixels wide" in beyond
    assert "y: 48 is outside the image, which is 48 pixels tall" in below
    assert "maxEdge" in tiny
    assert "exactly one of jobId" in neither and "exactly one of jobId" in both
    assert "which: only with jobId" in which
    assert api.requests == []


async def test_an_image_over_the_pixel_cap_is_refused_naming_the_limit(
    client: Client, settings: Settings, folders: dict[str, Path]
) -> None:
    settings.max_input_pixels = 1_000
    path = folders["images"] / "big.png"
    path.write_bytes(noise_png((64, 48)))

    text = refusal(
        await client.call_tool("view_region", {"path": str(path), "x": 0, "y": 0, "width": 8, "height": 8})
    )

    assert "path: " in text and "SCENARIO_MAX_INPUT_PIXELS" in text and "64×48" in text


# --- the cache of decoded images, alone ------------------------------------------------------------


def test_the_decoded_images_kept_stay_within_their_pixel_bound_and_go_when_idle(tmp_path: Path) -> None:
    now = [0.0]
    cache = DecodedImages(max_pixels=5_000, idle_seconds=60, clock=lambda: now[0])
    sources = []
    for name, size in (("a.png", (60, 60)), ("b.png", (60, 60)), ("huge.png", (100, 100))):
        path = tmp_path / name
        path.write_bytes(noise_png(size))
        sources.append(RegionSource(path, "path", 1_000_000, "a test limit"))

    render_region(sources[0], 0, 0, 10, 10, 64, cache=cache)
    render_region(sources[1], 0, 0, 10, 10, 64, cache=cache)
    assert cache.pixels == 3_600  # b alone: a went to make room for it
    render_region(sources[2], 0, 0, 10, 10, 64, cache=cache)
    assert cache.pixels == 0  # too large to keep: decoded, cut, let go (and nothing kept beside it)

    render_region(sources[0], 0, 0, 10, 10, 64, cache=cache)
    now[0] += 59
    cache.sweep()
    assert cache.pixels == 3_600
    now[0] += 1
    cache.sweep()
    assert cache.pixels == 0
