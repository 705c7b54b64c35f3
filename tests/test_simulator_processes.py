"""The simulator as host apps meet it, over stdio with real server processes: its jobs outlive the server
that submitted them (every desktop host restarts servers), servers running at once share one simulated
account, and a standalone simulator (`scenario-upscale-mcp sandbox`) needs no credentials and keeps
its jobs out of the real ledger.

Every server here runs its own simulator on its own loopback port (SCENARIO_SANDBOX=1), sharing the
state folder, unless it is pointed at the standalone one. Their jobs take the built-in 6 seconds."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from scenario_upscale_mcp.jobs.ledger import Ledger
from scenario_upscale_mcp.sandbox.app import Sandbox
from tests.images import png_bytes
from tests.servers import structured

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

BUILT_IN_JOB_SECONDS = 6.0  # `Sandbox`'s default, which the server's own simulator uses
CALL_SECONDS = 60  # a bound on any one server session here


def server_params(tmp_path: Path, **extra: str) -> StdioServerParameters:
    env = {
        "SCENARIO_ALLOWED_DIRS": str(tmp_path / "images"),
        "SCENARIO_OUTPUT_DIR": str(tmp_path / "output"),
        "SCENARIO_STATE_DIR": str(tmp_path / "state"),
        "SCENARIO_POLL_INITIAL_SECONDS": "0.2",
        "SCENARIO_POLL_MAX_SECONDS": "0.5",
        "SCENARIO_LOG_LEVEL": "WARNING",
        **extra,
    }
    return StdioServerParameters(command=sys.executable, args=["-m", "scenario_upscale_mcp"], env=env)


def sandbox_server(tmp_path: Path) -> StdioServerParameters:
    return server_params(tmp_path, SCENARIO_SANDBOX="1")


async def call(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return structured(await client.call_tool(tool, arguments))


@pytest.fixture
def image(tmp_path: Path) -> Path:
    (tmp_path / "images").mkdir()
    path = tmp_path / "images" / "hero.png"
    path.write_bytes(png_bytes(50, 40))
    return path


def simulator_state(tmp_path: Path) -> Path:
    return tmp_path / "state" / "sandbox" / "simulator"


async def test_a_job_outlives_the_server_process_that_submitted_it(tmp_path: Path, image: Path) -> None:
    params = sandbox_server(tmp_path)
    with anyio.fail_after(CALL_SECONDS):
        async with Client(params, read_timeout_seconds=CALL_SECONDS) as first_run:
            submitted = await call(
                first_run,
                "upscale_v3",
                {"image": str(image), "upscaleFactor": 2, "outputDir": "sub1", "wait": 0},
            )
            running = await call(first_run, "upscale_texture", {"image": str(image), "wait": 0})

    # The host restarted the server, while both jobs run: a new process, a new simulator on a new port.
    with anyio.fail_after(CALL_SECONDS):
        async with Client(params, read_timeout_seconds=CALL_SECONDS) as second_run:
            seen = await call(second_run, "get_job", {"jobId": submitted["jobId"]})
            cancel = await second_run.call_tool("cancel_job", {"jobId": running["jobId"]})
            waited = await call(second_run, "wait_for_jobs", {"jobIds": [submitted["jobId"]], "timeout": 30})
            downloaded = await call(second_run, "download_assets", {"jobId": submitted["jobId"]})
            listed = await call(second_run, "list_jobs", {})

    assert seen["jobId"] == submitted["jobId"] and seen["status"] != "failure"
    assert not cancel.is_error, cancel.content  # found: the simulator refuses the cancel, as Scenario may
    canceled = cancel.structured_content
    assert canceled is not None and canceled["jobId"] == running["jobId"]
    assert "not found" not in str(cancel.content).lower()
    [job] = waited["jobs"]
    assert job["status"] == "success"
    [saved] = job["outputs"]
    assert Path(saved["path"]).is_file() and (saved["width"], saved["height"]) == (100, 80)
    # Saved by another process, where the first one's call asked: outputDir is kept with the job.
    assert str(tmp_path / "output" / "sub1") in submitted["next"]
    assert Path(saved["path"]).parent == tmp_path / "output" / "sub1"
    assert Path(saved["path"]).name.startswith("hero_upscale-v3_x2_")
    [again] = downloaded["files"]
    assert Path(again["path"]).is_file() and again["path"] != saved["path"]
    assert Path(again["path"]).parent == tmp_path / "output" / "sub1"
    statuses = {entry["jobId"]: entry["status"] for entry in listed["jobs"]}
    assert statuses[submitted["jobId"]] == "success"  # not "pending" forever

    # It finished on schedule: its success is dated when its 6 seconds were up, restart or not.
    with Sandbox(state_dir=simulator_state(tmp_path)) as simulator:
        stored = simulator.jobs[submitted["jobId"]]
    assert stored.history[-1][0] == "success"
    assert stored.history[-1][1] - stored.created_at == timedelta(seconds=BUILT_IN_JOB_SECONDS)


async def test_two_servers_at_once_share_one_simulated_account(tmp_path: Path, image: Path) -> None:
    params = sandbox_server(tmp_path)
    with anyio.fail_after(CALL_SECONDS):
        async with (
            Client(params, read_timeout_seconds=CALL_SECONDS) as host_a,
            Client(params, read_timeout_seconds=CALL_SECONDS) as host_b,
        ):
            uploaded = await call(host_a, "upload_image", {"image": str(image)})
            submitted = await call(host_a, "upscale_texture", {"image": uploaded["assetId"], "wait": 0})
            # Host B's server has its own simulator, on its own port, over the same folder.
            seen = await call(host_b, "get_job", {"jobId": submitted["jobId"]})
            fetched = await call(host_b, "download_assets", {"assetIds": [uploaded["assetId"]]})
            waited = await call(host_b, "wait_for_jobs", {"jobIds": [submitted["jobId"]], "timeout": 30})
            again = await call(host_a, "get_job", {"jobId": submitted["jobId"]})

    assert seen["jobId"] == submitted["jobId"]
    assert Path(fetched["files"][0]["path"]).read_bytes() == image.read_bytes()
    assert (
        waited["jobs"][0]["status"] == "success" and Path(waited["jobs"][0]["outputs"][0]["path"]).is_file()
    )
    assert again["status"] == "success"
    assert again["outputs"][0]["assetId"] == waited["jobs"][0]["outputs"][0]["assetId"]  # one output, not two


@contextmanager
def standalone_simulator(env: dict[str, str]) -> Iterator[str]:
    """`scenario-upscale-mcp sandbox --port 0`, as a user starts it in a terminal; yields its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "scenario_upscale_mcp", "sandbox", "--port", "0", "--job-seconds", "1"],
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stderr is not None
    stderr = process.stderr

    def drain() -> None:  # read its log to the end, so it never blocks on a full pipe
        for line in stderr:
            lines.put(line)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        url = None
        log: list[str] = []
        while url is None:
            try:
                line = lines.get(timeout=30)
            except queue.Empty:
                raise AssertionError(f"the simulator never said where it listens: {log}") from None
            log.append(line)
            found = re.search(r"listening at (http://127\.0\.0\.1:\d+/v1)", line)
            url = found.group(1) if found else None
        yield url
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # Ctrl-C, as its user stops it
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        reader.join(timeout=5)
        stderr.close()


