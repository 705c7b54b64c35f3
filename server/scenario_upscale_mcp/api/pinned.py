"""Connections to user-given image URLs go to the addresses that were checked, never to a new DNS answer.

`urls.host_checker` resolves a URL's host and refuses it unless every address is public. If the
connection then looked the name up again, a DNS server answering differently the second time (DNS
rebinding) could send it to 127.0.0.1 or 169.254.169.254 after the check had passed. So the fetch
connects by address: `PinnedTransport` is an ordinary httpx HTTPS transport whose socket layer,
`PinnedNetwork` (an httpcore network backend), looks the connection's host up in the pins the check
recorded and dials those addresses, never the name. A host with no pin is not dialled at all.

TLS is untouched: httpcore still sends the URL's host name as SNI and verifies the certificate
against that name (with the default, verifying SSL context), whichever address was dialled.

The socket layer under the pins is injectable (`network`): production uses httpcore's anyio
backend; tests give an in-process fake that records what was dialled, so they run exactly the
production transport and pinning with no socket opened.
"""

from __future__ import annotations

import functools
import ssl
import typing
from collections.abc import Mapping, Sequence

import httpcore
import httpx

Pins = Mapping[tuple[str, int], Sequence[str]]  # (host as in the URL, lower case; port) -> checked addresses


@functools.cache
def verifying_ssl_context() -> ssl.SSLContext:
    """httpx's default context (certifi, or SSL_CERT_FILE/SSL_CERT_DIR), made once: it is costly."""
    return httpx.create_ssl_context()


class PinnedNetwork(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that dials only the addresses pinned for a host."""

    def __init__(self, pins: Pins, inner: httpcore.AsyncNetworkBackend) -> None:
        self._pins = pins
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = self._pins.get((host.lower(), port))
        if not addresses:
            raise httpcore.ConnectError(f"{host}:{port} was not checked, so it is not connected to.")
        options = list(socket_options) if socket_options is not None else None
        failure: Exception | None = None
        for address in addresses:  # in the resolver's order; the next one if a connection fails
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("Image URLs are fetched over TCP only.")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's own HTTP transport (HTTP/1.1, verifying TLS), over a `PinnedNetwork`.

    Subclassed rather than rewritten so that httpx still maps httpcore's errors to its own: only the
    connection pool is replaced, by one built the same way plus `network_backend`.
    """

    def __init__(self, pins: Pins, *, network: httpcore.AsyncNetworkBackend | None = None) -> None:
        context = verifying_ssl_context()
        super().__init__(verify=context)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=4,
            max_keepalive_connections=0,  # one fetch, a few hops: nothing worth keeping open
            http1=True,
            http2=False,
            network_backend=PinnedNetwork(pins, network or httpcore.AnyIOBackend()),
        )
