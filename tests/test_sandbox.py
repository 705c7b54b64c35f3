"""The Scenario API simulator, driven over HTTP as a client would (in-process, no sockets but one test)."""

from __future__ import annotations

import argparse
import base64
import io
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, fields
from datetime import UTC, datetime
from typing import Any

import anyio
import httpx
import pytest
from PIL import Image

from scenario_upscale_mcp.cli import build_parser
from scenario_upscale_mcp.clock import Clock
from scenario_upscale_mcp.sandbox.app import Sandbox
from scenario_upscale_mcp.sandbox.faults import FAULT_KINDS, Faults
from scenario_upscale_mcp.sandbox.serving import serve_in_thread
from scenario_upscale_mcp.sandbox.uploads import MIN_PART_BYTES
from scenario_upscale_mcp.sandbox.wire_format import SANDBOX_HEADER
from tests.conftest import simulator
from tests.fake_clock import FakeClock
from tests.images import noise_png

pytestmark = pytest.mark.anyio

BASE_URL = "http://sandbox.test/v1"
V3 = "model_upscale-v3"
TEXTURE = "model_sc-upscale-flux-texture"
TERMINAL = {"success", "failure", "canceled"}


def image_bytes(size: tuple[int, int] = (40, 30), image_format: str = "PNG") -> bytes:
    """A small gradient, so a resize has real pixels to work on."""
    width, height = size
    image = Image.new("RGB", size)
    image.putdata([(x * 255 // width, y * 255 // height, 90) for y in range(height) for x in range(width)])
    buffer = io.BytesIO()
    image.save(buffer, image_format)
    return buffer.getvalue()


@asynccontextmanager
async def api_client(sim: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=sim.app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, auth=("key", "secret")) as client:
        yield client


@pytest.fixture
def sim(shared_clock: Clock) -> Sandbox:
    """The simulator on the shared fake clock (tests/conftest.py): its jobs take 0.2 s of virtual time."""
    return simulator(shared_clock, job_seconds=0.2)


@pytest.fixture
async def http(sim: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    """An authenticated API client; the app runs in-process."""
    transport = httpx.ASGITransport(app=sim.app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, auth=("key", "secret")) as client:
        yield client


@pytest.fixture
async def storage(sim: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    """A client without credentials, for signed CDN and part URLs (as for S3 and a CDN)."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app)) as client:
        yield client


async def upload(http: httpx.AsyncClient, data: bytes, name: str = "input.png") -> str:
    response = await http.post("/assets", json={"image": base64.b64encode(data).decode(), "name": name})
    assert response.status_code == 200, response.text
    asset_id: str = response.json()["asset"]["id"]
    return asset_id


async def generate(http: httpx.AsyncClient, model: str, body: dict[str, Any]) -> httpx.Response:
    return await http.post(f"/generate/custom/{model}", json=body)


async def wait_for_job(
    http: httpx.AsyncClient, sim: Sandbox, job_id: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Poll until terminal, every 5 ms on the simulator's clock; return the final job and every snapshot seen."""
    snapshots: list[dict[str, Any]] = []
    with anyio.fail_after(5):
        while True:
            response = await http.get(f"/jobs/{job_id}")
            assert response.status_code == 200, response.text
            job: dict[str, Any] = response.json()["job"]
            snapshots.append(job)
            if job["status"] in TERMINAL:
                return job, snapshots
            await sim.clock.sleep(0.005)


async def wait_for_upload(http: httpx.AsyncClient, sim: Sandbox, upload_id: str) -> dict[str, Any]:
    with anyio.fail_after(5):
        while True:
            upload: dict[str, Any] = (await http.get(f"/uploads/{upload_id}")).json()["upload"]
            if upload["status"] in {"imported", "failed"}:
                return upload
            await sim.clock.sleep(0.005)


def error_of(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert set(body) <= {"reason", "name", "details"}
    return body


# --- identity and auth ---------------------------------------------------------------------------


async def test_every_response_says_it_comes_from_the_simulator(
    http: httpx.AsyncClient, storage: httpx.AsyncClient
) -> None:
    index = await storage.get("http://sandbox.test/")
    assert index.json()["simulator"] is True
    assert "not Scenario's API" in index.json()["message"]
    for response in (
        index,
        await storage.get(f"{BASE_URL}/jobs/job_x"),  # 401
        await http.get("/no/such/route"),  # 404
        await storage.get("http://sandbox.test/cdn/asset_x/x.png?expires=1&sig=bad"),  # 403
    ):
        assert response.headers[SANDBOX_HEADER] == "simulator"


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Basic " + base64.b64encode(b"key:").decode(),
        "Basic " + base64.b64encode(b":secret").decode(),
        "Basic not-base64!",
        "Bearer key:secret",
    ],
)
async def test_api_routes_need_a_basic_key_and_secret(sim: Sandbox, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url=BASE_URL) as client:
        response = await client.get("/jobs", headers=headers)

    assert response.status_code == 401
    assert error_of(response)["name"] == "UnauthorizedError"


async def test_the_model_schemas_list_every_documented_input_in_the_json_apis_shape(
    http: httpx.AsyncClient, sim: Sandbox
) -> None:
    v3 = (await http.get(f"/models/{V3}")).json()["model"]
    texture = (await http.get(f"/models/{TEXTURE}", params={"projectId": "proj_1"})).json()["model"]

    v3_inputs = {item["name"]: item for item in v3["inputs"]}
    texture_inputs = {item["name"]: item for item in texture["inputs"]}
    assert list(v3_inputs) == [
        "image", "style", "upscaleFactor", "preset", "styleImages", "styleStrength", "tileStyle", "prompt",
        "negativePrompt", "guidanceScale", "controlnetConditioningScale", "strength", "fractality",
        "loraDetailsScale", "seed", "strengthDecay", "overrideEmbeddings",
    ]  # fmt: skip
    # `required` is a rule object, present only on required inputs; types are the JSON API's.
    assert v3_inputs["image"]["required"] == {"always": True}
    assert [name for name, item in {**v3_inputs, **texture_inputs}.items() if "required" in item] == ["image"]
    assert (v3_inputs["image"]["type"], v3_inputs["image"]["kind"]) == ("file", "image")
    assert (v3_inputs["styleImages"]["type"], v3_inputs["styleImages"]["maxLength"]) == ("file_array", 10)
    assert (texture_inputs["imagePrompt"]["type"], texture_inputs["imagePrompt"]["maxLength"]) == (
        "file_array",
        4,
    )
    assert (texture_inputs["loras"]["type"], texture_inputs["loras"]["default"]) == ("model_array", [])
    assert texture_inputs["lorasScale"]["type"] == "number_array"
    assert {item["type"] for item in v3["inputs"] + texture["inputs"]} == {
        "file", "file_array", "model_array", "number_array", "string", "number", "boolean",
    }  # fmt: skip
    assert (v3_inputs["upscaleFactor"]["min"], v3_inputs["upscaleFactor"]["max"]) == (1, 16)
    assert v3_inputs["tileStyle"]["default"] is False
    assert "3d-rendered" in v3_inputs["style"]["allowedValues"]
    assert (texture_inputs["upscaleFactor"]["min"], texture_inputs["upscaleFactor"]["max"]) == (2, 8)
    assert texture_inputs["baseModel"]["allowedValues"] == ["FLUX.1-dev", "FLUX.1-Krea-dev"]
    assert (v3["id"], v3["type"], v3["custom"]) == (V3, "custom", True)

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url=BASE_URL) as public:
        with_public_token = await public.get(f"/models/{V3}", headers={"Authorization": "public-auth-token"})
    assert with_public_token.status_code == 200
    unknown = await http.get("/models/model_nope")
    assert unknown.status_code == 404
    assert error_of(unknown)["name"] == "NotFoundError"


# --- assets and the CDN --------------------------------------------------------------------------


async def test_an_uploaded_image_round_trips_through_the_signed_cdn(
    http: httpx.AsyncClient, storage: httpx.AsyncClient
) -> None:
    data = image_bytes((40, 30))
    asset_id = await upload(http, data, "castle.png")
    assert asset_id.startswith("asset_")

    asset = (await http.get(f"/assets/{asset_id}")).json()["asset"]
    assert asset["id"] == asset_id
    assert (asset["kind"], asset["status"], asset["mimeType"]) == ("image", "success", "image/png")
    assert asset["properties"] == {"size": len(data), "width": 40, "height": 30}
    assert asset["createdAt"].endswith("Z")
    assert asset["url"].startswith(f"http://sandbox.test/cdn/{asset_id}/castle.png?expires=")

    download = await storage.get(asset["url"])
    assert download.status_code == 200
    assert download.content == data
    assert download.headers["content-type"] == "image/png"
    assert download.headers["content-length"] == str(len(data))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"image": "@@not base64@@", "name": "x.png"}, "image"),
        ({"image": base64.b64encode(b"plain text, not pixels").decode(), "name": "x.png"}, "image"),
        ({"image": base64.b64encode(image_bytes()).decode(), "collection": "c"}, "collection"),
        ({"name": "x.png"}, "image"),
        ({"image": base64.b64encode(image_bytes()).decode()}, "name"),  # Required in the SDK's params
    ],
)
async def test_asset_uploads_that_are_not_images_or_lack_a_name_are_refused(
    http: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await http.post("/assets", json=body)

    assert response.status_code == 400
    error = error_of(response)
    assert error["name"] == "BadRequestError"
    assert error["details"]["field"] == field


async def test_an_image_sent_as_a_data_url_or_bare_base64_is_accepted_and_its_form_recorded(
    http: httpx.AsyncClient, storage: httpx.AsyncClient, sim: Sandbox
) -> None:
    jpeg = image_bytes(image_format="JPEG")
    data_url = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()
    as_data_url = await http.post("/assets", json={"image": data_url, "name": "photo.jpg"})
    as_base64 = await http.post("/assets", json={"image": base64.b64encode(jpeg).decode(), "name": "b.jpg"})
    refused = await http.post("/assets", json={"image": "data:image/jpeg," + data_url[23:], "name": "c.jpg"})

    assert as_data_url.status_code == 200 and as_base64.status_code == 200
    asset = as_data_url.json()["asset"]
    assert asset["mimeType"] == "image/jpeg"
    assert (await storage.get(asset["url"])).content == jpeg  # the data URL's prefix is not in the bytes
    assert refused.status_code == 400 and "base64" in error_of(refused)["reason"]
    assert sim.asset_image_forms == ["data_url", "base64"]
    state = (await storage.get("http://sandbox.test/_sandbox/state")).json()
    assert state["assetImageForms"] == ["data_url", "base64"]
    await storage.post("http://sandbox.test/_sandbox/reset")
    assert sim.asset_image_forms == []


async def test_an_unknown_asset_is_not_found(http: httpx.AsyncClient) -> None:
    response = await http.get("/assets/asset_missing")

    assert response.status_code == 404
    assert error_of(response) == {
        "reason": "Asset not found",
        "name": "NotFoundError",
        "details": {"assetId": "asset_missing"},
    }


async def test_cdn_urls_are_signed_and_can_be_made_to_expire(
    http: httpx.AsyncClient, storage: httpx.AsyncClient, sim: Sandbox
) -> None:
    asset_id = await upload(http, image_bytes())
    url = (await http.get(f"/assets/{asset_id}")).json()["asset"]["url"]

    tampered = await storage.get(url.replace(asset_id, asset_id + "x", 1))
    assert tampered.status_code == 403

    sim.faults.expire_urls = True
    expired = await storage.get(url)
    assert expired.status_code == 403
    assert expired.text == "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"


async def test_signed_urls_expire_on_the_sandboxs_clock_after_24_hours() -> None:
    clock = FakeClock(wall_start=datetime(2026, 1, 1, tzinfo=UTC).timestamp(), tick=0)
    sim = Sandbox(clock=clock)
    async with api_client(sim) as http, httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app)) as cdn:
        asset_id = await upload(http, image_bytes())
        url = (await http.get(f"/assets/{asset_id}")).json()["asset"]["url"]

        clock.advance(24 * 3600)
        assert (await cdn.get(url)).status_code == 200
        clock.advance(1)
        expired = await cdn.get(url)

    assert expired.status_code == 403
    assert expired.text == "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"


