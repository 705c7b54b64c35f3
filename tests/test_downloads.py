"""Downloads over a real loopback socket, through the production transport: exact bytes, the body read
straight off the connection, a cut connection retried once, an expired link, cancellation that
stops at once (mid-body, or before any answer) and leaves nothing behind, the no-overwrite rule,
and the same over TLS (the certificate verified as the environment says).

The in-process tests reach the simulator through an injected transport (`LoopTransport`), which
has no socket; here the simulator is served by uvicorn on 127.0.0.1 and the client is built as in
production (no transport), so the path that reads a body past httpx's parser, and the shutdown of
a connection a cancelled download is blocked on, are covered too.
"""

from __future__ import annotations

import gzip
import hashlib
import ipaddress
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scenario_upscale_mcp.api import transfers
from scenario_upscale_mcp.api.client import ScenarioClient
from scenario_upscale_mcp.api.errors import DownloadError
from scenario_upscale_mcp.config import Settings
from scenario_upscale_mcp.jobs.saving import save_asset
from scenario_upscale_mcp.outputs.writing import save_download
from scenario_upscale_mcp.sandbox.app import Sandbox
from scenario_upscale_mcp.sandbox.serving import serve_in_thread
from tests.images import noise_png, noise_size, png_bytes
from tests.test_client import make_client

pytestmark = pytest.mark.anyio

LARGE_BYTES = 6_000_000  # several direct reads of 1 MiB after httpx's first chunk
CANCELLED_WITHIN_SECONDS = 2.0  # far below the read timeout set below: only the interruption is that quick
READ_TIMEOUT_SECONDS = 60.0


class HoldCdn:
    """ASGI middleware for the simulator: a CDN answer sends `after_bytes` of its body (with None, not
    even its headers), then waits for the client to go away. `holding` is set once a request is held."""

    def __init__(
        self, app: ASGIApp, after_bytes: int | None, holding: threading.Event, only: str = ""
    ) -> None:
        self.app = app
        self.after_bytes = after_bytes
        self.holding = holding
        self.only = only  # the file name of the one asset held, or every one

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/cdn/") or not path.endswith(self.only):
            await self.app(scope, receive, send)
            return
        if self.after_bytes is None:
            self.holding.set()
            while (await receive())["type"] != "http.disconnect":
                pass
            return
        sent = 0

        async def send_then_hold(message: Message) -> None:
            nonlocal sent
            await send(message)
            if message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
                if sent >= (self.after_bytes or 0):
                    self.holding.set()
                    while (await receive())["type"] != "http.disconnect":
                        pass

        await self.app(scope, receive, send_then_hold)


@contextmanager
def served(api: Sandbox) -> Iterator[Settings]:
    with serve_in_thread(api) as base_url:
        yield Settings(
            api_key="key", api_secret="secret", base_url=base_url, http_timeout_seconds=READ_TIMEOUT_SECONDS
        )


@pytest.fixture
async def client_for() -> AsyncIterator[list[ScenarioClient]]:
    made: list[ScenarioClient] = []
    yield made
    for client in made:
        await client.aclose()


def production_client(settings: Settings, made: list[ScenarioClient]) -> ScenarioClient:
    client = ScenarioClient(settings)  # no transport: the downloads' client dials for real
    made.append(client)
    return client


def named(stem: str) -> Callable[[str], str]:
    return lambda extension: f"{stem}.{extension}"


