"""Shared fixtures: a sandbox API served in-process, a server wired to it, and an MCP client per era.

The sandbox and the server share one fake clock (`clock`, tests/fake_clock.py): job timelines,
polling, waits and back-off run on virtual time, so no in-process test sleeps on real time. A test
that truly depends on real time is marked `@pytest.mark.real_time`: its sandbox and server then run
on the real clock.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from scenario_upscale_mcp.app import create_server
from scenario_upscale_mcp.clock import AnyioClock, Clock
from scenario_upscale_mcp.config import Settings
from scenario_upscale_mcp.sandbox.app import Sandbox
from scenario_upscale_mcp.service import Upscaler
from tests.fake_clock import FakeClock, hold_while_rendering
from tests.images import png_bytes

SANDBOX_URL = "http://sandbox.test/v1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "real_time: the sandbox and the server run on the real clock instead of the shared fake one",
    )


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own SCENARIO_* variables must not leak into a test."""
    for name in list(os.environ):
        if name.startswith("SCENARIO_"):
            monkeypatch.delenv(name)


@pytest.fixture(params=["auto", "legacy"])
def mode(request: pytest.FixtureRequest) -> str:
    """Both protocol eras: 2026-07-28 (auto) and the initialize handshake (legacy)."""
    value: str = request.param
    return value


class RecordingTransport(httpx.AsyncBaseTransport):
    """Passes requests to the sandbox app in-process and remembers each one.

    `web` plays the rest of the internet for image-URL tests: a request to one of its host names is
    answered by its handler, still in-process. Nothing here ever opens a socket.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.requests: list[httpx.Request] = []
        self.web: dict[str, Callable[[httpx.Request], httpx.Response]] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        handler = self.web.get(request.url.host)
        if handler is not None:
            return handler(request)
        return await self.inner.handle_async_request(request)

    def paths(self, method: str | None = None) -> list[str]:
        return [r.url.path for r in self.requests if method is None or r.method == method]


@pytest.fixture
def folders(tmp_path: Path) -> dict[str, Path]:
    names = {"images": tmp_path / "images", "output": tmp_path / "output", "state": tmp_path / "state"}
    for path in names.values():
        path.mkdir()
    return names


@pytest.fixture
def settings(folders: dict[str, Path]) -> Settings:
    return Settings(
        api_key="test-key",
        api_secret="test-secret",
        base_url=SANDBOX_URL,
        output_dir=folders["output"],
        allowed_dirs=[folders["images"]],
        state_dir=folders["state"],
        poll_initial_seconds=0.02,
        poll_max_seconds=0.05,
    )


@pytest.fixture
def clock() -> FakeClock:
    """Virtual time, shared by the `sandbox` and the `server`: it jumps ahead once everything waits on it."""
    return FakeClock()


@pytest.fixture
def shared_clock(request: pytest.FixtureRequest, clock: FakeClock) -> Clock:
    """The clock the `sandbox` and the `server` share: `clock`, or the real one for a `real_time` test."""
    if request.node.get_closest_marker("real_time") is not None:
        return AnyioClock()
    return clock


def simulator(clock: Clock, *, job_seconds: float = 6.0, max_output_edge: int = 8192) -> Sandbox:
    """A sandbox on `clock`; a fake clock does not move while the sandbox renders an output."""
    sandbox = Sandbox(job_seconds=job_seconds, max_output_edge=max_output_edge, clock=clock)
    if isinstance(clock, FakeClock):
        hold_while_rendering(clock, sandbox)
    return sandbox


@pytest.fixture
def sandbox(shared_clock: Clock) -> Sandbox:
    return simulator(shared_clock, job_seconds=0.3)


@pytest.fixture
def api(sandbox: Sandbox) -> RecordingTransport:
    return RecordingTransport(httpx.ASGITransport(app=sandbox.app))


@pytest.fixture
def dns() -> dict[str, list[str]]:
    """What host names resolve to, for this test (the system resolver is never asked)."""
    return {}


@pytest.fixture
def server(
    settings: Settings, api: RecordingTransport, dns: dict[str, list[str]], shared_clock: Clock
) -> MCPServer[Upscaler]:
    async def resolve(host: str, port: int) -> list[str]:
        return dns.get(host, [])

    return create_server(settings, transport=api, resolver=resolve, clock=shared_clock)


@pytest.fixture
async def client(server: MCPServer[Upscaler], mode: str) -> AsyncIterator[Client]:
    async with Client(server, mode=mode) as connected:
        yield connected


@pytest.fixture
def sample_image(folders: dict[str, Path]) -> Path:
    path = folders["images"] / "castle.png"
    path.write_bytes(png_bytes())
    return path