@pytest.mark.parametrize(
    ("target", "pillow_format"),
    [("jpeg", "JPEG"), ("jpg", "JPEG"), ("webp", "WEBP"), ("png", "PNG"), ("gif", "GIF"), ("tiff", "TIFF")],
)
async def test_download_converts_to_the_requested_format(
    http: httpx.AsyncClient, storage: httpx.AsyncClient, target: str, pillow_format: str
) -> None:
    asset_id = await upload(http, image_bytes((40, 30)))
    response = await http.post(f"/assets/{asset_id}/download", json={"targetFormat": target})

    assert response.status_code == 200
    converted = await storage.get(response.json()["url"])
    assert converted.headers["content-type"] == response.json()["mimeType"]
    with Image.open(io.BytesIO(converted.content)) as image:
        assert (image.format, image.size) == (pillow_format, (40, 30))


async def test_download_refuses_an_unknown_format(http: httpx.AsyncClient) -> None:
    asset_id = await upload(http, image_bytes())
    response = await http.post(f"/assets/{asset_id}/download", json={"targetFormat": "bmp"})

    assert response.status_code == 400
    assert error_of(response)["details"]["field"] == "targetFormat"


async def test_download_says_when_the_sdk_knows_a_format_the_sandbox_cannot_write(
    http: httpx.AsyncClient,
) -> None:
    asset_id = await upload(http, image_bytes())
    response = await http.post(f"/assets/{asset_id}/download", json={"targetFormat": "heif"})

    assert response.status_code == 400
    assert error_of(response)["reason"].startswith("The sandbox cannot convert an image to heif")


