"""https and data: image inputs: public hosts only (on every redirect), size caps, sniffed as images.

No test here opens a connection: host names resolve through the `dns` fixture, web servers are
in-process handlers (`api.web`), and refused addresses are refused before any request is made — a
refused host that reached the transport would show up in `api.requests`.
"""

from __future__ import annotations

import base64
import ipaddress
import random

import httpx
import pytest
from mcp import Client

from scenario_upscale_mcp.images.public_hosts import refusal
from tests.conftest import RecordingTransport
from tests.images import png_bytes

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


# --- the IANA special-purpose registries (IPv4 and IPv6, last updated 2025-10-09) ---------------------
# Written out here on their own, not read from urls.py, so that a row missing there fails here.
NON_PUBLIC_BLOCKS = [
    # IPv4 rows whose "Globally Reachable" is False or N/A/empty (and every address of 192.0.0.0/24)
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.0.0/29",
    "192.0.0.8/32",
    "192.0.0.9/32",  # "True" inside the "False" 192.0.0.0/24: an anycast service, refused all the same
    "192.0.0.10/32",
    "192.0.0.170/31",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.88.99.2/32",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "240.0.0.0/4",
    "255.255.255.255/32",
    "224.0.0.0/4",  # multicast (its own registry)
    # IPv6 rows whose "Globally Reachable" is False or N/A/empty (and every address of 2001::/23)
    "::1/128",
    "::/128",
    "64:ff9b:1::/48",
    "100::/64",
    "100:0:0:1::/64",
    "2001::/23",
    "2001::/32",
    "2001:1::1/128",
    "2001:2::/48",
    "2001:3::/32",
    "2001:10::/28",
    "2001:20::/28",
    "2001:30::/28",
    "2001:db8::/32",
    "2002::/16",
    "3fff::/20",
    "5f00::/16",
    "fc00::/7",
    "fe80::/10",
    "fec0::/10",  # deprecated site-local (RFC 3879), in no special-purpose registry
    "ff00::/8",  # multicast
]


def addresses_in(block: str, count: int = 6) -> list[str]:
    """The first, last and middle address of a block, and a few others picked at random (seeded)."""
    network = ipaddress.ip_network(block)
    first, last = int(network.network_address), int(network.broadcast_address)
    picker = random.Random(block)
    numbers = {first, last, (first + last) // 2, *(picker.randint(first, last) for _ in range(count))}
    return [str(ipaddress.ip_address(number)) for number in sorted(numbers)]


@pytest.mark.parametrize(
    "address", [address for block in NON_PUBLIC_BLOCKS for address in addresses_in(block)]
)
def test_every_address_of_a_non_public_special_purpose_range_is_refused(address: str) -> None:
    assert refusal(address) is not None


@pytest.mark.parametrize(
    ("address", "named"),
    [
        ("192.0.0.8", "IPv4 dummy address"),
        ("fec0::1", "Site-Local"),
        ("fefe:1:2::3", "Site-Local"),
        ("3fff:abc::1", "Documentation"),
        ("192.88.99.7", "6to4 Relay Anycast"),
        ("2002:808:808::1", "6to4"),  # 6to4 wrapping a public address: 6to4 itself is not global
    ],
)
def test_ranges_ipaddress_thinks_global_are_refused_and_named(address: str, named: str) -> None:
    reason = refusal(address)
    assert reason is not None and named in reason


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("::ffff:192.168.1.1", "private"),  # IPv4-mapped: judged as the IPv4 address
        ("::ffff:100.64.0.1", "not publicly routable"),
        ("64:ff9b::a00:1", "private"),  # NAT64 (RFC 6052): the last 32 bits are the address reached
        ("64:ff9b::7f00:1", "loopback"),
        ("64:ff9b::a9fe:a9fe", "link-local"),
        ("2002:c0a8:101::1", "private"),  # 6to4 wrapping 192.168.1.1
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "private"),  # Teredo
    ],
)
def test_addresses_carrying_an_ipv4_address_are_judged_by_it(address: str, reason: str) -> None:
    assert refusal(address) == reason


@pytest.mark.parametrize(
    "address",
    ["::ffff:192.0.0.8", "64:ff9b::c000:8", "2002:c000:8::1", "64:ff9b::c000:201", "::ffff:fec0:1"],
)
def test_wrapped_special_purpose_addresses_are_refused(address: str) -> None:
    assert refusal(address) is not None


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "9.9.9.9",
        "93.184.215.14",
        "100.63.255.255",  # just below 100.64.0.0/10
        "100.128.0.0",  # just above it
        "172.15.255.255",
        "172.32.0.0",
        "192.0.1.1",  # just past 192.0.0.0/24
        "192.88.98.255",
        "192.88.100.0",
        "198.17.255.255",
        "198.20.0.0",
        "223.255.255.254",
        "192.31.196.1",  # AS112-v4: globally reachable, inside no non-public range
        "192.175.48.1",  # Direct Delegation AS112
        "2606:4700:4700::1111",
        "2001:4860:4860::8888",
        "2a00:1450:4001:80b::200e",
        "2001:200::1",  # just past 2001::/23
        "2003::1",  # just past 2002::/16
        "2620:4f:8000::1",  # Direct Delegation AS112 (IPv6)
        "64:ff9b::808:808",  # NAT64 reaching 8.8.8.8
        "::ffff:8.8.8.8",
    ],
)
def test_public_addresses_around_the_special_ranges_pass(address: str) -> None:
    assert refusal(address) is None


@pytest.mark.parametrize("address", ["192.0.0.8", "fec0::7", "3fff::1"])
async def test_a_name_resolving_to_a_special_purpose_address_is_refused_before_any_request(
    client: Client, api: RecordingTransport, dns: dict[str, list[str]], address: str
) -> None:
    dns["sneaky.example.com"] = [address]
    api.web["sneaky.example.com"] = lambda request: httpx.Response(200, content=png_bytes())
    text = await refused(client, "https://sneaky.example.com/cat.png")
    assert f"{address}, a non-public special-purpose" in text
    assert api.requests == []


async def test_a_site_local_address_literal_is_refused_before_any_request(
    client: Client, api: RecordingTransport
) -> None:
    text = await refused(client, "https://[fec0::1]/cat.png")
    assert "fec0::1, a non-public special-purpose (Site-Local" in text
    assert api.requests == []
