"""https and data: image inputs: public hosts only (on every redirect), size caps, sniffed as images.

No test here opens a connection: host names resolve through the `dns` fixture, web servers are
in-process handlers (`api.web`), and refused addresses are refused before any request is made — a
refused host that reached the transport would show up in `api.requests`.
"""

from __future__ import annotations

import base64

import httpx
import pytest
from mcp import Client

from scenario_upscale_mcp.urls import refusal
from tests.conftest import RecordingTransport, png_bytes

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.9", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.251", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "not publicly routable"),
        ("::ffff:127.0.0.1", "loopback"),
        ("fd00::1", "private"),
        ("2002:a9fe:a9fe::", "link-local"),  # 6to4 wrapping 169.254.169.254
        ("2002:0a00:0001::1", "private"),  # 6to4 wrapping 10.0.0.1
    ],
)
def test_non_public_addresses_are_named(address: str, reason: str) -> None:
    assert refusal(address) == reason


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "8.8.8.8"])
def test_public_addresses_pass(address: str) -> None:
    assert refusal(address) is None


async def refused(client: Client, image: str) -> str:
    result = await client.call_tool("upload_image", {"image": image})
    assert result.is_error, result.content
    text: str = result.content[0].text  # type: ignore[union-attr]
    return text


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://127.0.0.1/cat.png", "127.0.0.1, a loopback address"),
        ("https://[::1]/cat.png", "::1, a loopback address"),
        ("https://10.0.0.8/cat.png", "10.0.0.8, a private address"),
        ("https://169.254.169.254/latest/meta-data", "169.254.169.254, a link-local address"),
        ("https://localhost/cat.png", "is this machine"),
        ("http://example.com/cat.png", "only https:// URLs are accepted"),
    ],
)
async def test_urls_to_non_public_hosts_are_refused_before_any_request(
    client: Client, api: RecordingTransport, url: str, expected: str
) -> None:
    text = await refused(client, url)
    assert expected in text
    assert api.requests == []


async def test_a_name_resolving_to_a_private_address_is_refused(
    client: Client, api: RecordingTransport, dns: dict[str, list[str]]
) -> None:
    dns["intranet.example.com"] = ["93.184.215.14", "192.168.0.10"]  # one bad address is enough
    text = await refused(client, "https://intranet.example.com/logo.png")
    assert "192.168.0.10, a private address" in text
    assert api.requests == []


async def test_a_name_that_does_not_resolve_is_refused(client: Client, api: RecordingTransport) -> None:
    text = await refused(client, "https://nowhere.example.com/logo.png")
    assert "resolved to no address" in text
    assert api.requests == []


async def test_every_redirect_is_checked_too(
    client: Client, api: RecordingTransport, dns: dict[str, list[str]]
) -> None:
    dns["cdn.example.com"] = ["93.184.215.14"]
    api.web["cdn.example.com"] = lambda request: httpx.Response(
        302, headers={"location": "https://169.254.169.254/latest/meta-data/iam"}
    )
    text = await refused(client, "https://cdn.example.com/pic.png")
    assert "169.254.169.254, a link-local address" in text
    assert [r.url.host for r in api.requests] == ["cdn.example.com"]  # the metadata address was never asked


async def test_a_redirect_to_a_public_host_is_followed(
    client: Client, api: RecordingTransport, dns: dict[str, list[str]]
) -> None:
    dns["short.example"] = ["93.184.215.14"]
    dns["images.example.org"] = ["2606:2800:21f:cb07:6820:80da:af6b:8b2c"]
    api.web["short.example"] = lambda request: httpx.Response(
        301, headers={"location": "https://images.example.org/a.png"}
    )
    api.web["images.example.org"] = lambda request: httpx.Response(200, content=png_bytes(12, 10))
    result = await client.call_tool("upload_image", {"image": "https://short.example/x"})
    assert not result.is_error, result.content
    assert result.structured_content is not None
    assert (result.structured_content["width"], result.structured_content["height"]) == (12, 10)


async def test_a_url_body_that_is_not_an_image_is_refused(
    client: Client, api: RecordingTransport, dns: dict[str, list[str]]
) -> None:
    dns["example.com"] = ["93.184.215.14"]
    api.web["example.com"] = lambda request: httpx.Response(200, text="<html>login</html>")
    text = await refused(client, "https://example.com/cat.png")
    assert "does not decode as an image" in text
    assert not any(r.url.path.startswith("/v1/") for r in api.requests)  # nothing uploaded


async def test_a_url_body_over_the_cap_is_refused(
    settings_cap: None, client: Client, api: RecordingTransport, dns: dict[str, list[str]]
) -> None:
    dns["example.com"] = ["93.184.215.14"]
    api.web["example.com"] = lambda request: httpx.Response(200, content=png_bytes() + b"\0" * 5000)
    text = await refused(client, "https://example.com/big.png")
    assert "over the 4,000-byte limit" in text or "the limit is 4,000" in text
    assert not any(r.url.path.startswith("/v1/") for r in api.requests)


@pytest.fixture
def settings_cap(settings: object) -> None:
    settings.max_input_bytes = 4000  # type: ignore[attr-defined]


async def test_a_data_uri_over_the_cap_is_refused_before_decoding(
    settings_cap: None, client: Client, api: RecordingTransport
) -> None:
    payload = base64.b64encode(b"\0" * 6000).decode()
    text = await refused(client, f"data:image/png;base64,{payload}")
    assert "holds more than 4,000 bytes" in text
    assert api.requests == []
