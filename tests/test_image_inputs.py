"""The reading rules for image inputs, through the MCP client: every refusal names its rule, sends nothing."""

from __future__ import annotations

import base64
import errno
import io
import os
import stat
from pathlib import Path
from typing import Literal
from urllib.parse import quote_from_bytes

import httpx
import pytest
from mcp import Client
from PIL import Image

from scenario_upscale_mcp.api.client import ScenarioClient
from scenario_upscale_mcp.api.errors import InputError
from scenario_upscale_mcp.app import create_server
from scenario_upscale_mcp.config import Settings
from scenario_upscale_mcp.images import reading
from scenario_upscale_mcp.images.reading import check_readable
from scenario_upscale_mcp.images.references import DataReference, UrlReference
from scenario_upscale_mcp.images.sources import decode_data_uri, fetch_url
from tests.conftest import RecordingTransport
from tests.fake_clock import FakeClock
from tests.images import png_bytes, write_noise_png

pytestmark = pytest.mark.anyio


async def refusal(client: Client, image: str, **extra: object) -> str:
    result = await client.call_tool("upscale_v3", {"image": image, **extra})
    assert result.is_error, result.content
    text: str = result.content[0].text  # type: ignore[union-attr]
    return text


async def test_a_file_outside_the_allowed_folders_is_refused(
    client: Client, api: RecordingTransport, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere.png"
    outside.write_bytes(png_bytes())
    text = await refusal(client, str(outside))
    assert "outside the folders this server may read" in text and "SCENARIO_ALLOWED_DIRS" in text
    assert api.requests == []


async def test_a_symlink_pointing_outside_is_refused(
    client: Client, api: RecordingTransport, tmp_path: Path, folders: dict[str, Path]
) -> None:
    outside = tmp_path / "secret.png"
    outside.write_bytes(png_bytes())
    link = folders["images"] / "innocent.png"
    link.symlink_to(outside)
    text = await refusal(client, str(link))
    assert "outside the folders this server may read" in text
    assert api.requests == []


@pytest.mark.parametrize("hidden", [".ssh", ".aws/creds"])
async def test_files_in_hidden_folders_are_refused(
    client: Client, api: RecordingTransport, folders: dict[str, Path], hidden: str
) -> None:
    folder = folders["images"] / hidden
    folder.mkdir(parents=True)
    path = folder / "key.png"
    path.write_bytes(png_bytes())
    text = await refusal(client, str(path))
    assert "hidden" in text and hidden.split("/")[0] in text
    assert api.requests == []


async def test_a_file_that_is_not_an_image_is_refused(
    client: Client, api: RecordingTransport, folders: dict[str, Path]
) -> None:
    path = folders["images"] / "notes.png"
    path.write_text("not really a picture")
    text = await refusal(client, str(path))
    assert "does not decode as an image" in text
    assert api.requests == []


async def test_an_image_over_the_pixel_cap_is_refused_as_a_bomb(
    client: Client, api: RecordingTransport, folders: dict[str, Path]
) -> None:
    path = folders["images"] / "bomb.png"
    buffer = io.BytesIO()
    Image.new("1", (12_000, 10_000)).save(buffer, "PNG")  # 120 MP, tiny on disk
    path.write_bytes(buffer.getvalue())
    text = await refusal(client, str(path))
    assert "12000×10000" in text and "decompression bomb" in text
    assert api.requests == []


async def test_a_file_over_the_size_cap_is_refused(
    settings: Settings, api: RecordingTransport, folders: dict[str, Path], mode: str, clock: FakeClock
) -> None:
    path = folders["images"] / "huge.png"
    path.write_bytes(png_bytes() + os.urandom(300_000))
    small_cap = settings.model_copy(update={"max_input_bytes": 200_000})
    async with Client(create_server(small_cap, transport=api, clock=clock), mode=mode) as client:
        text = await refusal(client, str(path))
    assert "the limit is 200,000 bytes" in text and "SCENARIO_MAX_INPUT_BYTES" in text
    assert api.requests == []


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("http://example.com/cat.png", "only https:// URLs are accepted"),
        ("castle.png", "neither an asset id"),
        ("art/castle.png", "neither an asset id"),
        ("file://otherhost/share/cat.png", "must name a local file"),
        ("data:image/png;base64,@@@not-base64@@@", "does not decode"),
        ("data:text/plain,hello", "does not decode as an image"),
    ],
)
async def test_unsupported_references_are_refused(
    client: Client, api: RecordingTransport, reference: str, expected: str
) -> None:
    text = await refusal(client, reference)
    assert expected in text
    assert api.requests == []


async def test_a_missing_file_is_refused(
    client: Client, api: RecordingTransport, folders: dict[str, Path]
) -> None:
    text = await refusal(client, str(folders["images"] / "nope.png"))
    assert "no file at" in text
    assert api.requests == []


