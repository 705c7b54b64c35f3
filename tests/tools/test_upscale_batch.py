"""upscale_batch through the MCP client: folders and patterns, dry runs, the plan's parallel limit, a batch
sent twice, and its parameters checked exactly as the model tool checks them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from scenario_upscale_mcp.config import Settings
from scenario_upscale_mcp.sandbox.app import Sandbox
from tests.conftest import RecordingTransport
from tests.images import png_bytes
from tests.servers import structured

pytestmark = pytest.mark.anyio


def texture_folder(root: Path) -> Path:
    """A folder as game developers have them: textures, a note, a hidden file, a sub-folder."""
    folder = root / "textures"
    (folder / "more").mkdir(parents=True)
    (folder / "stone.png").write_bytes(png_bytes(32, 32, color=(120, 110, 100)))
    (folder / "wood.png").write_bytes(png_bytes(32, 32, color=(140, 90, 40)))
    (folder / "grass.PNG").write_bytes(png_bytes(24, 24, color=(40, 160, 40)))
    (folder / "notes.txt").write_text("stone and wood, 2x")
    (folder / ".hidden.png").write_bytes(png_bytes(16, 16))
    (folder / "more" / "metal.png").write_bytes(png_bytes(16, 16, color=(90, 90, 100)))
    return folder


def generates(api: RecordingTransport, *, dry_run: bool = False) -> int:
    """Paid (or, with dry_run, priced) generate requests sent."""
    return sum(
        request.method == "POST"
        and request.url.path.startswith("/v1/generate/")
        and ("dryRun" in request.url.params) == dry_run
        for request in api.requests
    )


async def test_a_folder_with_a_pattern_submits_its_images_and_lists_the_rest(
    client: Client, api: RecordingTransport, folders: dict[str, Path]
) -> None:
    folder = texture_folder(folders["images"])

    answer = structured(
        await client.call_tool(
            "upscale_batch",
            {
                "model": "upscale_texture",
                "folder": str(folder),
                "pattern": "*.png",
                "parameters": {"upscaleFactor": 2},
            },
        )
    )

    submitted = {item["image"]: item for item in answer["images"]}
    assert set(submitted) == {"grass.PNG", "stone.png", "wood.png"}
    assert all(item["jobId"] and item["status"] != "not-submitted" for item in submitted.values())
    skipped = {item["path"]: item["reason"] for item in answer["skipped"]}
    assert set(skipped) == {".hidden.png", "more/", "notes.txt"}, skipped
    assert answer["batchId"].startswith("batch-") and answer["notSubmitted"] == 0
    assert generates(api) == 3


async def test_a_dry_run_quotes_each_image_and_the_total_and_submits_nothing(
    client: Client, api: RecordingTransport, folders: dict[str, Path]
) -> None:
    folder = texture_folder(folders["images"])

    answer = structured(
        await client.call_tool(
            "upscale_batch",
            {"model": "upscale_v3", "folder": str(folder), "pattern": "*.png", "dryRun": True},
        )
    )

    costs = [item["creativeUnitsCost"] for item in answer["images"]]
    assert len(costs) == 3 and all(cost > 0 for cost in costs)
    assert answer["totalCost"] == sum(costs) and answer["dryRun"] is True
    assert all(item["jobId"] is None for item in answer["images"])
    assert generates(api) == 0 and generates(api, dry_run=True) == 3


async def test_a_batch_beyond_the_plans_parallel_limit_completes_and_waits_into_one_folder(
    client: Client, api: RecordingTransport, sandbox: Sandbox, folders: dict[str, Path]
) -> None:
    sandbox.faults.plan_limit = 2
    images = []
    for index in range(5):
        path = folders["images"] / f"tile_{index}.png"
        path.write_bytes(png_bytes(20 + index, 20))
        images.append(str(path))

    answer = structured(
        await client.call_tool("upscale_batch", {"model": "upscale_v3", "images": images, "wait": 120})
    )

    assert answer["notSubmitted"] == 0, answer
    job_ids = [item["jobId"] for item in answer["images"]]
    assert len(set(job_ids)) == 5
    waited = structured(
        await client.call_tool("wait_for_jobs", {"batchId": answer["batchId"], "timeout": 60})
    )
    assert waited["finished"] == 5 and {job["jobId"] for job in waited["jobs"]} == set(job_ids)
    batch_folder = folders["output"] / answer["batchId"]
    assert answer["outputDir"] == str(batch_folder)
    assert len(list(batch_folder.iterdir())) == 5


async def test_the_same_batch_sent_twice_bills_once(
    client: Client, api: RecordingTransport, folders: dict[str, Path]
) -> None:
    folder = texture_folder(folders["images"])
    arguments: dict[str, Any] = {"model": "upscale_texture", "folder": str(folder), "pattern": "*.png"}

    first = structured(await client.call_tool("upscale_batch", arguments))
    second = structured(await client.call_tool("upscale_batch", arguments))

    assert second["batchId"] == first["batchId"]
    assert [item["jobId"] for item in second["images"]] == [item["jobId"] for item in first["images"]]
    assert generates(api) == 3


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        ({"upscaleFactor": 32}, "parameters.upscaleFactor"),
        ({"style": "watercolour"}, "parameters.style"),
        ({"upscale_factor": 2}, "parameters.upscale_factor: unknown argument"),
        ({"image": "x.png"}, "parameters.image"),
        ({"wait": 0}, "parameters.wait: give it as upscale_batch's own `wait`"),
        ({"allowDuplicate": True}, "parameters.allowDuplicate: not available in a batch"),
    ],
)
async def test_parameters_are_checked_as_the_model_tool_checks_them_before_any_request(
    client: Client, api: RecordingTransport, sample_image: Path, parameters: dict[str, Any], expected: str
) -> None:
    result = await client.call_tool(
        "upscale_batch", {"model": "upscale_v3", "images": [str(sample_image)], "parameters": parameters}
    )

    assert result.is_error
    assert expected in str(result.content)
    assert api.requests == []


async def test_an_image_upscaled_just_before_joins_the_batch_without_a_second_job(
    client: Client, api: RecordingTransport, folders: dict[str, Path]
) -> None:
    folder = texture_folder(folders["images"])
    single = structured(await client.call_tool("upscale_v3", {"image": str(folder / "stone.png"), "wait": 0}))

    answer = structured(
        await client.call_tool("upscale_batch", {"model": "upscale_v3", "folder": str(folder)})
    )

    by_image = {item["image"]: item for item in answer["images"]}
    assert by_image["stone.png"]["jobId"] == single["jobId"]
    assert "already submitted" in by_image["stone.png"]["notice"]
    assert generates(api) == 3  # the single one, then the two others
    waited = structured(
        await client.call_tool("wait_for_jobs", {"batchId": answer["batchId"], "timeout": 60})
    )
    assert single["jobId"] in {job["jobId"] for job in waited["jobs"]}
    assert waited["finished"] == 3


async def test_recursive_descends_into_sub_folders(client: Client, folders: dict[str, Path]) -> None:
    folder = texture_folder(folders["images"])

    answer = structured(
        await client.call_tool(
            "upscale_batch", {"model": "upscale_v3", "folder": str(folder), "recursive": True, "dryRun": True}
        )
    )

    assert [item["image"] for item in answer["images"]] == [
        "grass.PNG",
        "more/metal.png",
        "stone.png",
        "wood.png",
    ]


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({}, "images, folder: give exactly one"),
        ({"images": ["/x.png"], "folder": "/"}, "images, folder: give exactly one"),
        ({"folder": "relative/textures"}, "folder:"),
        ({"folder": "/", "pattern": "../*.png"}, "pattern:"),
        (
            {"images": ["/x.png"], "parameters": {"loras": ["a"], "lorasScale": []}},
            "parameters.lorasScale: has 0 entries but loras has 1",
        ),
    ],
)
async def test_bad_batches_are_refused_naming_the_argument_before_any_request(
    client: Client, api: RecordingTransport, arguments: dict[str, Any], expected: str
) -> None:
    result = await client.call_tool("upscale_batch", {"model": "upscale_texture", **arguments})

    assert result.is_error
    assert expected in str(result.content)
    assert api.requests == []


class TestTheBatchLimit:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        """At most 3 images a batch, to see the limit refused."""
        return settings.model_copy(update={"max_batch_images": 3})

    async def test_more_images_than_a_batch_may_hold_are_refused(
        self, client: Client, api: RecordingTransport, folders: dict[str, Path]
    ) -> None:
        paths = [str(folders["images"] / f"{index}.png") for index in range(4)]

        result = await client.call_tool("upscale_batch", {"model": "upscale_v3", "images": paths})

        assert result.is_error
        said = str(result.content)
        assert "4 images, more than the 3" in said and "SCENARIO_MAX_BATCH_IMAGES" in said
        assert api.requests == []


async def test_identical_files_in_one_batch_share_one_job_and_are_counted_once(
    client: Client, api: RecordingTransport, folders: dict[str, Path]
) -> None:
    same = png_bytes(30, 30)
    for name in ("a.png", "copy_of_a.png"):
        (folders["images"] / name).write_bytes(same)

    answer = structured(
        await client.call_tool("upscale_batch", {"model": "upscale_v3", "folder": str(folders["images"])})
    )

    first, copy = answer["images"]
    assert copy["jobId"] == first["jobId"] and "same content as a.png" in copy["notice"]
    assert answer["totalCost"] == first["creativeUnitsCost"]
    assert generates(api) == 1


async def test_an_image_that_does_not_decode_refuses_the_batch_by_its_own_sentence(
    client: Client, api: RecordingTransport, folders: dict[str, Path]
) -> None:
    good = folders["images"] / "good.png"
    good.write_bytes(png_bytes())
    broken = folders["images"] / "broken.png"
    broken.write_bytes(png_bytes()[:60])

    result = await client.call_tool(
        "upscale_batch", {"model": "upscale_v3", "images": [str(good), str(broken)]}
    )

    assert result.is_error
    said = str(result.content)
    assert f"{broken}: image:" in said, said
    assert api.requests == []
