"""What the benchmarks share: a simulator on loopback, the real server over stdio, memory readings."""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
from mcp import Client

from scenario_upscale_mcp.sandbox.app import Sandbox
from scenario_upscale_mcp.sandbox.serving import serve_in_thread
from tests.servers import stdio_params, structured

AUTH = ("sandbox", "sandbox")


@contextmanager
def simulator(job_seconds: float = 1.0) -> Iterator[tuple[Sandbox, str]]:
    sandbox = Sandbox(job_seconds=job_seconds, max_output_edge=16384)
    with serve_in_thread(sandbox) as base_url:
        yield sandbox, base_url


@contextmanager
def simulator_process(job_seconds: float = 1.0) -> Iterator[str]:
    """The simulator in a process of its own, so that measuring never competes with it for the GIL."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scenario_upscale_mcp",
            "sandbox",
            "--port",
            "0",
            "--job-seconds",
            str(job_seconds),
            "--in-memory",  # nothing on disk (by default it would keep its jobs in the user's data folder)
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "SCENARIO_LOG_LEVEL": "INFO"},  # its base URL is logged at INFO
    )
    assert process.stderr is not None
    drain: threading.Thread | None = None
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = re.search(r"(http://127\.0\.0\.1:\d+/v1)", process.stderr.readline())
            if found:
                # Keep reading its log so the simulator never blocks on a full pipe.
                drain = threading.Thread(target=process.stderr.read, daemon=True)
                drain.start()
                yield found.group(1)
                return
        raise RuntimeError("the simulator did not start")
    finally:
        process.terminate()
        process.wait(timeout=10)
        if drain is not None:
            drain.join(timeout=10)
        process.stderr.close()


async def create_upload(
    http: httpx.AsyncClient, base_url: str, name: str, size: int, parts: int
) -> dict[str, Any]:
    """Start a multipart upload of a PNG in the simulator; return the upload, with its part URLs."""
    body = {"fileName": name, "contentType": "image/png", "fileSize": size, "parts": parts, "kind": "image"}
    upload: dict[str, Any] = (await http.post(f"{base_url}/uploads", json=body, auth=AUTH)).json()["upload"]
    return upload


async def complete_upload(http: httpx.AsyncClient, base_url: str, upload_id: str) -> str:
    """Complete a multipart upload whose parts are all sent, wait until it is imported; return the asset id."""
    await http.post(f"{base_url}/uploads/{upload_id}/action", json={"action": "complete"}, auth=AUTH)
    interval = 0.05
    while True:
        upload = (await http.get(f"{base_url}/uploads/{upload_id}", auth=AUTH)).json()["upload"]
        if upload["status"] == "imported":
            return str(upload["entityId"])
        if upload["status"] == "failed":
            raise RuntimeError(upload.get("errorMessage"))
        await anyio.sleep(interval)
        interval = min(interval * 1.5, 1.0)


async def upload_through_parts(base_url: str, path: Path) -> str:
    """Put a file into the simulator with the multipart flow; return its asset id."""
    size = path.stat().st_size
    part_size = 8 * 1024 * 1024
    async with httpx.AsyncClient(timeout=120) as http:
        created = await create_upload(http, base_url, path.name, size, parts=-(-size // part_size))
        with path.open("rb") as file:
            for part in created["parts"]:
                file.seek((part["number"] - 1) * part_size)
                (await http.put(part["url"], content=file.read(part_size))).raise_for_status()
        return await complete_upload(http, base_url, created["id"])


@dataclass
class ServerProcess:
    client: Client
    pid: int


@asynccontextmanager
async def server_over_stdio(base_url: str, folder: Path, **env: str) -> AsyncIterator[ServerProcess]:
    """The installed server, spawned as a host would; its pid is found by a marker in its environment."""
    marker = uuid.uuid4().hex
    params = stdio_params(base_url, folder, SCENARIO_ALLOWED_DIRS=str(folder), BENCHMARK_MARKER=marker, **env)
    async with Client(params, read_timeout_seconds=600) as client:
        yield ServerProcess(client=client, pid=_pid_with_marker(marker))


def _pid_with_marker(marker: str) -> int:
    needle = f"BENCHMARK_MARKER={marker}".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "environ").read_bytes().split(b"\0"):
                    return int(entry.name)
            except OSError:
                continue
    raise RuntimeError("the spawned server's process was not found")


def rss_bytes(pid: int) -> int:
    """Resident memory now, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


@dataclass
class MemoryWatch:
    """Samples a process's resident memory every few milliseconds while a block runs."""

    pid: int
    samples: list[tuple[float, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> MemoryWatch:
        self.idle = rss_bytes(self.pid)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.perf_counter(), rss_bytes(self.pid)))
            except (OSError, RuntimeError):
                return
            time.sleep(0.01)

    def peak_above_idle(self, until: float | None = None) -> int:
        values = [rss for when, rss in self.samples if until is None or when <= until]
        return max(values, default=self.idle) - self.idle


async def measured_call(
    server: ServerProcess, tool: str, arguments: dict[str, Any]
) -> tuple[dict[str, Any], float, int]:
    """Call a tool of the spawned server: its structured result, the seconds the call took, and the
    server's peak resident memory above idle meanwhile."""
    with MemoryWatch(server.pid) as watch:
        started = time.perf_counter()
        result = await server.client.call_tool(tool, arguments)
        seconds = time.perf_counter() - started
    return structured(result), seconds, watch.peak_above_idle()


def throughput_main(
    run: Callable[[float, int], Awaitable[dict[str, float]]],
    description: str,
    megabytes: float,
    argv: list[str] | None,
) -> tuple[dict[str, float], int]:
    """A throughput benchmark from the command line (`--megabytes`, the file's size, and `--runs`):
    its figures and how many runs they are the median of."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--megabytes", type=float, default=megabytes)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    return anyio.run(run, args.megabytes, args.runs), args.runs


def throughput_figures(
    size: int, ours: list[float], theirs: list[float], peaks: list[int]
) -> dict[str, float]:
    """Medians of timed runs as MB/s for us and the reference, their ratio, and the worst memory peak."""
    return {
        "bytes": size,
        "ours_mb_s": size / statistics.median(ours) / 1e6,
        "curl_mb_s": size / statistics.median(theirs) / 1e6,
        "ratio": statistics.median(theirs) / statistics.median(ours),
        "peak": max(peaks),
    }


def mib(value: float) -> str:
    return f"{value / 1024 / 1024:.1f} MiB"
