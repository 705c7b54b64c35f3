"""SIGINT (Ctrl-C) and SIGTERM stop the server promptly and cleanly, over stdio and over HTTP.

Promptly: within 2 s, even with stdin open and silent (the SDK's stdin thread used to hold the stop
until a line arrived). Cleanly: exit status 130 (SIGINT) or 143 (SIGTERM), no traceback, the
simulator stopped, the ledger closed, and a download in flight cancelled so that its temporary file
is removed (SIGTERM used to kill the process on the spot and leave it behind).

Every process is spawned on loopback with temporary folders, and every wait has a deadline.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
import pytest
from mcp import Client
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scenario_upscale_mcp.sandbox.app import Sandbox
from scenario_upscale_mcp.sandbox.serving import serve_in_thread
from scenario_upscale_mcp.serving.stdio import _read_lines
from tests.images import noise_png, noise_size
from tests.test_http import free_loopback_port, wait_until_listening
from tests.test_stdio import installed_command

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
]

STOP_SIGNALS = [pytest.param(signal.SIGINT, id="SIGINT"), pytest.param(signal.SIGTERM, id="SIGTERM")]
STOP_SECONDS = 2.0  # how soon a stopped server must have exited
START_SECONDS = 30.0
READY_LINE = "serving MCP over stdio"
LEGACY_VERSION = "2025-11-25"
DOWNLOAD_BYTES = 6_000_000  # the asset's size, above one 4 MiB write batch
STALL_AFTER_BYTES = 5_000_000  # the simulator's CDN sends this much, then holds the rest


def server_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment minus the developer's SCENARIO_* variables, plus the simulator and temporary folders."""
    for name in ("images", "output", "state"):
        (tmp_path / name).mkdir(exist_ok=True)
    inherited = {name: value for name, value in os.environ.items() if not name.startswith("SCENARIO_")}
    return inherited | {
        "SCENARIO_SANDBOX": "1",
        "SCENARIO_ALLOWED_DIRS": str(tmp_path / "images"),
        "SCENARIO_OUTPUT_DIR": str(tmp_path / "output"),
        "SCENARIO_STATE_DIR": str(tmp_path / "state"),
        **extra,
    }


class ServerProcess:
    """The installed server in a process of its own, its stderr written to `log`."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path, *, pipes: bool) -> None:
        self.log = log
        stream = subprocess.PIPE if pipes else subprocess.DEVNULL
        with log.open("wb") as stderr:
            self.process = subprocess.Popen(
                [installed_command(), *args], env=env, cwd="/", stdin=stream, stdout=stream, stderr=stderr
            )

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def stop_with(self, signum: int, within: float = STOP_SECONDS) -> float:
        """Send `signum`; return how long the server took to exit (failing past `within` seconds)."""
        sent = time.monotonic()
        self.process.send_signal(signum)
        try:
            self.process.wait(timeout=within)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {within:g} s after {signal.Signals(signum).name}:\n{self.stderr()}")
        return time.monotonic() - sent

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


Spawned = TypeVar("Spawned", bound=ServerProcess)


def spawner(
    kind: Callable[[dict[str, str], Path], Spawned], logs: Path, name: str
) -> Iterator[Callable[[dict[str, str]], Spawned]]:
    """For a fixture: a function that spawns a server with the given environment; all are closed after."""
    servers: list[Spawned] = []

    def spawn(env: dict[str, str]) -> Spawned:
        server = kind(env, logs / f"{name}-{len(servers)}.log")
        servers.append(server)
        return server

    yield spawn
    for server in servers:
        server.close()


class StdioServer(ServerProcess):
    """The installed server spawned over a pipe, spoken to in raw JSON-RPC lines (legacy handshake)."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        super().__init__([], env, log, pipes=True)
        self._pending = b""
        self._next_id = 0

    def wait_until_serving(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while READY_LINE not in self.stderr():
            if self.process.poll() is not None:
                pytest.fail(f"the server exited with {self.process.returncode}:\n{self.stderr()}")
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not start serving within {START_SECONDS:g} s:\n{self.stderr()}")
            time.sleep(0.02)

    def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        self.process.stdin.flush()

    def request(self, method: str, params: dict[str, Any] | None = None) -> int:
        self._next_id += 1
        self.send({"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params or {}})
        return self._next_id

    def response(self, request_id: int, timeout: float = 30) -> dict[str, Any]:
        assert self.process.stdout is not None
        descriptor = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self._pending:
                line, self._pending = self._pending.split(b"\n", 1)
                message: dict[str, Any] = json.loads(line)
                if message.get("id") == request_id:
                    return message
            remaining = deadline - time.monotonic()
            readable, _, _ = select.select([descriptor], [], [], max(remaining, 0))
            if not readable:
                pytest.fail(f"no answer to request {request_id} within {timeout:g} s:\n{self.stderr()}")
            chunk = os.read(descriptor, 1 << 16)
            if not chunk:
                pytest.fail(f"the server closed stdout before answering {request_id}:\n{self.stderr()}")
            self._pending += chunk

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        answer = self.response(self.request(method, params))
        assert "result" in answer, answer
        result: dict[str, Any] = answer["result"]
        return result

    def handshake(self) -> None:
        initialized = self.call(
            "initialize",
            {
                "protocolVersion": LEGACY_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "test_signals", "version": "0"},
            },
        )
        assert initialized["serverInfo"]["name"] == "scenario-upscale-mcp"
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})