async def test_the_standalone_simulator_needs_no_credentials_and_keeps_its_jobs_apart(
    tmp_path: Path, image: Path
) -> None:
    state = tmp_path / "state"
    # No --state-dir: the simulator takes the one servers with SCENARIO_SANDBOX=1 use.
    with standalone_simulator({"SCENARIO_STATE_DIR": str(state)}) as base_url:
        # No key, no secret, no SCENARIO_SANDBOX: only SCENARIO_BASE_URL, at the simulator.
        on_standalone = server_params(tmp_path, SCENARIO_BASE_URL=base_url)
        with anyio.fail_after(CALL_SECONDS):
            async with Client(on_standalone, read_timeout_seconds=CALL_SECONDS) as client:
                done = await call(client, "upscale_v3", {"image": str(image), "wait": 30})
        # A server with its own simulator over the same folder sees the same account.
        with anyio.fail_after(CALL_SECONDS):
            async with Client(sandbox_server(tmp_path), read_timeout_seconds=CALL_SECONDS) as client:
                seen = await call(client, "get_job", {"jobId": done["jobId"]})

    assert done["status"] == "success" and Path(done["outputs"][0]["path"]).is_file()
    assert seen["status"] == "success" and seen["outputs"][0]["assetId"] == done["outputs"][0]["assetId"]
    with Ledger.in_folder(state / "sandbox") as sandbox_ledger:
        assert sandbox_ledger.get_job(done["jobId"]) is not None
    assert not (state / "ledger.sqlite3").exists()  # the real ledger: never opened
    with Sandbox(state_dir=simulator_state(tmp_path)) as simulator:
        assert done["jobId"] in simulator.jobs