@pytest.fixture
def direct_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of the reads made straight off the connection (after httpx's first chunk)."""
    sizes: list[int] = []
    original = transfers._reader

    def spied(stream: Any, timeout: float | None) -> Callable[[memoryview], int]:
        read_into = original(stream, timeout)

        def counting(buffer: memoryview) -> int:
            received = read_into(buffer)
            sizes.append(received)
            return received

        return counting

    monkeypatch.setattr(transfers, "_reader", spied)
    return sizes


@pytest.fixture(params=["socket", "stream"])
def reads(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways a body is read off the connection: the socket's `recv_into` (httpcore's socket
    stream), and the stream's own `read` (any other stream, such as TLS inside a TLS proxy's)."""
    if request.param == "socket":
        assert transfers._SOCKET_STREAM.__name__ == "SyncStream"  # httpcore's, found where expected
    else:

        class NoSocketStream:
            pass

        monkeypatch.setattr(transfers, "_SOCKET_STREAM", NoSocketStream)
    return str(request.param)


async def test_a_large_download_is_saved_byte_for_byte_reading_the_connection_directly(
    tmp_path: Path, client_for: list[ScenarioClient], direct_reads: list[int], reads: str
) -> None:
    api = Sandbox()
    data = noise_png(noise_size(LARGE_BYTES / 1_000_000))
    asset_id = api.add_asset(data, "noise.png")
    with served(api) as settings:
        client = production_client(settings, client_for)
        saved = await save_asset(client, asset_id, tmp_path, named("noise"))

    assert saved.path == tmp_path / "noise.png" and saved.bytes == len(data)
    assert hashlib.sha256(saved.path.read_bytes()).digest() == hashlib.sha256(data).digest()
    assert list(tmp_path.iterdir()) == [saved.path]  # no temporary file left
    assert sum(direct_reads) > len(data) // 2 and max(direct_reads) <= transfers.DOWNLOAD_READ_BYTES


async def test_a_small_download_is_read_by_httpx_alone_and_saved_whole(
    tmp_path: Path, client_for: list[ScenarioClient], direct_reads: list[int]
) -> None:
    api = Sandbox()
    data = png_bytes()
    first, second = api.add_asset(data, "a.png"), api.add_asset(data, "b.png")
    with served(api) as settings:
        client = production_client(settings, client_for)
        one = await save_asset(client, first, tmp_path, named("one"))
        two = await save_asset(client, second, tmp_path, named("two"))

    assert one.path.read_bytes() == data and two.path.read_bytes() == data
    assert direct_reads == []  # the whole body came with the headers


async def test_a_cut_download_is_retried_once_and_then_saved_whole(
    tmp_path: Path, client_for: list[ScenarioClient]
) -> None:
    api = Sandbox()
    data = noise_png(noise_size(LARGE_BYTES / 1_000_000))
    asset_id = api.add_asset(data, "noise.png")
    api.faults.truncate_downloads = 1  # the first answer promises every byte and sends half
    with served(api) as settings:
        client = production_client(settings, client_for)
        saved = await save_asset(client, asset_id, tmp_path, named("noise"))

    assert saved.path.read_bytes() == data
    assert list(tmp_path.iterdir()) == [saved.path]
    assert [path for _, path in api.requests if path.startswith("/cdn/")] == [
        f"/cdn/{asset_id}/noise.png"
    ] * 2


async def test_a_download_cut_twice_fails_and_leaves_no_file(
    tmp_path: Path, client_for: list[ScenarioClient]
) -> None:
    api = Sandbox()
    asset_id = api.add_asset(noise_png(noise_size(LARGE_BYTES / 1_000_000)), "noise.png")
    api.faults.truncate_downloads = 2
    with served(api) as settings:
        client = production_client(settings, client_for)
        with pytest.raises(DownloadError, match=r"cut short|interrupted"):
            await save_asset(client, asset_id, tmp_path, named("noise"))

    assert list(tmp_path.iterdir()) == []


async def test_an_expired_link_says_so_and_leaves_no_file(
    tmp_path: Path, client_for: list[ScenarioClient]
) -> None:
    api = Sandbox()
    asset_id = api.add_asset(png_bytes(), "a.png")
    api.faults.expire_urls = True
    with served(api) as settings:
        client = production_client(settings, client_for)
        with pytest.raises(DownloadError, match="answered 403 \\(the signed URL expired"):
            await save_asset(client, asset_id, tmp_path, named("a"))

    assert list(tmp_path.iterdir()) == []


async def test_a_download_never_overwrites_an_existing_file(
    tmp_path: Path, client_for: list[ScenarioClient]
) -> None:
    api = Sandbox()
    data = noise_png(noise_size(LARGE_BYTES / 1_000_000))
    asset_id = api.add_asset(data, "noise.png")
    (tmp_path / "noise.png").write_bytes(b"mine")
    with served(api) as settings:
        client = production_client(settings, client_for)
        first = await save_asset(client, asset_id, tmp_path, named("noise"))
        second = await save_asset(client, asset_id, tmp_path, named("noise"))

    assert (tmp_path / "noise.png").read_bytes() == b"mine"
    assert (first.path.name, second.path.name) == ("noise-1.png", "noise-2.png")
    assert first.path.read_bytes() == data and second.path.read_bytes() == data


async def cancel_when(condition: Callable[[], bool], work: Callable[[], Coroutine[Any, Any, None]]) -> float:
    """Run `work()`, cancel it once `condition()` holds; return the seconds from cancel to its end."""
    cancelled_at = 0.0
    async with anyio.create_task_group() as group:
        group.start_soon(work)
        for _ in range(3000):  # 30 s at most
            if condition():
                break
            await anyio.sleep(0.01)
        else:
            pytest.fail("the download never reached the point to cancel it at")
        cancelled_at = time.perf_counter()
        group.cancel_scope.cancel()
    return time.perf_counter() - cancelled_at


async def test_a_download_cancelled_mid_body_stops_at_once_and_leaves_nothing(
    tmp_path: Path, client_for: list[ScenarioClient], reads: str
) -> None:
    api = Sandbox()
    asset_id = api.add_asset(noise_png(noise_size(LARGE_BYTES / 1_000_000)), "noise.png")
    held = threading.Event()
    api.app.add_middleware(HoldCdn, after_bytes=2_000_000, holding=held)  # then silent: the read blocks
    with served(api) as settings:
        client = production_client(settings, client_for)

        def partial_written() -> bool:
            return held.is_set() and any(
                path.stat().st_size >= 1_000_000 for path in tmp_path.glob(".*.part")
            )

        async def download() -> None:
            await save_asset(client, asset_id, tmp_path, named("noise"))

        seconds = await cancel_when(partial_written, download)

    assert seconds < CANCELLED_WITHIN_SECONDS  # not the 60 s read timeout: the blocked read was interrupted
    assert list(tmp_path.iterdir()) == []


async def test_a_download_cancelled_before_its_answer_ends_at_once_and_leaves_nothing(
    tmp_path: Path, client_for: list[ScenarioClient]
) -> None:
    api = Sandbox()
    asset_id = api.add_asset(png_bytes(), "a.png")
    held = threading.Event()
    api.app.add_middleware(HoldCdn, after_bytes=None, holding=held)  # no answer at all
    with served(api) as settings:
        client = production_client(settings, client_for)

        async def download() -> None:
            await save_asset(client, asset_id, tmp_path, named("a"))

        seconds = await cancel_when(held.is_set, download)

    assert seconds < CANCELLED_WITHIN_SECONDS
    assert list(tmp_path.iterdir()) == []


async def test_a_compressed_body_is_saved_decoded_without_a_length_check(tmp_path: Path) -> None:
    data = png_bytes()
    client, _seen = make_client(
        lambda r: httpx.Response(200, content=gzip.compress(data), headers={"content-encoding": "gzip"})
    )
    async with client, client.open_download("https://cdn.test/a.png?sig=x") as download:
        assert download.length is None  # Content-Length counts the compressed bytes
        path, size = await save_download(tmp_path, "a.png", download)
    assert path.read_bytes() == data and size == len(data)


# --- over TLS, as from Scenario's CDN ------------------------------------------------------------------


def write_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A certificate authority and a certificate for 127.0.0.1 signed by it: (CA, certificate, key)."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(text: str) -> Any:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    now = datetime.now(UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("test CA"))
        .issuer_name(name("test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


@contextmanager
def served_over_tls(api: Sandbox, certificate: Path, key: Path) -> Iterator[Settings]:
    """The simulator on https://127.0.0.1 (uvicorn with the certificate), until the block ends."""
    config = uvicorn.Config(
        api.app,
        host="127.0.0.1",
        port=0,
        ssl_certfile=str(certificate),
        ssl_keyfile=str(key),
        lifespan="off",
        log_config=None,
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the TLS simulator did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Settings(
            api_key="key",
            api_secret="secret",
            base_url=f"https://127.0.0.1:{port}/v1",
            http_timeout_seconds=READ_TIMEOUT_SECONDS,
        )
    finally:
        server.should_exit = True
        thread.join(timeout=10)


async def test_over_tls_a_download_is_verified_saved_whole_and_cancelled_at_once(
    tmp_path: Path, direct_reads: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    ca, certificate, key = write_certificates(tmp_path)
    api = Sandbox()
    data = noise_png(noise_size(LARGE_BYTES / 1_000_000))
    whole, held_one = api.add_asset(data, "whole.png"), api.add_asset(data, "held.png")
    held = threading.Event()
    api.app.add_middleware(HoldCdn, after_bytes=2_000_000, holding=held, only="held.png")
    output = tmp_path / "output"
    with served_over_tls(api, certificate, key) as settings:
        # (Each client is closed before the server stops: TLS connections take a moment to close.)
        # Not trusted by default: the download verifies the certificate.
        trusting = ssl.create_default_context(cafile=ca)
        async with httpx.AsyncClient(verify=trusting, auth=("key", "secret")) as http:
            answer = await http.get(f"{settings.base_url}/assets/{whole}")
        async with ScenarioClient(settings) as untrusting:
            with pytest.raises(DownloadError, match="interrupted") as refused:
                async with untrusting.open_download(answer.json()["asset"]["url"]):
                    pass
        assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value.__cause__)
        # Trusted through the environment, as httpx reads it for both clients.
        monkeypatch.setenv("SSL_CERT_FILE", str(ca))
        async with ScenarioClient(settings) as client:
            saved = await save_asset(client, whole, output, named("whole"))
            assert saved.path.read_bytes() == data and sum(direct_reads) > len(data) // 2

            def partial_written() -> bool:
                return held.is_set() and any(
                    path.stat().st_size >= 1_000_000 for path in output.glob(".*.part")
                )

            async def download() -> None:
                await save_asset(client, held_one, output, named("held"))

            seconds = await cancel_when(partial_written, download)

    assert seconds < CANCELLED_WITHIN_SECONDS
    assert sorted(path.name for path in output.iterdir()) == ["whole.png"]