@pytest.fixture
def spawn_stdio(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], StdioServer]]:
    yield from spawner(StdioServer, tmp_path, "server")


def assert_stopped_cleanly(signum: int, returncode: int | None, stderr: str) -> None:
    assert returncode == 128 + signum, f"exit status {returncode}:\n{stderr}"
    assert "Traceback" not in stderr, stderr
    assert f"{signal.Signals(signum).name}: stop" in stderr, stderr  # it was handled, not just killed


# -- stdio -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", STOP_SIGNALS)
def test_a_signal_stops_a_silent_stdio_server_with_stdin_open(
    signum: int, tmp_path: Path, spawn_stdio: Callable[[dict[str, str]], StdioServer]
) -> None:
    server = spawn_stdio(server_env(tmp_path))
    server.wait_until_serving()  # stdin stays open and nothing is sent: the stdin thread is blocked

    server.stop_with(signum)

    assert_stopped_cleanly(signum, server.process.returncode, server.stderr())


@pytest.mark.parametrize("signum", STOP_SIGNALS)
def test_a_signal_stops_the_stdio_server_after_a_handshake_and_closes_what_it_opened(
    signum: int, tmp_path: Path, spawn_stdio: Callable[[dict[str, str]], StdioServer]
) -> None:
    server = spawn_stdio(server_env(tmp_path))
    server.handshake()
    names = {tool["name"] for tool in server.call("tools/list")["tools"]}
    assert {"upscale_v3", "download_assets", "list_jobs"} <= names
    # Open the ledger and start the built-in simulator (in a thread, on loopback), to see both closed.
    assert not server.call("tools/call", {"name": "list_jobs", "arguments": {}}).get("isError")
    missing = server.call("tools/call", {"name": "get_job", "arguments": {"jobId": "job_missing"}})
    assert missing.get("isError"), missing  # the simulator answered 404
    assert "using the built-in simulator" in server.stderr()
    # The ledger and the simulator's state folder are open (SQLite in WAL mode).
    wals = sorted((tmp_path / "state").rglob("*-wal"))
    assert [wal.name for wal in wals] == ["ledger.sqlite3-wal", "simulator.sqlite3-wal"]

    server.stop_with(signum)

    stderr = server.stderr()
    assert_stopped_cleanly(signum, server.process.returncode, stderr)
    assert "Finished server process" in stderr  # the simulator's uvicorn stopped, not killed
    # SQLite removes a WAL file when its last connection closes.
    assert not [wal for wal in wals if wal.exists()]


def test_a_second_signal_does_not_break_the_stop(
    tmp_path: Path, spawn_stdio: Callable[[dict[str, str]], StdioServer]
) -> None:
    server = spawn_stdio(server_env(tmp_path))
    server.wait_until_serving()
    server.process.send_signal(signal.SIGINT)
    server.stop_with(signal.SIGINT)  # Ctrl-C pressed twice

    assert_stopped_cleanly(signal.SIGINT, server.process.returncode, server.stderr())


