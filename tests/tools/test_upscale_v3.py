"""upscale_v3 through the MCP client, against the sandbox API served in-process."""

from __future__ import annotations

import base64
import io
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import ImageContent, ResourceLink, TextContent
from PIL import Image

from scenario_upscale_mcp.sandbox.app import Sandbox
from tests.conftest import RecordingTransport
from tests.fake_clock import FakeClock
from tests.images import png_bytes

pytestmark = pytest.mark.anyio


def generate_bodies(api: RecordingTransport) -> list[dict[str, Any]]:
    return [
        json.loads(r.content)
        for r in api.requests
        if r.method == "POST" and r.url.path.startswith("/v1/generate/")
    ]


async def test_upscales_a_local_file_and_saves_the_result(
    client: Client, api: RecordingTransport, sample_image: Path, folders: dict[str, Path]
) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    result = await client.call_tool(
        "upscale_v3",
        {"image": str(sample_image), "upscaleFactor": 2, "wait": 20},
        progress_callback=on_progress,
    )

    assert not result.is_error, result.content
    job = result.structured_content
    assert job is not None
    assert job["status"] == "success" and job["progress"] == 1.0
    assert job["model"] == "model_upscale-v3"
    assert job["creativeUnitsCost"] is not None and job["creativeUnitsCost"] > 0
    assert job["error"] is None and job["hint"] is None
    [output] = job["outputs"]
    saved = Path(output["path"])
    assert saved.parent == folders["output"]
    assert saved.name.startswith("castle_upscale-v3_x2_") and saved.suffix == ".png"
    assert output["assetId"].startswith("asset_")
    assert (output["width"], output["height"]) == (128, 96)
    assert output["bytes"] == saved.stat().st_size
    assert output["mimeType"] == "image/png"
    with Image.open(saved) as image:
        assert image.size == (128, 96)

    # One upload, one submission.
    assert api.paths("POST").count("/v1/assets") == 1
    assert len(generate_bodies(api)) == 1

    # Progress came from the job's own progress, rising to done: strictly, as the protocol requires
    # (a status change at the same progress, queued then in-progress at 0%, is not reported again).
    values = [value for value, _, _ in seen]
    assert values and values[-1] == 1.0
    assert all(earlier < later for earlier, later in itertools.pairwise(values)), values
    assert all(total == 1.0 for _, total, _ in seen)

    # A text summary, a preview image, and a link to the full file.
    kinds = [type(block) for block in result.content]
    assert kinds == [TextContent, ImageContent, ResourceLink]
    text, preview, link = result.content
    assert isinstance(text, TextContent) and str(saved) in text.text
    assert isinstance(preview, ImageContent)
    with Image.open(io.BytesIO(base64.b64decode(preview.data))) as image:
        assert image.size == (128, 96)
    assert isinstance(link, ResourceLink)
    assert str(link.uri) == saved.as_uri() and link.size == output["bytes"]


async def test_sends_the_documented_input_names_with_the_image_as_an_asset_id(
    client: Client, api: RecordingTransport, sample_image: Path, sandbox: Sandbox
) -> None:
    result = await client.call_tool(
        "upscale_v3",
        {"image": sample_image.as_uri(), "upscaleFactor": 4, "style": "anime", "seed": 7, "wait": 0},
    )

    assert not result.is_error, result.content
    [body] = generate_bodies(api)
    # Only what the caller set (the server's own options such as `wait` never go to the API).
    assert body == {"image": body["image"], "upscaleFactor": 4, "style": "anime", "seed": 7}
    assert body["image"] in sandbox.assets
    assert isinstance(body["upscaleFactor"], int)


async def test_a_call_with_only_the_image_sends_only_the_image_and_names_the_file_x2(
    client: Client, api: RecordingTransport, sample_image: Path, sandbox: Sandbox
) -> None:
    result = await client.call_tool("upscale_v3", {"image": str(sample_image), "wait": 20})

    assert not result.is_error, result.content
    [body] = generate_bodies(api)
    assert body == {"image": body["image"]} and body["image"] in sandbox.assets
    job = result.structured_content
    assert job is not None and job["status"] == "success"
    [output] = job["outputs"]
    assert Path(output["path"]).name.startswith("castle_upscale-v3_x2_")  # the default factor, unsent


