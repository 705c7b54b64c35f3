"""The simulator's state folder, in-process: simulators sharing one folder (as server processes do) see
one account, a job outlives the simulator that started it and finishes on schedule, and SCENARIO_BASE_URL
pointing at a standalone simulator needs no credentials (the rule in `api.simulator`)."""

from __future__ import annotations

import base64
import io
import socket
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client
from PIL import Image

from scenario_upscale_mcp.api import simulator as probe
from scenario_upscale_mcp.app import create_server
from scenario_upscale_mcp.config import SANDBOX_CREDENTIAL, Settings
from scenario_upscale_mcp.jobs.ledger import Ledger
from scenario_upscale_mcp.sandbox.app import Sandbox
from scenario_upscale_mcp.sandbox.persistence import StateFolderError
from scenario_upscale_mcp.sandbox.serving import serve_in_thread
from scenario_upscale_mcp.sandbox.wire_format import SANDBOX_HEADER
from scenario_upscale_mcp.service import Upscaler
from tests.images import png_bytes
from tests.servers import structured

pytestmark = pytest.mark.anyio

V3 = "model_upscale-v3"
TEXTURE = "model_sc-upscale-flux-texture"
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class ManualClock:
    """Time that moves only when told to; `monotonic` is where `now()` starts (each process has its own)."""

    def __init__(self, wall: datetime = START, monotonic: float = 1000.0) -> None:
        self.monotonic = monotonic
        self.epoch = wall.timestamp()

    def now(self) -> float:
        return self.monotonic

    def wall(self) -> float:
        return self.epoch

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self.monotonic += seconds
        self.epoch += seconds


@contextmanager
def simulators(folder: Path, count: int, **options: Any) -> Iterator[list[Sandbox]]:
    opened = [Sandbox(state_dir=folder, **options) for _ in range(count)]
    try:
        yield opened
    finally:
        for simulator in opened:
            simulator.close()