def test_closing_stdin_still_ends_the_server_with_status_0(
    tmp_path: Path, spawn_stdio: Callable[[dict[str, str]], StdioServer]
) -> None:
    server = spawn_stdio(server_env(tmp_path))
    server.handshake()
    assert server.process.stdin is not None
    server.process.stdin.close()
    assert server.process.wait(timeout=STOP_SECONDS + 3) == 0, server.stderr()
    assert "Traceback" not in server.stderr()


# -- a download in flight ------------------------------------------------------------------------------


class StallDownloads:
    """ASGI middleware for the simulator: a CDN download sends its first bytes, then waits for the
    client to go away, so the server is mid-download (its temporary file on disk) for as long as needed."""

    def __init__(self, app: ASGIApp, after_bytes: int) -> None:
        self.app = app
        self.after_bytes = after_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/cdn/"):
            await self.app(scope, receive, send)
            return
        sent = 0

        async def send_then_stall(message: Message) -> None:
            nonlocal sent
            await send(message)
            if message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
                if sent >= self.after_bytes:
                    while (await receive())["type"] != "http.disconnect":
                        pass  # the rest is then sent nowhere (uvicorn drops writes to a closed connection)

        await self.app(scope, receive, send_then_stall)


@pytest.fixture
def stalling_api() -> Iterator[tuple[str, str]]:
    """A simulator on loopback whose CDN stalls mid-download; yields (base URL, id of a ~6 MB asset)."""
    api = Sandbox(job_seconds=0.5)
    asset_id = api.add_asset(noise_png(noise_size(DOWNLOAD_BYTES / 1_000_000)), "noise.png")
    api.app.add_middleware(StallDownloads, after_bytes=STALL_AFTER_BYTES)
    with serve_in_thread(api) as base_url:
        yield base_url, asset_id


def wait_for_partial_file(folder: Path, process: subprocess.Popen[bytes], log: Path) -> Path:
    """The download's hidden temporary file, once a first batch (4 MiB) has been written to it."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text()}")
        for path in folder.glob(".*.part"):
            with suppress(FileNotFoundError):
                if path.stat().st_size >= 4 * 1024 * 1024:
                    return path
        time.sleep(0.02)
    pytest.fail(f"no partial download appeared in {folder}: {list(folder.iterdir())}\n{log.read_text()}")


@pytest.mark.parametrize("signum", STOP_SIGNALS)
def test_a_signal_during_a_download_over_stdio_leaves_no_temporary_file(
    signum: int,
    tmp_path: Path,
    spawn_stdio: Callable[[dict[str, str]], StdioServer],
    stalling_api: tuple[str, str],
) -> None:
    base_url, asset_id = stalling_api
    output = tmp_path / "output"
    server = spawn_stdio(server_env(tmp_path, SCENARIO_BASE_URL=base_url))
    server.handshake()
    server.request("tools/call", {"name": "download_assets", "arguments": {"assetIds": [asset_id]}})
    partial = wait_for_partial_file(output, server.process, server.log)

    server.stop_with(signum, within=5)

    assert not partial.exists(), server.stderr()
    assert list(output.iterdir()) == []  # no temporary file, and no half file under a final name
    assert_stopped_cleanly(signum, server.process.returncode, server.stderr())


# -- HTTP ------------------------------------------------------------------------------------------------


class HttpServer(ServerProcess):
    """The installed server serving MCP over HTTP on a free loopback port, once it listens."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        port = free_loopback_port()
        self.url = f"http://127.0.0.1:{port}/mcp"
        super().__init__(
            ["--transport", "http", "--host", "127.0.0.1", "--port", str(port)], env, log, pipes=False
        )
        wait_until_listening(port, self.process, log)


@pytest.fixture
def spawn_http(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], HttpServer]]:
    yield from spawner(HttpServer, tmp_path, "http")


@pytest.mark.parametrize("signum", STOP_SIGNALS)
def test_a_signal_stops_an_idle_http_server(
    signum: int, tmp_path: Path, spawn_http: Callable[[dict[str, str]], HttpServer]
) -> None:
    server = spawn_http(server_env(tmp_path))

    server.stop_with(signum)

    assert_stopped_cleanly(signum, server.process.returncode, server.stderr())