async def test_a_truncated_download_promises_every_byte_and_sends_half(
    http: httpx.AsyncClient, storage: httpx.AsyncClient, sim: Sandbox
) -> None:
    data = image_bytes((200, 150))
    asset_id = await upload(http, data)
    url = (await http.get(f"/assets/{asset_id}")).json()["asset"]["url"]
    sim.faults.truncate_downloads = 1

    truncated = await storage.get(url)
    whole = await storage.get(url)

    assert truncated.headers["content-length"] == str(len(data))
    assert truncated.content == data[: len(data) // 2]
    assert whole.content == data
    assert sim.faults.truncate_downloads == 0


# --- generate --------------------------------------------------------------------------------------


async def test_a_dry_run_answers_269_with_the_cost_and_creates_no_job(
    http: httpx.AsyncClient, sim: Sandbox
) -> None:
    asset_id = await upload(http, image_bytes((1000, 500)))

    costs = {}
    for factor in (2, 4):
        response = await http.post(
            f"/generate/custom/{V3}",
            params={"dryRun": "true"},
            json={"image": asset_id, "upscaleFactor": factor},
        )
        assert response.status_code == 269
        body = response.json()
        # As the real API answers: the costs and an empty job (SCENARIO_API.md §1).
        assert body == {
            "creativeUnitsCost": body["creativeUnitsCost"],
            "creativeUnitsDiscount": 0,
            "costDetails": {"custom-generation": body["creativeUnitsCost"]},
            "job": {},
        }
        costs[factor] = body["creativeUnitsCost"]
    texture = await http.post(f"/generate/custom/{TEXTURE}?dryRun=true", json={"image": asset_id})
    at_api_tier = await http.post(f"/generate/custom/{TEXTURE}?dryRun=api", json={"image": asset_id})

    # The documented made-up formula: base + ceil(price per output megapixel * input MP * factor²).
    assert costs == {2: 2 + math.ceil(1.0 * 0.5 * 4), 4: 2 + math.ceil(1.0 * 0.5 * 16)}
    assert texture.json()["creativeUnitsCost"] == 4 + math.ceil(2.0 * 0.5 * 4)
    assert at_api_tier.status_code == 269 and at_api_tier.json() == texture.json()
    assert sim.jobs == {}
    assert (await http.get("/jobs")).json()["jobs"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [({"dryRun": "1"}, "dryRun"), ({"dryRun": "false"}, "dryRun"), ({"dry_run": "true"}, "dry_run")],
)
async def test_a_dry_run_flag_the_api_does_not_know_is_refused_rather_than_billed(
    http: httpx.AsyncClient, sim: Sandbox, query: dict[str, str], field: str
) -> None:
    asset_id = await upload(http, image_bytes())

    response = await http.post(f"/generate/custom/{V3}", params=query, json={"image": asset_id})

    assert response.status_code == 400
    assert error_of(response)["details"]["field"] == field
    assert sim.jobs == {}


async def test_a_real_generate_answers_200_with_the_job_and_its_costs(http: httpx.AsyncClient) -> None:
    asset_id = await upload(http, image_bytes((1000, 500)))

    response = await http.post(
        f"/generate/custom/{V3}", params={"projectId": "proj_1"}, json={"image": asset_id}
    )

    assert response.status_code == 200
    body = response.json()
    assert body["job"]["status"] == "pending" and body["job"]["jobId"].startswith("job_")
    assert body["creativeUnitsCost"] == 2 + math.ceil(1.0 * 0.5 * 4) == body["job"]["billing"]["cuCost"]
    assert body["creativeUnitsDiscount"] == 0
    assert sum(body["costDetails"].values()) == body["creativeUnitsCost"]


@pytest.mark.parametrize(
    ("model", "extra", "field", "says"),
    [
        (V3, {"targetWidth": 2048}, "targetWidth", "Unknown field"),
        (V3, {"dryRun": True}, "dryRun", "Unknown field"),
        (V3, {"upscaleFactor": 20}, "upscaleFactor", "between 1 and 16"),
        (V3, {"upscaleFactor": "2"}, "upscaleFactor", "between 1 and 16"),
        (TEXTURE, {"upscaleFactor": 1}, "upscaleFactor", "between 2 and 8"),
        (V3, {"strength": 0.05}, "strength", "between 0.1 and 1"),
        (V3, {"seed": 2147483648}, "seed", "between 0 and 2147483647"),
        (V3, {"style": "watercolor"}, "style", "one of standard, cartoon"),
        (TEXTURE, {"baseModel": "SDXL"}, "baseModel", "one of FLUX.1-dev, FLUX.1-Krea-dev"),
        (V3, {"preset": "fast"}, "preset", "one of precise, balanced, creative"),
        (V3, {"tileStyle": "yes"}, "tileStyle", "boolean"),
        (V3, {"prompt": 3}, "prompt", "string"),
        (TEXTURE, {"lorasScale": ["x"]}, "lorasScale", "number"),
        (V3, {"styleImages": "__11_assets__"}, "styleImages", "at most 10 items"),
        (TEXTURE, {"imagePrompt": "__5_assets__"}, "imagePrompt", "at most 4 items"),
        (V3, {"image": None}, "image", "asset id"),
    ],
)
async def test_invalid_inputs_are_400_naming_the_field_and_what_is_allowed(
    http: httpx.AsyncClient, sim: Sandbox, model: str, extra: dict[str, Any], field: str, says: str
) -> None:
    asset_id = await upload(http, image_bytes())
    body: dict[str, Any] = {"image": asset_id}
    for key, value in extra.items():
        if isinstance(value, str) and value.startswith("__"):
            value = [asset_id] * int(value.strip("_").split("_")[0])
        body[key] = value

    response = await generate(http, model, body)

    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["name"] == "BadRequestError"
    assert error["details"]["field"] == field
    assert f'"{field}' in error["reason"] and says in error["reason"]
    assert sim.jobs == {}


async def test_the_image_is_required(http: httpx.AsyncClient) -> None:
    response = await generate(http, TEXTURE, {"upscaleFactor": 2})

    assert response.status_code == 400
    assert error_of(response)["details"]["field"] == "image"


@pytest.mark.parametrize(("model", "field"), [(V3, "image"), (V3, "styleImages"), (TEXTURE, "imagePrompt")])
async def test_asset_ids_in_inputs_must_exist(http: httpx.AsyncClient, model: str, field: str) -> None:
    asset_id = await upload(http, image_bytes())
    body: dict[str, Any] = {"image": asset_id}
    body[field] = "asset_missing" if field == "image" else [asset_id, "asset_missing"]

    response = await generate(http, model, body)

    assert response.status_code == 404
    assert error_of(response)["details"] == {"assetId": "asset_missing", "field": field}


async def test_a_bare_scalar_where_an_array_is_expected_is_silently_dropped(http: httpx.AsyncClient) -> None:
    asset_id = await upload(http, image_bytes())

    response = await generate(http, V3, {"image": asset_id, "styleImages": asset_id})

    assert response.status_code == 200
    assert response.json()["job"]["metadata"]["input"] == {"image": asset_id}


async def test_an_unknown_model_is_not_found(http: httpx.AsyncClient) -> None:
    asset_id = await upload(http, image_bytes())
    response = await generate(http, "model_nope", {"image": asset_id})

    assert response.status_code == 404
    assert error_of(response)["name"] == "NotFoundError"


# --- jobs ------------------------------------------------------------------------------------------


async def test_a_job_moves_through_the_real_statuses_to_a_really_upscaled_image(
    http: httpx.AsyncClient, storage: httpx.AsyncClient, sim: Sandbox
) -> None:
    asset_id = await upload(http, image_bytes((40, 30)))
    inputs = {"image": asset_id, "upscaleFactor": 3, "style": "anime", "seed": 7}

    accepted = await generate(http, V3, inputs)
    assert accepted.status_code == 200
    assert accepted.json()["creativeUnitsCost"] == accepted.json()["job"]["billing"]["cuCost"]
    job, snapshots = await wait_for_job(http, sim, accepted.json()["job"]["jobId"])

    order = ["pending", "queued", "warming-up", "in-progress", "finalizing", "success"]
    seen = [snapshot["status"] for snapshot in snapshots]
    assert seen == sorted(seen, key=order.index)
    progress = [snapshot["progress"] for snapshot in snapshots]
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert [entry["status"] for entry in job["statusHistory"]] == order
    assert job["jobType"] == "inference"
    assert job["metadata"]["input"] == inputs
    assert job["billing"]["cuDiscount"] == 0
    assert job["createdAt"].endswith("Z") and job["updatedAt"] == job["statusHistory"][-1]["date"]

    [output_id] = job["metadata"]["assetIds"]
    output = (await http.get(f"/assets/{output_id}")).json()["asset"]
    assert (output["mimeType"], output["properties"]["width"], output["properties"]["height"]) == (
        "image/png",
        120,
        90,
    )
    pixels = await storage.get(output["url"])
    with Image.open(io.BytesIO(pixels.content)) as image:
        assert (image.format, image.size) == ("PNG", (120, 90))


async def test_a_fake_clock_drives_a_ten_minute_job_to_success_without_waiting_for_it() -> None:
    clock = FakeClock(wall_start=datetime(2026, 1, 1, tzinfo=UTC).timestamp(), tick=0)
    sim = Sandbox(job_seconds=600, clock=clock)
    async with api_client(sim) as http:
        asset_id = await upload(http, image_bytes((40, 30)))
        accepted = await generate(http, V3, {"image": asset_id, "upscaleFactor": 2})
        job_id = accepted.json()["job"]["jobId"]
        # The pixels take (a little) real time on their thread; the timeline takes none.
        assert await anyio.to_thread.run_sync(sim.jobs[job_id].render_finished.wait, 10)

        seen = []
        for seconds in (0, 60, 60, 120, 300, 60):  # at 0 s, 1, 2, 4, 9 and 10 minutes
            clock.advance(seconds)
            job = (await http.get(f"/jobs/{job_id}")).json()["job"]
            seen.append((job["status"], job["progress"]))

    assert seen == [
        ("pending", 0.0),
        ("queued", 0.0),
        ("warming-up", 0.0),
        ("in-progress", 0.164),
        ("finalizing", 0.93),
        ("success", 1.0),
    ]
    # Its dates are the fake clock's too: created at its start, done ten minutes later.
    assert job["createdAt"] == "2026-01-01T00:00:00.000Z"
    assert job["updatedAt"] == job["statusHistory"][-1]["date"] == "2026-01-01T00:10:00.000Z"
    [output_id] = job["metadata"]["assetIds"]
    assert (sim.assets[output_id].width, sim.assets[output_id].height) == (80, 60)


async def test_outputs_are_capped_at_the_simulators_max_output_edge(clock: FakeClock) -> None:
    sim = simulator(clock, job_seconds=0.05, max_output_edge=100)
    transport = httpx.ASGITransport(app=sim.app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, auth=("k", "s")) as http:
        asset_id = await upload(http, image_bytes((40, 30)))
        job_id = (await generate(http, TEXTURE, {"image": asset_id, "upscaleFactor": 4})).json()["job"][
            "jobId"
        ]
        job, _ = await wait_for_job(http, sim, job_id)

    [output_id] = job["metadata"]["assetIds"]
    assert (sim.assets[output_id].width, sim.assets[output_id].height) == (100, 75)


async def test_fail_next_jobs_makes_the_next_job_fail_with_an_error_and_a_hint(
    http: httpx.AsyncClient, sim: Sandbox
) -> None:
    asset_id = await upload(http, image_bytes())
    sim.faults.fail_next_jobs = 1

    failed, _ = await wait_for_job(
        http, sim, (await generate(http, V3, {"image": asset_id})).json()["job"]["jobId"]
    )
    succeeded, _ = await wait_for_job(
        http, sim, (await generate(http, V3, {"image": asset_id})).json()["job"]["jobId"]
    )

    assert failed["status"] == "failure"
    assert "simulated" in failed["metadata"]["error"].lower()
    assert "sandbox" in failed["metadata"]["hint"]
    assert "assetIds" not in failed["metadata"]
    assert failed["statusHistory"][-1]["status"] == "failure"
    assert succeeded["status"] == "success"
    assert sim.jobs[failed["jobId"]].to_api()["metadata"]["error"] == failed["metadata"]["error"]


async def test_the_plan_limit_answers_429_until_a_running_job_finishes(
    http: httpx.AsyncClient, sim: Sandbox
) -> None:
    asset_id = await upload(http, image_bytes())
    sim.faults.plan_limit = 1
    sim.faults.retry_after_seconds = 2
    first = await generate(http, V3, {"image": asset_id})

    refused = await generate(http, V3, {"image": asset_id})

    assert refused.status_code == 429
    assert error_of(refused)["name"] == "PlanLimitReachedError"
    assert error_of(refused)["details"] == {
        "actionName": "parallel-custom-jobs",
        "actionLimit": 1,
        "actionValue": 1,
        "limitScope": "team",
    }
    assert refused.headers["retry-after"] == "2"
    assert len(sim.jobs) == 1
    await wait_for_job(http, sim, first.json()["job"]["jobId"])
    assert (await generate(http, V3, {"image": asset_id})).status_code == 200


async def test_a_plan_without_the_action_answers_429_with_action_limit_0_even_with_nothing_running(
    http: httpx.AsyncClient, sim: Sandbox, storage: httpx.AsyncClient
) -> None:
    asset_id = await upload(http, image_bytes())
    await storage.post("http://sandbox.test/_sandbox/faults", json={"plan_limit": 0})

    refused = [await generate(http, V3, {"image": asset_id}) for _ in range(2)]

    assert [response.status_code for response in refused] == [429, 429]
    error = error_of(refused[0])
    assert error["name"] == "PlanLimitReachedError"
    assert error["details"]["actionName"] == "parallel-custom-jobs"
    assert error["details"]["actionLimit"] == 0 and error["details"]["actionValue"] == 0
    assert "does not include" in error["reason"]
    assert sim.jobs == {}


async def test_a_model_the_plan_lacks_answers_403_naming_the_required_plan(
    http: httpx.AsyncClient, sim: Sandbox, storage: httpx.AsyncClient
) -> None:
    asset_id = await upload(http, image_bytes())
    await storage.post("http://sandbox.test/_sandbox/faults", json={"restricted_models": [TEXTURE]})

    restricted = await generate(http, TEXTURE, {"image": asset_id})
    estimate = await http.post(f"/generate/custom/{TEXTURE}?dryRun=true", json={"image": asset_id})
    allowed = await generate(http, V3, {"image": asset_id})

    assert restricted.status_code == 403 and estimate.status_code == 403
    error = error_of(restricted)
    assert error["name"] == "ModelAccessRestrictedError"
    assert error["details"]["modelId"] == TEXTURE and error["details"]["requiredPlan"]
    assert (await http.get(f"/models/{TEXTURE}")).status_code == 200  # the schema stays readable
    assert allowed.status_code == 200
    assert len(sim.jobs) == 1


async def test_accept_then_500_bills_exactly_one_job_and_answers_500(
    http: httpx.AsyncClient, sim: Sandbox
) -> None:
    asset_id = await upload(http, image_bytes())
    sim.faults.accept_then_500 = 1

    response = await generate(http, V3, {"image": asset_id})

    assert response.status_code == 500
    assert error_of(response)["name"] == "InternalServerError"
    assert len(sim.jobs) == 1
    [listed] = (await http.get("/jobs")).json()["jobs"]
    assert listed["metadata"]["input"] == {"image": asset_id}


async def test_server_errors_answer_500_before_anything_else(sim: Sandbox) -> None:
    sim.faults.server_errors = 2
    sim.faults.retry_after_seconds = 0.5
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url=BASE_URL) as anonymous:
        answers = [await anonymous.get("/jobs") for _ in range(3)]

    assert [answer.status_code for answer in answers] == [500, 500, 401]
    assert answers[0].headers["retry-after"] == "0.5"
    assert "retry-after" not in answers[2].headers