async def test_a_bad_style_image_refuses_the_whole_call_before_any_upload(
    client: Client, api: RecordingTransport, sample_image: Path, tmp_path: Path
) -> None:
    text = await refusal(client, str(sample_image), styleImages=[str(tmp_path / "x.png")])
    assert text.count("styleImages[0]") == 1
    assert api.requests == []


async def test_a_tilde_path_is_expanded(
    client: Client, api: RecordingTransport, folders: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(folders["images"].parent))
    (folders["images"] / "home.png").write_bytes(png_bytes())
    result = await client.call_tool("upscale_v3", {"image": "~/images/home.png", "wait": 0})
    assert not result.is_error, result.content
    assert api.paths("POST")[0] == "/v1/assets"


async def test_an_output_dir_outside_the_allowed_places_is_refused(
    client: Client, api: RecordingTransport, sample_image: Path, tmp_path: Path
) -> None:
    text = await refusal(client, str(sample_image), outputDir=str(tmp_path / "anywhere"))
    assert "outputDir" in text and "outside the output folder" in text
    assert api.requests == []


async def test_an_output_dir_inside_the_output_folder_is_created(
    client: Client, sample_image: Path, folders: dict[str, Path]
) -> None:
    result = await client.call_tool(
        "upscale_v3", {"image": str(sample_image), "outputDir": "props/x2", "wait": 20}
    )
    assert not result.is_error, result.content
    assert result.structured_content is not None
    saved = Path(result.structured_content["outputs"][0]["path"])
    assert saved.parent == folders["output"] / "props" / "x2"


async def test_an_output_dir_that_is_a_file_is_refused_before_paying(
    client: Client, api: RecordingTransport, sample_image: Path, folders: dict[str, Path]
) -> None:
    (folders["output"] / "notes.txt").write_text("not a folder")
    text = await refusal(client, str(sample_image), outputDir="notes.txt/x2")
    assert "is a file, not a folder" in text
    assert api.requests == []


async def test_a_malformed_url_is_refused_clearly(client: Client, api: RecordingTransport) -> None:
    text = await refusal(client, "https://exa mple.com/x.png")
    assert "image URL" in text
    assert api.requests == []


@pytest.mark.parametrize("job_id", ["../../generate/custom/model_upscale-v3", "job_1?dryRun=true", "job 1"])
async def test_job_ids_cannot_reach_other_api_paths(
    client: Client, api: RecordingTransport, job_id: str
) -> None:
    result = await client.call_tool("get_job", {"jobId": job_id})
    assert result.is_error
    assert "jobId" in result.content[0].text  # type: ignore[union-attr]
    assert api.requests == []


# --- data: URIs ------------------------------------------------------------------------------------


async def uploaded_size(client: Client, image: str) -> tuple[int, int]:
    result = await client.call_tool("upload_image", {"image": image})
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content["width"], result.structured_content["height"]


async def test_a_percent_encoded_data_uri_is_decoded_to_its_bytes(
    client: Client, api: RecordingTransport
) -> None:
    # RFC 2397's other form: no ;base64, each %XX one byte (PNG starts with %89PNG%0D%0A%1A%0A).
    uri = "data:image/png," + quote_from_bytes(png_bytes(20, 10))
    assert uri.startswith("data:image/png,%89PNG%0D%0A%1A%0A")
    assert await uploaded_size(client, uri) == (20, 10)
    assert api.paths("POST")[0] == "/v1/assets"


async def test_a_base64_data_uri_may_carry_percent_escapes_and_line_breaks(client: Client) -> None:
    encoded = base64.b64encode(png_bytes(14, 6)).decode()
    wrapped = "\n".join(encoded[i : i + 60] for i in range(0, len(encoded), 60))
    uri = "data:image/png;base64," + wrapped.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    assert await uploaded_size(client, uri) == (14, 6)


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("data:image/png,%89PNG%0D%0A%1A%0A%00%00garbage", "does not decode as an image"),
        ("data:image/png," + "%00" * 70_000, "holds more than"),
        ("data:image/png;base64,iVBOR%%%", "base64 payload does not decode"),
    ],
)
async def test_percent_encoded_data_uris_get_the_image_checks(
    settings: Settings, api: RecordingTransport, mode: str, reference: str, expected: str, clock: FakeClock
) -> None:
    small_cap = settings.model_copy(update={"max_input_bytes": 60_000})
    async with Client(create_server(small_cap, transport=api, clock=clock), mode=mode) as client:
        text = await refusal(client, reference)
    assert expected in text
    assert "base64" not in text or "base64" in reference
    assert api.requests == []