@asynccontextmanager
async def api(simulator: Sandbox, host: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of `simulator` in-process, under its own host name (the CDN URLs it signs carry it)."""
    transport = httpx.ASGITransport(app=simulator.app)
    async with httpx.AsyncClient(
        transport=transport, base_url=f"http://{host}/v1", auth=("key", "secret")
    ) as client:
        yield client


async def upload(http: httpx.AsyncClient, data: bytes, name: str = "input.png") -> str:
    image = "data:image/png;base64," + base64.b64encode(data).decode()
    response = await http.post("/assets", json={"image": image, "name": name})
    assert response.status_code == 200, response.text
    asset_id: str = response.json()["asset"]["id"]
    return asset_id


async def generate(http: httpx.AsyncClient, model: str, inputs: dict[str, Any]) -> dict[str, Any]:
    response = await http.post(f"/generate/custom/{model}", json=inputs)
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()["job"]
    return job


async def job_of(http: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    response = await http.get(f"/jobs/{job_id}")
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()["job"]
    return job


async def until_ended(http: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    """The job once it ends. Its time is up: only its render (real work, on a thread) may take a moment."""
    with anyio.fail_after(20):
        for _ in range(2000):
            job = await job_of(http, job_id)
            if job["status"] in ("success", "failure", "canceled"):
                return job
            await anyio.sleep(0.01)
    raise AssertionError(f"job {job_id} never ended")


def when(date: str) -> datetime:
    return datetime.fromisoformat(date.replace("Z", "+00:00"))


# --- one folder, several simulators at once ----------------------------------------------------------


async def test_two_simulators_on_one_folder_see_each_others_assets_jobs_and_urls(tmp_path: Path) -> None:
    clock = ManualClock()
    with simulators(tmp_path / "state", 2, clock=clock, job_seconds=10) as (first, second):
        async with api(first, "first.test") as one, api(second, "second.test") as two:
            source = png_bytes(40, 30)
            asset_id = await upload(one, source, "castle.png")
            seen = (await two.get(f"/assets/{asset_id}")).json()["asset"]
            # A URL the first one signed is served by the second (one secret, kept in the folder).
            signed_by_first = (await one.get(f"/assets/{asset_id}")).json()["asset"]["url"]
            served = await two.get(signed_by_first.replace("first.test", "second.test"))

            job = await generate(two, V3, {"image": asset_id, "upscaleFactor": 2})
            pending = await job_of(one, job["jobId"])
            listed = (await one.get("/jobs")).json()["jobs"]
            clock.advance(10)
            done = await until_ended(one, job["jobId"])
            [output_id] = done["metadata"]["assetIds"]
            output = (await two.get(f"/assets/{output_id}")).json()["asset"]
            pixels = await two.get(output["url"])

    assert seen["metadata"]["name"] == "castle.png" and seen["properties"] == {
        "size": len(source),
        "width": 40,
        "height": 30,
    }
    assert served.status_code == 200 and served.content == source
    assert pending["status"] == "pending" and [j["jobId"] for j in listed] == [job["jobId"]]
    assert done["status"] == "success" and output["properties"]["width"] == 80
    with Image.open(io.BytesIO(pixels.content)) as image:
        assert image.size == (80, 60)


async def test_simulators_sharing_a_folder_share_cancels_plan_limits_and_creation_order(
    tmp_path: Path,
) -> None:
    clock = ManualClock()
    with simulators(tmp_path / "state", 2, clock=clock, job_seconds=60) as (first, second):
        second.faults.cancel_refused = False
        async with api(first, "first.test") as one, api(second, "second.test") as two:
            asset_id = await upload(one, png_bytes(16, 16))
            # Jobs started through both at once, interleaved: one numbering, no id or order lost.
            started = await _gather(
                [generate(one if i % 2 else two, TEXTURE, {"image": asset_id}) for i in range(10)]
            )
            canceled = (
                await two.post(f"/jobs/{started[0]['jobId']}/action", json={"action": "cancel"})
            ).json()
            seen_canceled = await job_of(one, started[0]["jobId"])
            first.faults.plan_limit = 9  # nine still run, started through either simulator
            refused = await one.post(f"/generate/custom/{V3}", json={"image": asset_id})
            listed = (await two.get("/jobs", params={"pageSize": 100})).json()["jobs"]
        sequences = sorted(first.jobs[job["jobId"]].sequence for job in started)

    assert canceled["job"]["status"] == "canceled" and seen_canceled["status"] == "canceled"
    assert refused.status_code == 429 and refused.json()["details"]["actionValue"] == 9
    assert {job["jobId"] for job in listed} == {job["jobId"] for job in started}
    assert sequences == list(range(1, 11))


async def _gather(calls: list[Any]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = [{} for _ in calls]

    async def run(index: int, call: Any) -> None:
        results[index] = await call

    async with anyio.create_task_group() as group:
        for index, call in enumerate(calls):
            group.start_soon(run, index, call)
    return results


async def test_a_multipart_upload_is_shared_and_survives_a_restart(tmp_path: Path) -> None:
    clock = ManualClock()
    data = png_bytes(30, 20)
    with simulators(tmp_path / "state", 2, clock=clock, job_seconds=5) as (first, second):
        async with api(first, "first.test") as one:
            created = await one.post(
                "/uploads",
                json={
                    "fileName": "big.png",
                    "contentType": "image/png",
                    "fileSize": len(data),
                    "parts": 1,
                    "kind": "image",
                },
            )
            upload_id = created.json()["upload"]["id"]
            part_url = created.json()["upload"]["parts"][0]["url"]
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=second.app)) as storage:
                put = await storage.put(part_url, content=data)  # a part sent to the other one
            completed = await one.post(f"/uploads/{upload_id}/action", json={"action": "complete"})
    clock.advance(1)
    with simulators(tmp_path / "state", 1, clock=clock) as (restarted,):
        async with api(restarted, "third.test") as three:
            imported = (await three.get(f"/uploads/{upload_id}")).json()["upload"]
        asset = restarted.assets[imported["entityId"]]

    assert put.status_code == 200 and completed.json()["upload"]["status"] == "validating"
    assert imported["status"] == "imported" and asset.data == data


# --- a job outlives its simulator ----------------------------------------------------------------------


async def test_a_restart_mid_job_finishes_on_schedule(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    with simulators(folder, 1, clock=ManualClock(), job_seconds=60) as (first,):
        async with api(first, "first.test") as one:
            asset_id = await upload(one, png_bytes(40, 30))
            job = await generate(one, V3, {"image": asset_id, "upscaleFactor": 2})
    created = when(job["createdAt"])

    # Another process, half-way through: its monotonic clock has nothing in common with the first's,
    # and its own job_seconds apply to its own new jobs, not to this one.
    later = ManualClock(created + timedelta(seconds=30), monotonic=5.0)
    with simulators(folder, 1, clock=later, job_seconds=1) as (restarted,):
        async with api(restarted, "second.test") as two:
            halfway = await job_of(two, job["jobId"])
            later.advance(30)
            done = await until_ended(two, job["jobId"])
            [output_id] = done["metadata"]["assetIds"]
            converted = (
                await two.post(f"/assets/{output_id}/download", json={"targetFormat": "jpeg"})
            ).json()
            signed = (await two.get(f"/assets/{output_id}")).json()["asset"]["url"]

    # Outputs and conversions are rendered once and stored: a third process serves the URLs signed before.
    with simulators(folder, 1, clock=later) as (third,):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=third.app)) as cdn:
            png = await cdn.get(signed)
            jpeg = await cdn.get(converted["url"])

    assert halfway["status"] == "in-progress" and halfway["progress"] == pytest.approx(0.327, abs=0.001)
    assert done["status"] == "success"
    assert when(done["updatedAt"]) == created + timedelta(seconds=60)  # the first process's schedule
    assert [(h["status"], when(h["date"]) - created) for h in done["statusHistory"]] == [
        ("pending", timedelta(0)),
        ("queued", timedelta(seconds=3)),
        ("warming-up", timedelta(seconds=9)),
        ("in-progress", timedelta(seconds=18)),
        ("finalizing", timedelta(seconds=51)),
        ("success", timedelta(seconds=60)),
    ]
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert jpeg.status_code == 200 and jpeg.headers["content-type"] == "image/jpeg"


async def test_a_job_whose_simulator_ended_before_rendering_it_is_rendered_by_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "state"
    clock = ManualClock()
    with simulators(folder, 1, clock=clock, job_seconds=6) as (first,):
        # As if the process ended (a host closing the server) before its render thread was done.
        monkeypatch.setattr(first._jobs, "_start_render", lambda job, source: None)
        async with api(first, "first.test") as one:
            asset_id = await upload(one, png_bytes(20, 10))
            job = await generate(one, TEXTURE, {"image": asset_id, "upscaleFactor": 4})
    clock.advance(6)
    with simulators(folder, 1, clock=clock) as (restarted,):
        async with api(restarted, "second.test") as two:
            done = await until_ended(two, job["jobId"])
        [output_id] = done["metadata"]["assetIds"]
        output = restarted.assets[output_id]

    assert done["status"] == "success" and (output.width, output.height) == (80, 40)


async def test_the_stores_keep_their_mapping_interface_in_a_folder(tmp_path: Path) -> None:
    with simulators(tmp_path / "state", 1) as (simulator,):
        asset_id = simulator.add_asset(png_bytes(8, 6), "seed.png")
        made = simulator._new_asset(png_bytes(4, 4), "image/png", 4, 4, "set.png")
        simulator.assets[made.id] = made

        assert asset_id in simulator.assets and "asset_nope" not in simulator.assets
        assert list(simulator.assets) == [asset_id, made.id] and len(simulator.assets) == 2
        assert simulator.assets[asset_id].data == png_bytes(8, 6)
        assert simulator.jobs == {} and dict(simulator.uploads) == {}


def test_a_state_folder_from_a_newer_version_is_refused_plainly(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    Sandbox(state_dir=folder).close()
    with sqlite3.connect(folder / "simulator.sqlite3") as db:
        db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(StateFolderError, match="newer version"):
        Sandbox(state_dir=folder)


# --- SCENARIO_BASE_URL at a standalone simulator -------------------------------------------------------


@contextmanager
def plain_http_server() -> Iterator[str]:
    """A loopback HTTP server that is not the simulator (a local proxy, say): it answers without the header."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def closed_port_url() -> str:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_the_probe_looks_for_the_header_the_simulator_sends() -> None:
    assert probe.SIMULATOR_HEADER == SANDBOX_HEADER


def test_only_a_loopback_url_whose_answer_says_so_is_the_simulator(monkeypatch: pytest.MonkeyPatch) -> None:
    with serve_in_thread(Sandbox()) as simulator_url, plain_http_server() as other_url:
        assert probe.answers_as_simulator(simulator_url) is True
        assert probe.answers_as_simulator(simulator_url.replace("127.0.0.1", "localhost")) is True
        assert probe.answers_as_simulator(other_url) is False
    assert probe.answers_as_simulator(closed_port_url(), timeout=2) is None

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("a URL that is not on loopback must never be asked")

    monkeypatch.setattr(httpx, "Client", never)
    for url in (
        "https://api.cloud.scenario.com/v1",
        "http://10.0.0.1:8787/v1",
        "http://192.168.1.2/v1",
        "http://localhost.example.com/v1",
        "http://127.0.0.1.nip.io/v1",
        "ftp://127.0.0.1/v1",
        "not a url",
    ):
        assert probe.answers_as_simulator(url) is False, url


def test_a_standalone_simulator_needs_no_credentials_and_never_gets_the_users(tmp_path: Path) -> None:
    def settings_of(base_url: str, *, sandbox: bool = False, real: bool = True) -> Settings:
        given = Settings(base_url=base_url, sandbox=sandbox, state_dir=tmp_path)
        if real:
            given = Settings(
                api_key="real-key",
                api_secret="real-secret",
                base_url=base_url,
                sandbox=sandbox,
                state_dir=tmp_path,
            )
        return Upscaler(given).settings

    dummy = (SANDBOX_CREDENTIAL, SANDBOX_CREDENTIAL)
    with serve_in_thread(Sandbox()) as simulator_url, plain_http_server() as other_url:
        on_simulator = settings_of(simulator_url)
        without_any = settings_of(simulator_url, real=False)
        on_proxy = settings_of(other_url)
    told = settings_of("http://127.0.0.1:9/v1", sandbox=True)  # SCENARIO_SANDBOX=1: nothing asked

    assert on_simulator.sandbox and on_simulator.credentials() == dummy
    assert without_any.sandbox and without_any.credentials() == dummy
    assert not on_proxy.sandbox and on_proxy.credentials() == ("real-key", "real-secret")
    assert told.credentials() == dummy  # in sandbox mode, never the user's


async def test_a_server_on_a_standalone_simulator_keeps_its_jobs_in_the_sandbox_ledger(
    tmp_path: Path,
) -> None:
    simulator = Sandbox(job_seconds=0.3)
    seen_auth: list[str] = []
    app = simulator.app

    async def recording(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            seen_auth.extend(v.decode() for k, v in scope["headers"] if k == b"authorization")
        await app(scope, receive, send)

    simulator.app = recording  # type: ignore[assignment]
    (tmp_path / "images").mkdir()
    image = tmp_path / "images" / "castle.png"
    image.write_bytes(png_bytes(40, 30))
    with serve_in_thread(simulator) as base_url:
        settings = Settings(
            api_key="real-key",
            api_secret="real-secret",
            base_url=base_url,
            state_dir=tmp_path / "state",
            output_dir=tmp_path / "output",
            allowed_dirs=[tmp_path / "images"],
            poll_initial_seconds=0.05,
            poll_max_seconds=0.1,
        )
        with anyio.fail_after(30):
            async with Client(create_server(settings)) as client:
                done = structured(await client.call_tool("upscale_v3", {"image": str(image), "wait": 20}))

    assert done["status"] == "success" and Path(done["outputs"][0]["path"]).is_file()
    expected = "Basic " + base64.b64encode(f"{SANDBOX_CREDENTIAL}:{SANDBOX_CREDENTIAL}".encode()).decode()
    assert seen_auth and set(seen_auth) == {expected}  # never real-key:real-secret
    with Ledger.in_folder(tmp_path / "state" / "sandbox") as sandbox_ledger:
        assert sandbox_ledger.get_job(done["jobId"]) is not None
    assert not (tmp_path / "state" / "ledger.sqlite3").exists()  # the real ledger is untouched