async def test_latency_slows_every_api_answer(http: httpx.AsyncClient, sim: Sandbox) -> None:
    sim.faults.latency_seconds = 0.1
    started = sim.clock.now()

    await http.get("/jobs")

    assert sim.clock.now() - started >= 0.1


async def test_cancel_is_refused_by_default_as_the_real_api_usually_does(
    http: httpx.AsyncClient, sim: Sandbox
) -> None:
    sim.job_seconds = 30
    asset_id = await upload(http, image_bytes())
    job_id = (await generate(http, V3, {"image": asset_id})).json()["job"]["jobId"]

    response = await http.post(f"/jobs/{job_id}/action", json={"action": "cancel"})

    assert response.status_code == 400
    assert error_of(response) == {"reason": "Cannot cancel this type of job", "name": "BadRequestError"}
    assert (await http.get(f"/jobs/{job_id}")).json()["job"]["status"] != "canceled"


async def test_cancel_when_allowed_ends_the_job_but_not_a_finished_one(
    http: httpx.AsyncClient, sim: Sandbox
) -> None:
    sim.faults.cancel_refused = False
    asset_id = await upload(http, image_bytes())
    running = (await generate(http, V3, {"image": asset_id})).json()["job"]["jobId"]

    canceled = await http.post(f"/jobs/{running}/action", json={"action": "cancel"})
    again = await http.post(f"/jobs/{running}/action", json={"action": "cancel"})

    assert canceled.status_code == 200
    assert canceled.json()["job"]["status"] == "canceled"
    assert (await http.get(f"/jobs/{running}")).json()["job"]["status"] == "canceled"
    assert again.status_code == 400
    bad_action = await http.post(f"/jobs/{running}/action", json={"action": "pause"})
    assert error_of(bad_action)["details"]["field"] == "action"


