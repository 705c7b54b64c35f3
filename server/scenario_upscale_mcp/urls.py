"""Which hosts a user-given image URL may reach: public addresses only.

An assistant can be talked into "upscaling" http://169.254.169.254/... or a router's admin page, so
the server must never be a way into the user's own machine or network. Every host a request goes
to (the first and each redirect) is resolved, and refused unless every address it resolves to is
public: no loopback, private, link-local, multicast, reserved, unspecified or shared (CGNAT)
address. The resolver is injectable so tests decide what a name resolves to and never need the
network. (A name that resolves differently between this check and the connection — DNS rebinding —
is not covered: the connection resolves again.)
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Awaitable, Callable

import anyio

from scenario_upscale_mcp.api.errors import InputError

Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolves `host` to."""
    try:
        answers = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise InputError(f"The image URL's host {host!r} could not be resolved ({exc}).") from None
    return sorted({str(answer[4][0]) for answer in answers})


def refusal(address: str) -> str | None:
    """Why this address may not be fetched from, or None if it is public."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address):
        # IPv6 forms that carry an IPv4 address inside reach that address: judge it instead.
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip.sixtofour is not None:
            return refusal(str(ip.sixtofour)) or refusal_of_v6(ip)
        elif ip.teredo is not None:
            return next((r for r in map(refusal, map(str, ip.teredo)) if r), None) or refusal_of_v6(ip)
    checks = (
        (ip.is_loopback, "loopback"),
        (ip.is_unspecified, "unspecified"),
        (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"),
        (ip.is_reserved, "reserved"),
        (ip.is_private, "private"),
        (not ip.is_global, "not publicly routable"),
    )
    return next((label for failed, label in checks if failed), None)


def refusal_of_v6(ip: ipaddress.IPv6Address) -> str | None:
    """The plain IPv6 checks, for an address whose embedded IPv4 address passed."""
    return None if ip.is_global else "not publicly routable"


def host_checker(resolver: Resolver) -> Callable[[str, int], Awaitable[None]]:
    """A check for `ScenarioClient.open_public_url`: raises InputError for a host that is not public."""

    async def check(host: str, port: int) -> None:
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
            addresses = await resolver(literal, port)
        if not addresses:
            raise InputError(f"The image URL's host {host} resolved to no address.")
        for address in addresses:
            reason = refusal(address)
            if reason is not None:
                raise InputError(
                    f"The image URL's host {host} resolves to {address}, a {reason} address; only public "
                    "hosts are allowed (the server never fetches from your own machine or network)."
                )

    return check
