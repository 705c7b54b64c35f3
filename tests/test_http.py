"""`scenario-upscale-mcp --transport http`: the server as a process on a loopback port, reached by URL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from mcp import Client

from scenario_upscale_mcp import cli
from scenario_upscale_mcp.sandbox.app import Sandbox
from scenario_upscale_mcp.sandbox.serving import serve_in_thread
from scenario_upscale_mcp.serving.http import exposure_warning
from tests.images import png_bytes

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

StartServer = Callable[[dict[str, str]], str]


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"the server did not listen on 127.0.0.1:{port} within 30 s:\n{log.read_text()}")


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """Start `scenario-upscale-mcp --transport http` on a free loopback port; return its MCP URL."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str]) -> str:
        port = free_loopback_port()
        log = tmp_path / f"server-{port}.log"
        environment = {name: value for name, value in os.environ.items() if not name.startswith("SCENARIO_")}
        with log.open("wb") as stderr:
            process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "scenario_upscale_mcp", "--transport", "http"),
                    *("--host", "127.0.0.1", "--port", str(port)),
                ],
                env=environment | env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        processes.append(process)
        wait_until_listening(port, process, log)
        return f"http://127.0.0.1:{port}/mcp"

    yield start
    for process in processes:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture
def folders_env(tmp_path: Path) -> dict[str, str]:
    images = tmp_path / "images"
    images.mkdir()
    (images / "sprite.png").write_bytes(png_bytes(80, 60))
    return {
        "SCENARIO_SANDBOX": "1",
        "SCENARIO_ALLOWED_DIRS": str(images),
        "SCENARIO_OUTPUT_DIR": str(tmp_path / "output"),
        "SCENARIO_STATE_DIR": str(tmp_path / "state"),
        "SCENARIO_POLL_INITIAL_SECONDS": "0.1",
        "SCENARIO_POLL_MAX_SECONDS": "0.2",
    }


async def test_an_http_client_lists_the_tools_and_upscales_with_progress(
    mode: str, start_server: StartServer, folders_env: dict[str, str], tmp_path: Path
) -> None:
    simulator = Sandbox(job_seconds=0.5)  # quicker than the built-in one; still the simulator, on loopback
    with serve_in_thread(simulator) as base_url:
        url = start_server(folders_env | {"SCENARIO_BASE_URL": base_url})
        reported: list[float] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            reported.append(progress)

        async with Client(url, mode=mode, read_timeout_seconds=60) as client:
            assert client.server_info is not None and client.server_info.name == "scenario-upscale-mcp"
            names = {tool.name for tool in (await client.list_tools()).tools}
            assert {"upscale_v3", "upscale_texture", "get_job", "wait_for_jobs", "list_jobs"} <= names
            result = await client.call_tool(
                "upscale_texture",
                {"image": str(tmp_path / "images" / "sprite.png"), "upscaleFactor": 2, "wait": 30},
                progress_callback=on_progress,
            )

    assert not result.is_error, result.content
    assert result.structured_content is not None
    [saved] = result.structured_content["outputs"]
    assert Path(saved["path"]).parent == tmp_path / "output" and Path(saved["path"]).is_file()
    assert (saved["width"], saved["height"]) == (160, 120)
    assert reported and reported[-1] == 1.0
    assert len(simulator.jobs) == 1


async def test_the_built_in_simulator_answers_over_http_and_two_clients_share_the_server(
    start_server: StartServer, folders_env: dict[str, str], tmp_path: Path
) -> None:
    url = start_server(folders_env)
    image = str(tmp_path / "images" / "sprite.png")
    async with (
        Client(url, mode="auto", read_timeout_seconds=60) as modern,
        Client(url, mode="legacy", read_timeout_seconds=60) as legacy,
    ):
        assert modern.protocol_version != legacy.protocol_version
        quote = await modern.call_tool("upscale_v3", {"image": image, "upscaleFactor": 4, "dryRun": True})
        listed = await legacy.call_tool("list_jobs", {})
    assert not quote.is_error, quote.content
    assert quote.structured_content is not None
    assert quote.structured_content["status"] == "not-submitted"
    assert quote.structured_content["creativeUnitsCost"] > 0
    assert not listed.is_error, listed.content


async def test_a_request_for_another_host_name_is_refused(
    start_server: StartServer, folders_env: dict[str, str]
) -> None:
    """DNS-rebinding protection: a page on evil.example resolving to 127.0.0.1 gets nowhere."""
    url = start_server(folders_env)
    async with httpx.AsyncClient(trust_env=False) as http:
        response = await http.post(
            url,
            headers={
                "Host": "evil.example",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            content=b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}',
        )
    assert response.status_code == 421


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_loopback_hosts_need_no_warning(host: str) -> None:
    assert exposure_warning(host) is None


def test_binding_beyond_loopback_warns_loudly_on_stderr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import uvicorn

    from scenario_upscale_mcp.serving import http

    bound: list[tuple[str, int]] = []
    bind_socket = http.bind_socket
    served: list[tuple[str, int]] = []

    def bind_on_loopback(host: str, port: int) -> socket.socket:
        bound.append((host, port))
        return bind_socket("127.0.0.1", 0)  # never beyond loopback in a test

    def serve(server: uvicorn.Server, sockets: list[socket.socket]) -> None:
        served.append((server.config.host, len(sockets)))
        server.started = True

    monkeypatch.setattr(http, "bind_socket", bind_on_loopback)
    monkeypatch.setattr(uvicorn.Server, "run", serve)

    cli.main(["--transport", "http", "--host", "0.0.0.0", "--port", "8123"])

    assert bound == [("0.0.0.0", 8123)] and served == [("0.0.0.0", 1)]
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "WARNING: serving MCP over HTTP on 0.0.0.0" in captured.err
    assert "no authentication" in captured.err and "reverse proxy" in captured.err


def test_the_default_is_stdio_and_http_defaults_to_loopback() -> None:
    args = cli.build_parser().parse_args([])
    assert (args.transport, args.host, args.port) == ("stdio", "127.0.0.1", 8000)


def test_the_listening_socket_says_tcp_so_answers_are_not_held_by_nagle() -> None:
    """asyncio turns Nagle off (TCP_NODELAY) only on connections whose socket says IPPROTO_TCP; with
    protocol 0 each JSON answer's body waited for the client's delayed ACK (~40 ms a call)."""
    from scenario_upscale_mcp.serving.http import bind_socket

    with bind_socket("127.0.0.1", 0) as sock:
        assert sock.proto == socket.IPPROTO_TCP
