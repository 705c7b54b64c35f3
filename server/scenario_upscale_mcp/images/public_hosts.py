"""Which hosts a user-given image URL may reach: public addresses only.

An assistant can be talked into "upscaling" http://169.254.169.254/... or a router's admin page, so
the server must never be a way into the user's own machine or network. Every host a request goes
to (the first and each redirect) is resolved, and refused unless every address it resolves to is
public: not loopback, private, link-local, multicast, reserved, unspecified or shared (CGNAT), and
in no range of IANA's special-purpose address registries that is not globally reachable (the
table below: Python's `ipaddress.is_global` alone lets some through, e.g. 192.0.0.8 and fec0::/10).
The resolver is injectable so tests decide what a name resolves to and never need the network.

The addresses checked are the addresses connected to: `host_checker` returns them and the fetch
dials only those (`api/pinned.py`), so a name that resolves differently the second time (DNS
rebinding) cannot steer the connection elsewhere.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio

from scenario_upscale_mcp.api.errors import InputError

Resolver = Callable[[str, int], Awaitable[list[str]]]
CheckHost = Callable[[str, int], Awaitable[list[str]]]  # (host, port) -> the checked addresses to dial
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class SpecialRange:
    """One row of an IANA special-purpose address registry."""

    network: IPNetwork
    name: str
    rfc: str
    globally_reachable: bool | None  # None: the registry says N/A, or nothing (a terminated entry)


def _row(block: str, name: str, rfc: str, globally_reachable: bool | None) -> SpecialRange:
    return SpecialRange(ipaddress.ip_network(block), name, rfc, globally_reachable)


# Transcribed from IANA's "IPv4 Special-Purpose Address Registry" and "IPv6 Special-Purpose Address
# Registry" (https://www.iana.org/assignments/iana-ipv4-special-registry/ and
# .../iana-ipv6-special-registry/), both last updated 2025-10-09: every row, in registry order, with
# its "Globally Reachable" column. An address is public only if NO row containing it says anything
# but True. So a "True" row inside a "False" one (192.0.0.9 and 192.0.0.10 in 192.0.0.0/24,
# 2001:1::1 ... 2001:30::/28 in 2001::/23) stays refused: they are anycast services answered by the
# nearest server (often one on the user's own network), sinks and identifiers, never image hosts.
SPECIAL_PURPOSE_RANGES: tuple[SpecialRange, ...] = (
    # IPv4 Special-Purpose Address Registry (last updated 2025-10-09)
    _row("0.0.0.0/8", '"This network"', "RFC 791", False),
    _row("0.0.0.0/32", '"This host on this network"', "RFC 1122", False),
    _row("10.0.0.0/8", "Private-Use", "RFC 1918", False),
    _row("100.64.0.0/10", "Shared Address Space", "RFC 6598", False),
    _row("127.0.0.0/8", "Loopback", "RFC 1122", False),
    _row("169.254.0.0/16", "Link Local", "RFC 3927", False),
    _row("172.16.0.0/12", "Private-Use", "RFC 1918", False),
    _row("192.0.0.0/24", "IETF Protocol Assignments", "RFC 6890", False),
    _row("192.0.0.0/29", "IPv4 Service Continuity Prefix", "RFC 7335", False),
    _row("192.0.0.8/32", "IPv4 dummy address", "RFC 7600", False),
    _row("192.0.0.9/32", "Port Control Protocol Anycast", "RFC 7723", True),
    _row("192.0.0.10/32", "Traversal Using Relays around NAT Anycast", "RFC 8155", True),
    _row("192.0.0.170/32", "NAT64/DNS64 Discovery", "RFC 8880", False),
    _row("192.0.0.171/32", "NAT64/DNS64 Discovery", "RFC 8880", False),
    _row("192.0.2.0/24", "Documentation (TEST-NET-1)", "RFC 5737", False),
    _row("192.31.196.0/24", "AS112-v4", "RFC 7535", True),
    _row("192.52.193.0/24", "AMT", "RFC 7450", True),
    _row("192.88.99.0/24", "Deprecated (6to4 Relay Anycast)", "RFC 7526", None),  # terminated 2015-03
    _row("192.88.99.2/32", "6a44-relay anycast address", "RFC 6751", False),
    _row("192.168.0.0/16", "Private-Use", "RFC 1918", False),
    _row("192.175.48.0/24", "Direct Delegation AS112 Service", "RFC 7534", True),
    _row("198.18.0.0/15", "Benchmarking", "RFC 2544", False),
    _row("198.51.100.0/24", "Documentation (TEST-NET-2)", "RFC 5737", False),
    _row("203.0.113.0/24", "Documentation (TEST-NET-3)", "RFC 5737", False),
    _row("240.0.0.0/4", "Reserved", "RFC 1112", False),
    _row("255.255.255.255/32", "Limited Broadcast", "RFC 919", False),
    # IPv6 Special-Purpose Address Registry (last updated 2025-10-09)
    _row("::1/128", "Loopback Address", "RFC 4291", False),
    _row("::/128", "Unspecified Address", "RFC 4291", False),
    _row("::ffff:0:0/96", "IPv4-mapped Address", "RFC 4291", False),  # judged by its IPv4 address
    _row("64:ff9b::/96", "IPv4-IPv6 Translat.", "RFC 6052", True),  # judged by its IPv4 address
    _row("64:ff9b:1::/48", "IPv4-IPv6 Translat. (local use)", "RFC 8215", False),
    _row("100::/64", "Discard-Only Address Block", "RFC 6666", False),
    _row("100:0:0:1::/64", "Dummy IPv6 Prefix", "RFC 9780", False),
    _row("2001::/23", "IETF Protocol Assignments", "RFC 2928", False),
    _row("2001::/32", "TEREDO", "RFC 4380", None),
    _row("2001:1::1/128", "Port Control Protocol Anycast", "RFC 7723", True),
    _row("2001:1::2/128", "Traversal Using Relays around NAT Anycast", "RFC 8155", True),
    _row("2001:1::3/128", "DNS-SD Service Registration Protocol Anycast", "RFC 9665", True),
    _row("2001:2::/48", "Benchmarking", "RFC 5180", False),
    _row("2001:3::/32", "AMT", "RFC 7450", True),
    _row("2001:4:112::/48", "AS112-v6", "RFC 7535", True),
    _row("2001:10::/28", "Deprecated (previously ORCHID)", "RFC 4843", None),  # terminated 2014-03
    _row("2001:20::/28", "ORCHIDv2", "RFC 7343", True),
    _row("2001:30::/28", "Drone Remote ID Protocol Entity Tags (DETs) Prefix", "RFC 9374", True),
    _row("2001:db8::/32", "Documentation", "RFC 3849", False),
    _row("2002::/16", "6to4", "RFC 3056", None),
    _row("2620:4f:8000::/48", "Direct Delegation AS112 Service", "RFC 7534", True),
    _row("3fff::/20", "Documentation", "RFC 9637", False),
    _row("5f00::/16", "Segment Routing (SRv6) SIDs", "RFC 9602", False),
    _row("fc00::/7", "Unique-Local", "RFC 4193", False),
    _row("fe80::/10", "Link-Local Unicast", "RFC 4291", False),
)

# Not in those registries, refused all the same: the deprecated site-local prefix (IANA's IPv6
# Address Space registry lists it as "Reserved by IETF"; old stacks still route it inside a site),
# and multicast (its own registries).
OTHER_NON_PUBLIC_RANGES: tuple[SpecialRange, ...] = (
    _row("fec0::/10", "Site-Local, deprecated", "RFC 3879", False),
    _row("224.0.0.0/4", "Multicast", "RFC 5771", False),
    _row("ff00::/8", "Multicast", "RFC 4291", False),
)

# Most specific first, so a refusal names the narrowest range (192.0.0.8: "IPv4 dummy address").
NON_PUBLIC_RANGES: tuple[SpecialRange, ...] = tuple(
    sorted(
        (
            row
            for row in SPECIAL_PURPOSE_RANGES + OTHER_NON_PUBLIC_RANGES
            if row.globally_reachable is not True
        ),
        key=lambda row: -row.network.prefixlen,
    )
)
GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")  # the only IPv6 space IANA allocates as global unicast
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the last 32 bits are the IPv4 address reached


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolves `host` to, in the system's order of preference."""
    try:
        answers = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise InputError(f"The image URL's host {host!r} could not be resolved ({exc}).") from None
    return list(dict.fromkeys(str(answer[4][0]) for answer in answers))


