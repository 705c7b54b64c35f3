"""The layers below the service take their real dependencies, so each can be called alone: here with an
API client on the simulator, a ledger in a temporary folder and the real clock; no server, no service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from scenario_upscale_mcp.api.client import ScenarioClient
from scenario_upscale_mcp.clock import AnyioClock
from scenario_upscale_mcp.config import Settings
from scenario_upscale_mcp.images.reading import LocalImage
from scenario_upscale_mcp.images.uploads import Uploader, upload_image
from scenario_upscale_mcp.jobs.async_ledger import AsyncLedger
from scenario_upscale_mcp.jobs.ledger import Ledger
from scenario_upscale_mcp.jobs.submission import Submission, Submitter, submit
from scenario_upscale_mcp.sandbox.app import Sandbox
from tests.conftest import SANDBOX_URL, RecordingTransport
from tests.images import png_bytes

pytestmark = pytest.mark.anyio


@dataclass
class Layers:
    client: ScenarioClient
    ledger: AsyncLedger
    api: RecordingTransport
    sandbox: Sandbox


@pytest.fixture
async def layers(tmp_path: Path) -> AsyncIterator[Layers]:
    sandbox = Sandbox(job_seconds=30)
    api = RecordingTransport(httpx.ASGITransport(app=sandbox.app))
    settings = Settings(api_key="k", api_secret="s", base_url=SANDBOX_URL, state_dir=tmp_path)
    ledger = AsyncLedger(lambda: Ledger.in_folder(tmp_path))
    async with ScenarioClient(settings, transport=api) as client:
        yield Layers(client, ledger, api, sandbox)
    ledger.close()


async def test_submit_alone_sends_an_identical_request_once(layers: Layers) -> None:
    submitter = Submitter(client=layers.client, ledger=layers.ledger, clock=AnyioClock(), unrecorded={})
    asset = layers.sandbox.add_asset(png_bytes(), "a.png")

    async def body() -> dict[str, Any]:
        return {"image": asset}

    submission = Submission(
        model_id="model_upscale-v3",
        identity={"image": asset},
        make_body=body,
        parameters={"image": asset},
        source_stem="a",
        upscale_factor=2.0,
    )
    first = await submit(submitter, submission, allow_duplicate=False, wait_budget=0)
    again = await submit(submitter, submission, allow_duplicate=False, wait_budget=0)

    assert again.job.job_id == first.job.job_id and again.notice
    assert list(layers.sandbox.jobs) == [first.job.job_id]
    recorded = await layers.ledger(lambda db: db.get_job(first.job.job_id))
    assert recorded is not None and recorded.model == "model_upscale-v3"


async def test_upload_image_alone_uploads_one_content_once(layers: Layers, tmp_path: Path) -> None:
    uploader = Uploader(client=layers.client, ledger=layers.ledger, clock=AnyioClock())
    path = tmp_path / "castle.png"
    path.write_bytes(png_bytes())
    image = LocalImage(
        path=path, size=path.stat().st_size, width=64, height=48, mime_type="image/png", digest="a" * 64
    )

    first = await upload_image(uploader, image, "a" * 64)
    again = await upload_image(uploader, image, "a" * 64)

    assert (first.reused, again.reused) == (False, True) and again.asset_id == first.asset_id
    assert layers.api.paths("POST").count("/v1/assets") == 1