@pytest.mark.parametrize("dry_run", [False, True], ids=["submitted", "dry-run"])
async def test_a_preset_alone_is_sent_alone_so_the_api_applies_it(
    client: Client, api: RecordingTransport, sandbox: Sandbox, dry_run: bool
) -> None:
    async with api_asset(sandbox) as asset_id:
        result = await client.call_tool(
            "upscale_v3", {"image": asset_id, "preset": "creative", "dryRun": dry_run, "wait": 0}
        )

    assert not result.is_error, result.content
    assert generate_bodies(api) == [{"image": asset_id, "preset": "creative"}]
    assert (sandbox.jobs == {}) is dry_run


@pytest.mark.parametrize("dry_run", [False, True], ids=["submitted", "dry-run"])
async def test_a_value_equal_to_its_default_is_sent_when_the_caller_sets_it(
    client: Client, api: RecordingTransport, sandbox: Sandbox, dry_run: bool
) -> None:
    arguments = {
        "upscaleFactor": 2,
        "preset": "precise",
        "style": "standard",
        "tileStyle": False,
        "prompt": "",
    }
    async with api_asset(sandbox) as asset_id:
        result = await client.call_tool(
            "upscale_v3", {"image": asset_id, **arguments, "dryRun": dry_run, "wait": 0}
        )

    assert not result.is_error, result.content
    assert generate_bodies(api) == [{"image": asset_id, **arguments}]


async def test_the_listed_schema_still_shows_every_documented_default(client: Client) -> None:
    [tool] = [tool for tool in (await client.list_tools()).tools if tool.name == "upscale_v3"]
    defaults = {name: prop.get("default") for name, prop in tool.input_schema["properties"].items()}

    assert defaults == {
        "image": None, "style": "standard", "upscaleFactor": 2, "preset": "precise", "styleImages": None,
        "styleStrength": 0.5, "tileStyle": False, "prompt": "", "negativePrompt": "", "guidanceScale": 6,
        "controlnetConditioningScale": 0.8, "strength": 0.1, "fractality": 0, "loraDetailsScale": 0,
        "seed": None, "strengthDecay": 0.8, "overrideEmbeddings": False,
        "dryRun": False, "wait": 45, "outputDir": None, "allowDuplicate": False, "confirmCost": None,
    }  # fmt: skip


async def test_a_repeated_call_is_the_same_request_but_setting_a_default_is_another(
    client: Client, api: RecordingTransport, sandbox: Sandbox
) -> None:
    """The request's identity is its body: the same arguments set, the same job; a default set
    explicitly is a different body (the API may treat it differently next to a preset), so a new job."""
    async with api_asset(sandbox) as asset_id:
        first = await client.call_tool("upscale_v3", {"image": asset_id, "wait": 0})
        again = await client.call_tool("upscale_v3", {"image": asset_id, "wait": 0})
        explicit = await client.call_tool("upscale_v3", {"image": asset_id, "upscaleFactor": 2, "wait": 0})

    jobs = [result.structured_content["jobId"] for result in (first, again, explicit)]
    assert jobs[0] == jobs[1] != jobs[2]
    assert generate_bodies(api) == [{"image": asset_id}, {"image": asset_id, "upscaleFactor": 2}]


async def test_dry_run_returns_the_cost_and_submits_nothing(
    client: Client, api: RecordingTransport, sandbox: Sandbox
) -> None:
    async with api_asset(sandbox) as asset_id:
        result = await client.call_tool("upscale_v3", {"image": asset_id, "upscaleFactor": 8, "dryRun": True})

    assert not result.is_error, result.content
    job = result.structured_content
    assert job is not None
    assert job["dryRun"] is True and job["jobId"] is None and job["status"] == "not-submitted"
    assert job["creativeUnitsCost"] > 0
    assert sandbox.jobs == {}
    [request] = [r for r in api.requests if r.url.path.startswith("/v1/generate/")]
    assert request.url.params["dryRun"] == "true"
    assert json.loads(request.content) == {"image": asset_id, "upscaleFactor": 8}  # what was set


async def test_a_job_that_outlasts_wait_answers_with_its_id_and_the_next_step(
    client: Client, api: RecordingTransport, sandbox: Sandbox
) -> None:
    sandbox.job_seconds = 30
    async with api_asset(sandbox) as asset_id:
        result = await client.call_tool("upscale_v3", {"image": asset_id, "wait": 0})

    job = result.structured_content
    assert job is not None and not result.is_error
    assert job["jobId"] in sandbox.jobs
    assert job["status"] not in ("success", "failure", "canceled")
    assert "get_job" in job["next"] and job["jobId"] in job["next"]
    assert job["outputs"] == []
    assert not any(r.url.path.startswith("/v1/jobs/") for r in api.requests)  # wait=0: no polling