async def test_an_unknown_job_is_not_found(http: httpx.AsyncClient) -> None:
    response = await http.get("/jobs/job_missing")

    assert response.status_code == 404
    assert error_of(response)["reason"] == "Job not found"


async def test_jobs_can_be_found_by_creation_time_and_status(http: httpx.AsyncClient, sim: Sandbox) -> None:
    sim.job_seconds = 30
    asset_id = await upload(http, image_bytes())
    older = (await generate(http, V3, {"image": asset_id})).json()["job"]
    await sim.clock.sleep(0.01)
    since = datetime.fromtimestamp(sim.clock.wall(), UTC).isoformat()
    newer = (await generate(http, V3, {"image": asset_id, "seed": 1})).json()["job"]
    newest = (await generate(http, V3, {"image": asset_id, "seed": 2})).json()["job"]

    after = (await http.get("/jobs", params={"createdAfter": since})).json()["jobs"]
    everything = (await http.get("/jobs")).json()["jobs"]
    succeeded = (await http.get("/jobs", params={"status": "success"})).json()["jobs"]

    assert [job["jobId"] for job in after] == [newest["jobId"], newer["jobId"]]
    assert [job["jobId"] for job in everything] == [newest["jobId"], newer["jobId"], older["jobId"]]
    assert succeeded == []
    assert (await http.get("/jobs", params={"createdAfter": "yesterday"})).status_code == 400
    assert (await http.get("/jobs", params={"status": "failed"})).status_code == 400