@pytest.mark.parametrize("signum", STOP_SIGNALS)
def test_a_signal_stops_an_http_server_with_a_session_open(
    signum: int, tmp_path: Path, spawn_http: Callable[[dict[str, str]], HttpServer]
) -> None:
    server = spawn_http(server_env(tmp_path))
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": LEGACY_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "test_signals", "version": "0"},
        },
    }
    with httpx.Client(trust_env=False, timeout=30) as http:
        answer = http.post(server.url, json=initialize, headers=headers)
        assert answer.status_code == 200, answer.text
        session = {"Mcp-Session-Id": answer.headers["mcp-session-id"], "Mcp-Protocol-Version": LEGACY_VERSION}
        notified = http.post(
            server.url,
            json={"jsonrpc": "2.0", "method": "notifications/initialized"},
            headers=headers | session,
        )
        assert notified.status_code == 202, notified.text
        listed = http.post(
            server.url, json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, headers=headers | session
        )
        assert "download_assets" in listed.text

        server.stop_with(signum)

    assert_stopped_cleanly(signum, server.process.returncode, server.stderr())


@pytest.mark.anyio
async def test_sigterm_during_a_download_over_http_cancels_it_promptly(
    mode: str,
    tmp_path: Path,
    spawn_http: Callable[[dict[str, str]], HttpServer],
    stalling_api: tuple[str, str],
) -> None:
    base_url, asset_id = stalling_api
    output = tmp_path / "output"
    server = spawn_http(server_env(tmp_path, SCENARIO_BASE_URL=base_url))
    failures: list[BaseException] = []
    partial: Path | None = None
    stopped_after = float("inf")

    async def download(client: Client) -> None:
        try:
            await client.call_tool("download_assets", {"assetIds": [asset_id]})
        except Exception as exc:  # the server stops mid-call: the call fails, one way or another
            failures.append(exc)

    with anyio.fail_after(60):
        try:
            async with (
                Client(server.url, mode=mode, read_timeout_seconds=30) as client,
                anyio.create_task_group() as group,
            ):
                group.start_soon(download, client)
                partial = await anyio.to_thread.run_sync(
                    wait_for_partial_file, output, server.process, server.log
                )
                sent = time.monotonic()
                server.process.send_signal(signal.SIGTERM)
                with suppress(subprocess.TimeoutExpired):
                    await anyio.to_thread.run_sync(lambda: server.process.wait(timeout=5))
                stopped_after = time.monotonic() - sent
        except Exception as exc:  # closing a session with a server that is gone
            failures.append(exc)

    assert server.process.returncode is not None, f"still running 5 s after SIGTERM:\n{server.stderr()}"
    assert stopped_after < 3, f"took {stopped_after:.1f} s:\n{server.stderr()}"
    assert_stopped_cleanly(signal.SIGTERM, server.process.returncode, server.stderr())
    assert partial is not None and not partial.exists()
    assert list(output.iterdir()) == []
    assert failures  # the call did not pretend to succeed


# -- reading stdin -------------------------------------------------------------------------------------


def test_stdin_is_split_into_lines_whatever_the_chunks() -> None:
    big = b'{"jsonrpc": "2.0", "id": 1, "params": "' + b"x" * 300_000 + b'"}\n'  # spans several reads
    sent = b'{"a": 1}\n{"b": 2}\r\n' + big + b"\n" + "é\n".encode() + b"no newline at the end"
    reader, writer = os.pipe()

    def write() -> None:
        with os.fdopen(writer, "wb") as pipe:  # in pieces that do not follow the lines
            for start in range(0, len(sent), 7_777):
                pipe.write(sent[start : start + 7_777])
                pipe.flush()

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    try:
        lines = list(_read_lines(reader))
    finally:
        os.close(reader)
        thread.join(timeout=10)
    assert lines == [b'{"a": 1}\n', b'{"b": 2}\r\n', big, b"\n", "é\n".encode(), b"no newline at the end"]
    assert b"".join(lines) == sent