def refusal(address: str) -> str | None:
    """Why this address may not be fetched from, or None if it is public."""
    ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address):
        # IPv6 forms that carry an IPv4 address reach that address: judge it instead. IPv4-mapped
        # and NAT64 are that IPv4 address and nothing else; 6to4 and Teredo (not globally
        # reachable themselves) are refused below even when the address they carry is public.
        if ip.ipv4_mapped is not None:
            return refusal(str(ip.ipv4_mapped))
        if ip in NAT64:
            return refusal(str(ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF)))
        carried = [ip.sixtofour] if ip.sixtofour is not None else list(ip.teredo or ())
        for inner in carried:
            reason = refusal(str(inner))
            if reason is not None:
                return reason
    checks = (
        (ip.is_loopback, "loopback"),
        (ip.is_unspecified, "unspecified"),
        (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"),
        (ip.is_reserved, "reserved"),
        (ip.is_private, "private"),
        (not ip.is_global, "not publicly routable"),
    )
    reason = next((label for failed, label in checks if failed), None)
    if reason is not None:
        return reason
    for row in NON_PUBLIC_RANGES:
        if ip.version == row.network.version and ip in row.network:
            return f"non-public special-purpose ({row.name}, {row.rfc})"
    if isinstance(ip, ipaddress.IPv6Address) and ip not in GLOBAL_UNICAST:
        return "not global unicast"
    return None


def host_checker(resolver: Resolver) -> CheckHost:
    """A check for `ScenarioClient.open_public_url`: the addresses of a public host, to connect to.

    Raises InputError for a host that is not public. The addresses it returns are the only ones the
    fetch may dial (pinned): the check and the connection see the same answer.
    """

    async def check(host: str, port: int) -> list[str]:
        literal = host.strip("[]")
        try:
            ipaddress.ip_address(literal.split("%", 1)[0])
            addresses = [literal]  # an address given directly is checked as it is, never resolved
        except ValueError:
            if literal.lower() in ("localhost", "localhost.localdomain") or literal.lower().endswith(
                ".localhost"
            ):
                raise InputError(
                    f"The image URL's host {host} is this machine; only public hosts are allowed."
                ) from None
            addresses = list(await resolver(literal, port))
        if not addresses:
            raise InputError(f"The image URL's host {host} resolved to no address.")
        for address in addresses:
            try:
                reason = refusal(address)
            except ValueError:
                reason = "malformed"
            if reason is not None:
                raise InputError(
                    f"The image URL's host {host} resolves to {address}, a {reason} address; only public "
                    "hosts are allowed (the server never fetches from your own machine or network)."
                )
        return addresses

    return check