async def make_jobs(http: httpx.AsyncClient, sim: Sandbox, count: int) -> list[str]:
    """`count` jobs, oldest first. They are set to fail, so no job renders an image in a thread."""
    sim.job_seconds = 30
    sim.faults.fail_next_jobs = count
    asset_id = await upload(http, image_bytes((8, 6)))
    return [(await generate(http, V3, {"image": asset_id})).json()["job"]["jobId"] for _ in range(count)]


async def test_jobs_come_in_pages_of_50_by_default_newest_first_with_a_token_for_the_rest(
    http: httpx.AsyncClient, sim: Sandbox
) -> None:
    created = await make_jobs(http, sim, 120)

    first = (await http.get("/jobs")).json()
    second = (await http.get("/jobs", params={"paginationToken": first["nextPaginationToken"]})).json()
    third = (await http.get("/jobs", params={"paginationToken": second["nextPaginationToken"]})).json()
    widest = (await http.get("/jobs", params={"pageSize": "100"})).json()

    assert [len(page["jobs"]) for page in (first, second, third)] == [50, 50, 20]
    assert "nextPaginationToken" not in third
    listed = [job["jobId"] for page in (first, second, third) for job in page["jobs"]]
    assert listed == created[::-1]
    assert [job["jobId"] for job in widest["jobs"]] == created[::-1][:100]


