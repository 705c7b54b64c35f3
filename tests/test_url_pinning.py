"""DNS rebinding: a URL input's connection goes to the addresses its host check approved, nothing else.

These tests run the production fetch (`fetch_url` → `ScenarioClient.open_public_url` → the pinned
transport httpx builds for it) with only the socket layer replaced: `FakeInternet` is an httpcore
network backend that serves HTTP/1.1 in-process and records every dial and TLS handshake. It opens
no socket. Its "addresses" are only dictionary keys; when asked to dial a *name*, it resolves it
with the same rebinding DNS the check used, as a real connection would — which is how the control
test shows that, without pinning, the second answer wins.
"""

from __future__ import annotations

import http
import ipaddress
import ssl
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpcore
import httpx
import pytest

from scenario_upscale_mcp.api.client import ScenarioClient
from scenario_upscale_mcp.api.errors import InputError
from scenario_upscale_mcp.api.pinned import PinnedNetwork
from scenario_upscale_mcp.config import Settings
from scenario_upscale_mcp.images.references import UrlReference
from scenario_upscale_mcp.images.sources import fetch_url
from tests.images import png_bytes

pytestmark = pytest.mark.anyio

PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"


class RebindingDNS:
    """Answers each name from a list of answers, one per question; the last one repeats."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        times = self.asked.count(host)
        self.asked.append(host)
        sequence = self.answers.get(host, [[]])
        return sequence[min(times, len(sequence) - 1)]


@dataclass(frozen=True)
class Received:
    address: str  # where the connection went
    sni: str | None  # the name TLS was started with (SNI and certificate check)
    method: str
    target: str
    host_header: str


Handler = Callable[[Received], tuple[int, dict[str, str], bytes]]


@dataclass
class FakeInternet(httpcore.AsyncNetworkBackend):
    """The socket layer, in-process: `sites` maps an address to what it answers."""

    dns: RebindingDNS | None = None
    sites: dict[str, Handler] = field(default_factory=dict)
    dialled: list[tuple[str, str, int]] = field(default_factory=list)  # (asked for, address, port)
    handshakes: list[tuple[str, str | None, bool, ssl.VerifyMode]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            address = str(ipaddress.ip_address(host))
        except ValueError:  # a name: resolved here, as a real connection would (a second DNS answer)
            answers = await self.dns(host, port) if self.dns else []
            if not answers:
                raise httpcore.ConnectError(f"{host} does not resolve") from None
            address = answers[0]
        self.dialled.append((host, address, port))
        if address not in self.sites:
            raise httpcore.ConnectError(f"connection to {address} refused")
        return FakeStream(self, address)

    async def sleep(self, seconds: float) -> None:
        return None


class FakeStream(httpcore.AsyncNetworkStream):
    def __init__(self, internet: FakeInternet, address: str) -> None:
        self._internet = internet
        self._address = address
        self._sni: str | None = None
        self._incoming = b""
        self._outgoing = b""
        self._answered = False

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        self._incoming += buffer
        if self._answered or b"\r\n\r\n" not in self._incoming:
            return
        self._answered = True
        head = self._incoming.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        request_line, *header_lines = head.split("\r\n")
        method, target, _ = request_line.split(" ")
        headers = {
            name.strip().lower(): value.strip() for name, value in (h.split(":", 1) for h in header_lines)
        }
        request = Received(self._address, self._sni, method, target, headers.get("host", ""))
        self._internet.received.append(request)
        status, extra, body = self._internet.sites[self._address](request)
        lines = [
            f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}",
            f"Content-Length: {len(body)}",
            "Connection: close",
            *(f"{name}: {value}" for name, value in extra.items()),
        ]
        self._outgoing = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        chunk, self._outgoing = self._outgoing[:max_bytes], self._outgoing[max_bytes:]
        return chunk  # b"" once answered: the server closed the connection

    async def aclose(self) -> None:
        return None

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> httpcore.AsyncNetworkStream:
        self._internet.handshakes.append(
            (self._address, server_hostname, ssl_context.check_hostname, ssl_context.verify_mode)
        )
        self._sni = server_hostname
        return self  # the handshake itself is not simulated: what matters is what it was asked to verify

    def get_extra_info(self, info: str) -> typing.Any:
        return None


def image(width: int = 16, height: int = 9) -> Handler:
    return lambda request: (200, {"content-type": "image/png"}, png_bytes(width, height))


def redirect(location: str) -> Handler:
    return lambda request: (302, {"location": location}, b"")


def secret(request: Received) -> tuple[int, dict[str, str], bytes]:
    return 200, {}, b"the router's admin page"


async def fetch(
    settings: Settings, internet: FakeInternet, dns: RebindingDNS, url: str, folder: Path
) -> None:
    async with ScenarioClient(settings, network_backend=internet) as client:
        checked = await fetch_url(client, UrlReference(url), settings, dns, folder, "image")
    assert (checked.width, checked.height) == (16, 9)


async def test_the_connection_goes_to_the_checked_address_when_dns_answers_differently_the_second_time(
    settings: Settings, tmp_path: Path
) -> None:
    dns = RebindingDNS({"images.example.com": [[PUBLIC_V4], ["127.0.0.1"]]})
    internet = FakeInternet(dns, {PUBLIC_V4: image(), "127.0.0.1": secret})

    await fetch(settings, internet, dns, "https://images.example.com/cat.png", tmp_path)

    assert dns.asked == ["images.example.com"]  # checked once; the connection asked nothing
    assert internet.dialled == [(PUBLIC_V4, PUBLIC_V4, 443)]  # dialled by address, not by name
    # TLS still names (SNI) and verifies the URL's host, not the address.
    assert internet.handshakes == [(PUBLIC_V4, "images.example.com", True, ssl.CERT_REQUIRED)]
    assert [(r.address, r.host_header, r.target) for r in internet.received] == [
        (PUBLIC_V4, "images.example.com", "/cat.png")
    ]
    # The next fetch is checked afresh, sees the new answer, and is refused before any dial.
    with pytest.raises(InputError, match=r"127\.0\.0\.1, a loopback address"):
        await fetch(settings, internet, dns, "https://images.example.com/cat.png", tmp_path)
    assert len(internet.dialled) == 1


async def test_control_without_pinning_the_second_answer_wins(settings: Settings) -> None:
    """The fake can tell: the same request over plain httpx (connect by name) reaches 127.0.0.1."""
    dns = RebindingDNS({"images.example.com": [[PUBLIC_V4], ["127.0.0.1"]]})
    internet = FakeInternet(dns, {PUBLIC_V4: image(), "127.0.0.1": secret})
    await dns("images.example.com", 443)  # the check, answered with the public address
    transport = httpx.AsyncHTTPTransport()
    transport._pool = httpcore.AsyncConnectionPool(network_backend=internet)
    async with httpx.AsyncClient(transport=transport) as plain:
        response = await plain.get("https://images.example.com/cat.png")
    assert response.content == b"the router's admin page"
    assert internet.dialled == [("images.example.com", "127.0.0.1", 443)]


async def test_every_redirect_hop_is_pinned_to_its_own_check(settings: Settings, tmp_path: Path) -> None:
    dns = RebindingDNS(
        {
            "short.example": [[PUBLIC_V4], ["10.0.0.1"]],
            "cdn.example.org": [[PUBLIC_V6], ["169.254.169.254"]],
        }
    )
    internet = FakeInternet(
        dns,
        {
            PUBLIC_V4: redirect("https://cdn.example.org/a/cat.png"),
            PUBLIC_V6: image(),
            "10.0.0.1": secret,
            "169.254.169.254": secret,
        },
    )

    await fetch(settings, internet, dns, "https://short.example/x", tmp_path)

    assert dns.asked == ["short.example", "cdn.example.org"]
    assert internet.dialled == [(PUBLIC_V4, PUBLIC_V4, 443), (PUBLIC_V6, PUBLIC_V6, 443)]
    assert [(address, sni) for address, sni, _, _ in internet.handshakes] == [
        (PUBLIC_V4, "short.example"),
        (PUBLIC_V6, "cdn.example.org"),
    ]
    assert [r.host_header for r in internet.received] == ["short.example", "cdn.example.org"]


async def test_a_redirect_to_a_host_that_fails_its_check_is_never_dialled(
    settings: Settings, tmp_path: Path
) -> None:
    dns = RebindingDNS({"short.example": [[PUBLIC_V4]], "intranet.example": [["10.0.0.5"]]})
    internet = FakeInternet(
        dns, {PUBLIC_V4: redirect("https://intranet.example/logo.png"), "10.0.0.5": secret}
    )
    with pytest.raises(InputError, match=r"10\.0\.0\.5, a private address"):
        await fetch(settings, internet, dns, "https://short.example/x", tmp_path)
    assert internet.dialled == [(PUBLIC_V4, PUBLIC_V4, 443)]


async def test_when_one_checked_address_fails_the_next_checked_one_is_tried(
    settings: Settings, tmp_path: Path
) -> None:
    dns = RebindingDNS({"images.example.com": [[PUBLIC_V6, PUBLIC_V4], ["127.0.0.1"]]})
    internet = FakeInternet(dns, {PUBLIC_V4: image(), "127.0.0.1": secret})  # the IPv6 address refuses
    await fetch(settings, internet, dns, "https://images.example.com/cat.png", tmp_path)
    assert internet.dialled == [(PUBLIC_V6, PUBLIC_V6, 443), (PUBLIC_V4, PUBLIC_V4, 443)]


async def test_an_address_literal_is_dialled_as_given_and_named_in_tls(
    settings: Settings, tmp_path: Path
) -> None:
    dns = RebindingDNS({})
    internet = FakeInternet(dns, {PUBLIC_V6: image()})
    await fetch(settings, internet, dns, f"https://[{PUBLIC_V6}]:8443/cat.png", tmp_path)
    assert dns.asked == []
    assert internet.dialled == [(PUBLIC_V6, PUBLIC_V6, 8443)]
    assert internet.handshakes[0][:2] == (PUBLIC_V6, PUBLIC_V6)


async def test_an_international_name_is_checked_and_verified_as_the_connection_names_it(
    settings: Settings, tmp_path: Path
) -> None:
    dns = RebindingDNS({"xn--bcher-kva.example": [[PUBLIC_V4], ["127.0.0.1"]]})
    internet = FakeInternet(dns, {PUBLIC_V4: image(), "127.0.0.1": secret})
    await fetch(settings, internet, dns, "https://bücher.example/cat.png", tmp_path)
    assert dns.asked == ["xn--bcher-kva.example"]
    assert internet.dialled == [(PUBLIC_V4, PUBLIC_V4, 443)]
    assert internet.handshakes[0][:2] == (PUBLIC_V4, "xn--bcher-kva.example")


async def test_a_proxy_in_the_environment_does_not_take_the_connection_elsewhere(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # a proxy would resolve the name again
    dns = RebindingDNS({"images.example.com": [[PUBLIC_V4], ["127.0.0.1"]]})
    internet = FakeInternet(dns, {PUBLIC_V4: image()})
    await fetch(settings, internet, dns, "https://images.example.com/cat.png", tmp_path)
    assert internet.dialled == [(PUBLIC_V4, PUBLIC_V4, 443)]


async def test_the_socket_layer_refuses_a_host_that_was_not_checked() -> None:
    internet = FakeInternet(RebindingDNS({"evil.example": [["127.0.0.1"]]}), {"127.0.0.1": secret})
    network = PinnedNetwork({("images.example.com", 443): [PUBLIC_V4]}, internet)
    with pytest.raises(httpcore.ConnectError, match="not checked"):
        await network.connect_tcp("evil.example", 443)
    with pytest.raises(httpcore.ConnectError, match="not checked"):
        await network.connect_tcp("images.example.com", 8443)  # pinned for another port only
    assert internet.dialled == []