def test_a_data_uri_that_cannot_be_written_names_its_field(settings: Settings, tmp_path: Path) -> None:
    uri = DataReference("data:image/png;base64," + base64.b64encode(png_bytes()).decode())
    with pytest.raises(InputError) as missing:
        decode_data_uri(uri, settings, tmp_path / "gone", "styleImages[1]")
    text = str(missing.value)
    assert text.startswith("styleImages[1]: the data: URI's image could not be written")
    assert "No such file or directory" in text and str(tmp_path / "gone") in text


async def test_a_full_temporary_folder_is_a_clear_error_naming_the_field(
    client: Client, api: RecordingTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_bytes = Path.write_bytes

    def disk_full(self: Path, data: bytes) -> int:
        if self.name.endswith("-data"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return write_bytes(self, data)

    monkeypatch.setattr(Path, "write_bytes", disk_full)
    uri = "data:image/png;base64," + base64.b64encode(png_bytes()).decode()
    text = await refusal(client, uri)
    assert "image: the data: URI's image could not be written to the temporary folder" in text
    assert "No space left on device" in text and "TMPDIR" in text
    assert api.requests == []


async def test_a_url_image_that_cannot_be_saved_names_its_field(settings: Settings, tmp_path: Path) -> None:
    web = httpx.MockTransport(lambda request: httpx.Response(200, content=png_bytes()))

    async def resolve(host: str, port: int) -> list[str]:
        return ["93.184.215.14"]

    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("a file where the scratch folder should be")
    async with ScenarioClient(settings, transport=web) as scenario:
        with pytest.raises(InputError) as failed:
            await fetch_url(
                scenario, UrlReference("https://example.com/a.png"), settings, resolve, not_a_folder, "image"
            )
    assert str(failed.value).startswith("image: the image at https://example.com/a.png could not be saved")


CopyWay = Literal["kernel", "refused", "silent", "absent"]


@pytest.fixture(params=["kernel", "refused", "silent", "absent"])
def copy_way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How the private copy of an input is made: by `copy_file_range` (a list of the sizes it copied is
    returned), or with it refused (EXDEV), copying nothing at first (as some file systems answer), or
    absent (another system): then a plain loop copies."""
    way: CopyWay = request.param
    kernel_copies: list[int] = []
    real = os.copy_file_range

    def recorded(source: int, sink: int, count: int) -> int:
        copied = real(source, sink, count)
        kernel_copies.append(copied)
        return copied

    def refused(source: int, sink: int, count: int) -> int:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    # Small steps, so every way copies in several of them.
    monkeypatch.setattr(reading, "KERNEL_COPY_BYTES", 256 * 1024)
    monkeypatch.setattr(reading, "COPY_CHUNK_BYTES", 64 * 1024)
    if way == "kernel":
        monkeypatch.setattr(os, "copy_file_range", recorded)
    elif way == "refused":
        monkeypatch.setattr(os, "copy_file_range", refused)
    elif way == "silent":
        monkeypatch.setattr(os, "copy_file_range", lambda source, sink, count: 0)
    else:
        monkeypatch.delattr(os, "copy_file_range")
    return kernel_copies


@pytest.mark.skipif(not hasattr(os, "copy_file_range"), reason="the kernel copy is Linux's")
def test_the_private_copy_is_the_file_byte_for_byte_whichever_way_it_is_made(
    settings: Settings, folders: dict[str, Path], tmp_path: Path, copy_way: list[int]
) -> None:
    original = write_noise_png(folders["images"] / "noise.png", 1.2)
    checked = check_readable(original, settings, "image", tmp_path)

    assert checked.path != original and checked.path.read_bytes() == original.read_bytes()
    assert checked.size == original.stat().st_size
    if copy_way:  # the kernel did the copy, in steps
        assert sum(copy_way) == checked.size and len(copy_way) > 2


@pytest.mark.skipif(not hasattr(os, "copy_file_range"), reason="the kernel copy is Linux's")
def test_a_file_that_grows_past_the_cap_while_copied_is_refused(
    settings: Settings,
    folders: dict[str, Path],
    tmp_path: Path,
    copy_way: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The size read when the file is opened is under the cap; the bytes that follow are not."""
    original = write_noise_png(folders["images"] / "noise.png", 1.2)
    cap = original.stat().st_size - 1000
    real_fstat = os.fstat

    def smaller(descriptor: int) -> os.stat_result:
        status = real_fstat(descriptor)
        fields = list(status)
        fields[stat.ST_SIZE] = min(status.st_size, cap)
        return os.stat_result(fields)

    monkeypatch.setattr(os, "fstat", smaller)
    with pytest.raises(InputError, match=f"grew past the limit of {cap:,} bytes while it was being read"):
        check_readable(original, settings.model_copy(update={"max_input_bytes": cap}), "image", tmp_path)