async def test_a_small_page_size_pages_through_filtered_jobs_too(
    http: httpx.AsyncClient, sim: Sandbox
) -> None:
    created = await make_jobs(http, sim, 5)
    since = sim.jobs[created[1]].created_at.isoformat()

    seen: list[str] = []
    params: dict[str, str] = {"pageSize": "2", "createdAfter": since}
    while True:
        page = (await http.get("/jobs", params=params)).json()
        assert len(page["jobs"]) <= 2
        seen += [job["jobId"] for job in page["jobs"]]
        if "nextPaginationToken" not in page:
            break
        params["paginationToken"] = page["nextPaginationToken"]
    pending = (await http.get("/jobs", params={"status": "pending", "pageSize": "3"})).json()
    by_type = (await http.get("/jobs", params={"types": "upscale,inference", "pageSize": "100"})).json()
    other_type = (await http.get("/jobs", params={"type": "model-training"})).json()

    assert seen == created[:0:-1]  # every job from the second on, newest first, each once
    assert len(pending["jobs"]) == 3 and "nextPaginationToken" in pending
    assert len(by_type["jobs"]) == 5 and other_type["jobs"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"pageSize": "101"}, "pageSize"),
        ({"pageSize": "0"}, "pageSize"),
        ({"pageSize": "ten"}, "pageSize"),
        ({"createdAfter": "2026-01-01T00:00:00Z", "status": "success"}, "createdAfter"),
        ({"createdAfter": "2026-01-01T00:00:00Z", "type": "inference"}, "createdAfter"),
        ({"updatedAfter": "2026-01-01T00:00:00Z"}, "updatedAfter"),
        ({"paginationToken": "not-a-token"}, "paginationToken"),
        ({"paginationToken": "eyJvcmRlciI6ImNyZWF0ZWRBdCIsImFmdGVyIjpbIngiXX0"}, "paginationToken"),
        ({"page_size": "10"}, "page_size"),
        ({"hideResults": "yes"}, "hideResults"),
    ],
)
async def test_a_jobs_listing_outside_the_sdks_parameters_is_400(
    http: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    response = await http.get("/jobs", params=params)

    assert response.status_code == 400
    error = error_of(response)
    assert error["name"] == "BadRequestError"
    assert error["details"]["field"] == field


async def test_an_empty_page_can_still_carry_a_token_to_the_rest_as_the_sdk_warns(
    http: httpx.AsyncClient, sim: Sandbox
) -> None:
    created = await make_jobs(http, sim, 3)
    sim.faults.empty_job_pages = 2

    empty = (await http.get("/jobs", params={"pageSize": "2"})).json()
    still_empty = (
        await http.get("/jobs", params={"pageSize": "2", "paginationToken": empty["nextPaginationToken"]})
    ).json()
    first = (
        await http.get(
            "/jobs", params={"pageSize": "2", "paginationToken": still_empty["nextPaginationToken"]}
        )
    ).json()
    rest = (
        await http.get("/jobs", params={"pageSize": "2", "paginationToken": first["nextPaginationToken"]})
    ).json()

    assert empty["jobs"] == still_empty["jobs"] == []
    assert [job["jobId"] for job in first["jobs"] + rest["jobs"]] == created[::-1]
    assert "nextPaginationToken" not in rest
    assert sim.faults.empty_job_pages == 0


async def test_a_status_filter_pages_by_update_date_and_takes_updated_after(
    http: httpx.AsyncClient, sim: Sandbox
) -> None:
    created = await make_jobs(http, sim, 3)
    before = datetime(2000, 1, 1, tzinfo=UTC).isoformat()

    page = (await http.get("/jobs", params={"status": "pending", "updatedAfter": before})).json()
    created_order_token = (await http.get("/jobs", params={"pageSize": "1"})).json()["nextPaginationToken"]
    mixed = await http.get("/jobs", params={"status": "pending", "paginationToken": created_order_token})

    assert {job["jobId"] for job in page["jobs"]} == set(created)
    assert mixed.status_code == 400  # a token belongs to the listing (and its order) that gave it


# --- multipart uploads -----------------------------------------------------------------------------


async def test_a_7_mb_image_uploads_in_two_parts_and_becomes_a_usable_asset(
    http: httpx.AsyncClient, storage: httpx.AsyncClient, sim: Sandbox
) -> None:
    data = noise_png((1600, 1500))
    assert 6_000_000 < len(data) < 2 * MIN_PART_BYTES
    created = await http.post(
        "/uploads",
        json={
            "fileName": "big.png",
            "contentType": "image/png",
            "fileSize": len(data),
            "parts": 2,
            "kind": "image",
        },
    )
    upload_info = created.json()["upload"]
    assert upload_info["status"] == "pending"
    assert [part["number"] for part in upload_info["parts"]] == [1, 2]

    chunks = [data[:MIN_PART_BYTES], data[MIN_PART_BYTES:]]
    for part, chunk in zip(upload_info["parts"], chunks, strict=True):
        put = await storage.put(part["url"], content=chunk)
        assert put.status_code == 200 and put.headers["etag"]
    completed = await http.post(f"/uploads/{upload_info['id']}/action", json={"action": "complete"})
    assert completed.json()["upload"]["status"] == "validating"
    final = await wait_for_upload(http, sim, upload_info["id"])

    assert final["status"] == "imported"
    assert sim.uploads[upload_info["id"]].parts_received == 2
    asset = (await http.get(f"/assets/{final['entityId']}")).json()["asset"]
    assert asset["properties"] == {"size": len(data), "width": 1600, "height": 1500}
    assert (await storage.get(asset["url"])).content == data
    assert (await generate(http, V3, {"image": final["entityId"]})).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{"x-amz-checksum-crc32": "AAAAAA=="}, {"Authorization": "Basic a2V5OnNlY3JldA=="}],
)
async def test_part_uploads_refuse_headers_the_presigned_url_does_not_allow(
    http: httpx.AsyncClient, storage: httpx.AsyncClient, sim: Sandbox, headers: dict[str, str]
) -> None:
    data = image_bytes()
    created = await http.post(
        "/uploads", json={"fileName": "a.png", "fileSize": len(data), "parts": 1, "kind": "image"}
    )
    [part] = created.json()["upload"]["parts"]

    response = await storage.put(part["url"], content=data, headers=headers)

    assert response.status_code == 400
    assert sim.uploads[created.json()["upload"]["id"]].parts_received == 0


async def test_a_part_sent_chunked_without_its_length_is_refused_as_s3_does(
    http: httpx.AsyncClient, storage: httpx.AsyncClient, sim: Sandbox
) -> None:
    data = image_bytes()
    created = await http.post(
        "/uploads", json={"fileName": "a.png", "fileSize": len(data), "parts": 1, "kind": "image"}
    )
    [part] = created.json()["upload"]["parts"]

    async def chunks() -> AsyncIterator[bytes]:
        yield data

    response = await storage.put(part["url"], content=chunks())

    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 411 and b"MissingContentLength" in response.content
    assert sim.uploads[created.json()["upload"]["id"]].parts_received == 0


async def test_a_part_url_with_a_bad_signature_is_forbidden(
    http: httpx.AsyncClient, storage: httpx.AsyncClient
) -> None:
    created = await http.post(
        "/uploads", json={"fileName": "a.png", "fileSize": 10, "parts": 1, "kind": "image"}
    )
    [part] = created.json()["upload"]["parts"]

    response = await storage.put(part["url"].replace("sig=", "sig=0"), content=b"0123456789")

    assert response.status_code == 403