async def test_a_failed_job_reports_the_api_error_and_hint_verbatim(client: Client, sandbox: Sandbox) -> None:
    sandbox.faults.fail_next_jobs = 1
    async with api_asset(sandbox) as asset_id:
        result = await client.call_tool("upscale_v3", {"image": asset_id, "wait": 20})

    job = result.structured_content
    assert job is not None
    stored = sandbox.jobs[job["jobId"]]
    assert job["status"] == "failure"
    assert job["error"] and job["error"] == stored_metadata(stored)["error"]
    assert job["hint"] and job["hint"] == stored_metadata(stored)["hint"]
    assert job["error"] in result.content[0].text  # type: ignore[union-attr]
    assert job["outputs"] == []


async def test_style_images_from_local_files_are_uploaded_once_each(
    client: Client, api: RecordingTransport, sample_image: Path, folders: dict[str, Path]
) -> None:
    style = folders["images"] / "style.png"
    style.write_bytes(png_bytes(color=(10, 20, 200)))
    result = await client.call_tool(
        "upscale_v3",
        {"image": str(sample_image), "styleImages": [str(style), str(style), str(sample_image)], "wait": 0},
    )

    assert not result.is_error, result.content
    assert api.paths("POST").count("/v1/assets") == 2  # two distinct files
    [body] = generate_bodies(api)
    assert len(body["styleImages"]) == 3
    assert body["styleImages"][0] == body["styleImages"][1]
    assert body["styleImages"][2] == body["image"]


async def test_cancelling_the_call_stops_polling(
    client: Client, api: RecordingTransport, sandbox: Sandbox, clock: FakeClock
) -> None:
    sandbox.job_seconds = 60
    async with api_asset(sandbox) as asset_id:
        async with clock.move_on_after(0.5):
            await client.call_tool("upscale_v3", {"image": asset_id, "wait": 30})
        polls_at_cancel = len(api.paths("GET"))
        await clock.sleep(0.3)  # several poll intervals: a still-running handler would poll again

    assert polls_at_cancel >= 1
    assert len(api.paths("GET")) == polls_at_cancel


async def test_a_plan_without_the_action_is_explained_and_never_retried(
    client: Client, api: RecordingTransport, sandbox: Sandbox
) -> None:
    sandbox.faults.plan_limit = 0  # actionLimit 0: the plan does not include the action at all
    async with api_asset(sandbox) as asset_id:
        result = await client.call_tool("upscale_v3", {"image": asset_id})

    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert "plan does not include jobs running at once" in text and "Retrying cannot help" in text
    assert sandbox.jobs == {}
    assert len([path for path in api.paths("POST") if path.startswith("/v1/generate/")]) == 1


async def test_a_submission_answered_with_500_is_not_sent_again_and_its_job_is_found(
    client: Client, api: RecordingTransport, sandbox: Sandbox
) -> None:
    sandbox.faults.accept_then_500 = 1
    async with api_asset(sandbox) as asset_id:
        result = await client.call_tool("upscale_v3", {"image": asset_id, "wait": 20})

    assert not result.is_error, result.content
    job = result.structured_content
    assert job is not None
    assert len(generate_bodies(api)) == 1
    assert list(sandbox.jobs) == [job["jobId"]]  # billed once, never twice
    assert "answer to the submission was lost" in job["notice"]
    assert job["status"] == "success" and len(job["outputs"]) == 1
    assert api.paths("GET").count("/v1/jobs") == 1  # the job list was searched once


# --- helpers -------------------------------------------------------------------------------------


def stored_metadata(job: Any) -> dict[str, Any]:
    """The sandbox's own record of a job, as the API would show it."""
    view = job.to_api() if hasattr(job, "to_api") else job
    metadata: dict[str, Any] = view["metadata"]
    return metadata


class api_asset:
    """An asset made directly in the sandbox (as if uploaded earlier), not through the server."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    async def __aenter__(self) -> str:
        return self.sandbox.add_asset(png_bytes(), "source.png")

    async def __aexit__(self, *exc_info: object) -> None:
        return None
