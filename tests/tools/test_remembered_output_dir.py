"""A job outlives the call that submitted it, and keeps the folder that call asked for: a later wait_for_jobs
or download_assets (by jobId) saves it there, unless given its own outputDir."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from tests.servers import structured

pytestmark = pytest.mark.anyio


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    return structured(await client.call_tool(tool, arguments))


async def submit_into(client: Client, image: Path, output_dir: str) -> dict[str, Any]:
    return await call(client, "upscale_v3", image=str(image), upscaleFactor=2, outputDir=output_dir, wait=0)


async def test_wait_for_jobs_saves_into_the_folder_the_upscale_call_named(
    client: Client, sample_image: Path, folders: dict[str, Path]
) -> None:
    submitted = await submit_into(client, sample_image, "sub1")
    assert submitted["status"] not in ("success", "failure", "canceled")
    assert str(folders["output"] / "sub1") in submitted["next"]  # the answer says where it will land

    waited = await call(client, "wait_for_jobs", jobIds=[submitted["jobId"]], timeout=20)

    [job] = waited["jobs"]
    [output] = job["outputs"]
    saved = Path(output["path"])
    assert job["status"] == "success" and saved.is_file()
    assert saved.parent == folders["output"] / "sub1"
    assert saved.name.startswith("castle_upscale-v3_x2_")
    assert job["notice"] is None


async def test_an_explicit_output_dir_wins_and_download_assets_uses_the_remembered_one(
    client: Client, sample_image: Path, folders: dict[str, Path]
) -> None:
    submitted = await submit_into(client, sample_image, "sub1")

    waited = await call(client, "wait_for_jobs", jobIds=[submitted["jobId"]], timeout=20, outputDir="other")
    downloaded = await call(client, "download_assets", jobId=submitted["jobId"])
    elsewhere = await call(client, "download_assets", jobId=submitted["jobId"], outputDir="third")

    assert Path(waited["jobs"][0]["outputs"][0]["path"]).parent == folders["output"] / "other"
    [file] = downloaded["files"]
    assert Path(file["path"]).parent == folders["output"] / "sub1" and Path(file["path"]).is_file()
    assert Path(file["path"]).name.startswith("castle_upscale-v3_x2_")
    assert Path(elsewhere["files"][0]["path"]).parent == folders["output"] / "third"


async def test_a_remembered_folder_no_longer_usable_falls_back_to_the_output_folder(
    client: Client, sample_image: Path, folders: dict[str, Path]
) -> None:
    submitted = await submit_into(client, sample_image, "gone")
    (folders["output"] / "gone").write_text("a file where the folder was to be")

    result = await client.call_tool("wait_for_jobs", {"jobIds": [submitted["jobId"]], "timeout": 20})

    waited = structured(result)
    [job] = waited["jobs"]
    assert Path(job["outputs"][0]["path"]).parent == folders["output"]
    assert job["notice"] and "output folder" in job["notice"]
    text = " ".join(block.text for block in result.content if block.type == "text")
    assert str(folders["output"] / "gone") in text and "instead" in text