@pytest.mark.parametrize(
    ("sizes", "payload", "reason"),
    [
        ((10, 10), b"x" * 20, "at least"),  # first part under 5 MiB
        ((20,), b"not an image at all!", "not a supported image"),
        ((30,), b"x" * 20, "fileSize"),
    ],
)
async def test_an_upload_that_does_not_add_up_to_an_image_fails(
    http: httpx.AsyncClient,
    storage: httpx.AsyncClient,
    sim: Sandbox,
    sizes: tuple[int, ...],
    payload: bytes,
    reason: str,
) -> None:
    created = await http.post(
        "/uploads", json={"fileName": "a.png", "fileSize": sum(sizes), "parts": len(sizes), "kind": "image"}
    )
    upload_info = created.json()["upload"]
    offset = 0
    for part, size in zip(upload_info["parts"], sizes, strict=True):
        await storage.put(part["url"], content=payload[offset : offset + size])
        offset += size
    await http.post(f"/uploads/{upload_info['id']}/action", json={"action": "complete"})

    final = await wait_for_upload(http, sim, upload_info["id"])

    assert final["status"] == "failed"
    assert reason in final["errorMessage"]
    assert "entityId" not in final


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"fileName": "a.png", "fileSize": 1, "parts": 10_001, "kind": "image"}, "parts"),
        ({"fileName": "a.png", "fileSize": 1, "parts": 1, "kind": "model"}, "kind"),
        (
            {"fileName": "a.txt", "contentType": "text/plain", "fileSize": 1, "parts": 1, "kind": "image"},
            "contentType",
        ),
        ({"fileName": "a.png", "fileSize": 1, "parts": 1, "kind": "image", "checksum": "x"}, "checksum"),
    ],
)
async def test_an_upload_request_is_validated(
    http: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await http.post("/uploads", json=body)

    assert response.status_code == 400
    assert error_of(response)["details"]["field"] == field


# --- control routes and bookkeeping ------------------------------------------------------------------


async def test_faults_can_be_set_inspected_and_reset_over_http(
    storage: httpx.AsyncClient, sim: Sandbox
) -> None:
    control = "http://sandbox.test/_sandbox"
    wanted = Faults(
        plan_limit=3,
        fail_next_jobs=1,
        server_errors=0,
        accept_then_500=2,
        latency_seconds=0.0,
        expire_urls=True,
        cancel_refused=False,
        truncate_downloads=1,
        retry_after_seconds=None,
        restricted_models=[TEXTURE],
        empty_job_pages=1,
    )
    every_field = asdict(wanted)
    assert set(every_field) == {fault.name for fault in fields(Faults)} == set(FAULT_KINDS)

    changed = await storage.post(f"{control}/faults", json=every_field)
    unknown = await storage.post(f"{control}/faults", json={"explode": True})
    mistyped = await storage.post(f"{control}/faults", json={"server_errors": "two"})
    no_such_model = await storage.post(f"{control}/faults", json={"restricted_models": ["model_nope"]})
    state = (await storage.get(f"{control}/state")).json()

    assert changed.status_code == 200
    assert sim.faults == wanted
    assert unknown.status_code == 400 and mistyped.status_code == 400 and no_such_model.status_code == 400
    assert state["faults"] == changed.json()["faults"]
    assert state["requestsPerRoute"]["POST /_sandbox/faults"] == 4

    await storage.post(f"{control}/reset")
    assert sim.faults == Faults()
    assert sim.requests == []


async def test_every_request_is_recorded_and_api_calls_are_counted_apart(
    http: httpx.AsyncClient, storage: httpx.AsyncClient, sim: Sandbox
) -> None:
    asset_id = await upload(http, image_bytes())
    url = (await http.get(f"/assets/{asset_id}")).json()["asset"]["url"]
    await storage.get(url)
    await storage.get("http://sandbox.test/_sandbox/state")

    assert [method for method, _ in sim.requests] == ["POST", "GET", "GET", "GET"]
    assert sim.requests[0] == ("POST", "/v1/assets")
    assert sim.api_request_count() == 3
    state = (await storage.get("http://sandbox.test/_sandbox/state")).json()
    assert state["requestsPerRoute"]["GET /v1/assets/{assetId}"] == 1
    assert state["requestsPerRoute"]["GET /cdn/{key}/{filename}"] == 1


async def test_add_asset_stores_an_image_for_test_setup(http: httpx.AsyncClient, sim: Sandbox) -> None:
    asset_id = sim.add_asset(image_bytes((8, 6)), "seed.png")

    assert (await http.get(f"/assets/{asset_id}")).json()["asset"]["properties"]["width"] == 8
    with pytest.raises(ValueError, match="not an image"):
        sim.add_asset(b"nope")


# --- on a real socket ---------------------------------------------------------------------------


async def test_serve_in_thread_serves_the_api_on_loopback() -> None:
    sim = Sandbox(job_seconds=0.05)
    data = image_bytes((64, 48))
    with serve_in_thread(sim) as base_url:
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        async with httpx.AsyncClient(base_url=base_url, auth=("k", "s"), trust_env=False) as http:
            asset_id = await upload(http, data)
            url = (await http.get(f"/assets/{asset_id}")).json()["asset"]["url"]
            assert url.startswith(base_url.removesuffix("v1") + "cdn/")
            whole = await http.get(url)
            assert whole.content == data
            assert whole.headers[SANDBOX_HEADER] == "simulator"

            sim.faults.truncate_downloads = 1
            # Over a socket the half-sent body ends with a dropped connection, as a broken transfer would.
            with pytest.raises(httpx.TransportError):
                await http.get(url)


def test_serve_in_thread_refuses_to_listen_beyond_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"), serve_in_thread(Sandbox(), host="0.0.0.0"):
        pass


# --- its command line ------------------------------------------------------------------------------


def test_the_sandbox_command_has_one_set_of_options_each_explained_and_loopback_only(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = build_parser()
    args = parser.parse_args(["sandbox"])
    assert (args.host, args.port, args.job_seconds, args.max_output_edge) == ("127.0.0.1", 8787, 6.0, 8192)
    [commands] = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    for option in commands.choices["sandbox"]._actions:
        assert option.help, option.dest

    with pytest.raises(SystemExit):
        parser.parse_args(["sandbox", "--host", "0.0.0.0"])
    assert "only listens on loopback addresses" in capsys.readouterr().err
