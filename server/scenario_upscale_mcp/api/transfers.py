"""The HTTP the SDK does not do: bytes moved straight to or from a URL, never through the API's endpoints.

Three transfers, each with no API credentials (the URL is signed, or the user's):

- a part of a multipart upload, PUT to its presigned URL (`put_part`);
- an asset's file, streamed from its signed CDN URL (`open_download`);
- an image at a user-given https URL (`open_public_url`), on a client of its own per fetch, pinned
  to the addresses its host check approved (`api/pinned.py`).

The first two go over the `ScenarioClient`'s one `httpx.AsyncClient`, which `Transfers` is handed and
never closes: `ScenarioClient` owns both and is the one object the rest of the server calls.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import httpx

from scenario_upscale_mcp.api.errors import DownloadError, InputError, UploadError
from scenario_upscale_mcp.api.retries import MAX_ATTEMPTS, backoff_seconds

if TYPE_CHECKING:
    import httpcore

    from scenario_upscale_mcp.clock import Clock

MAX_REDIRECTS = 5

# A response body as it arrives: its announced size (Content-Length, None when not announced) and
# its chunks.
SizedChunks = tuple[int | None, AsyncIterator[bytes]]
HostCheck = Callable[[str, int], Awaitable[Sequence[str]]]


class Transfers:
    """Part uploads, asset downloads and user-given URL fetches, over a client someone else owns.

    A part's PUT is retried after `retry_base_seconds` (doubling), slept on `clock`.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        retry_base_seconds: float,
        clock: Clock,
        network_backend: httpcore.AsyncNetworkBackend | None,
        pin_public_urls: bool,
    ) -> None:
        self._http = http
        self._retry_base_seconds = retry_base_seconds
        self._clock = clock
        # User-given image URLs: see `open_public_url` for how these two test seams are used.
        self._public_network = network_backend
        self._pin_public_urls = pin_public_urls

    async def put_part(self, url: str, data: bytes) -> None:
        """PUT one part's raw bytes to its presigned URL; retried on failure (a part may be sent again).

        No API credentials and no `x-amz-checksum-*` headers: the URL's signature covers neither.
        """
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                response = await self._http.put(url, content=data)
            except httpx.TransportError as exc:
                failure = f"{type(exc).__name__}"
            else:
                if response.status_code < 300:
                    return
                failure = f"HTTP {response.status_code}"
                if response.status_code < 500 and response.status_code != 429:
                    raise UploadError(f"Uploading a part of the image was refused ({failure}).")
            if attempt == MAX_ATTEMPTS:
                raise UploadError(
                    f"Uploading a part of the image failed {MAX_ATTEMPTS} times ({failure}); try again."
                )
            await self._clock.sleep(backoff_seconds(self._retry_base_seconds, attempt))

    @asynccontextmanager
    async def open_public_url(self, url: str, *, check_host: HostCheck) -> AsyncIterator[SizedChunks]:
        """Stream an image from a user-given https URL: (Content-Length or None, chunks).

        Redirects are followed here, one hop at a time, so that `check_host` vets every host the
        request goes to (not only the first): https only, and public addresses only. Each hop then
        connects to the very addresses `check_host` returned (pinned: see `api/pinned.py`), so a
        second DNS answer can never redirect the connection; TLS still verifies the URL's host name.

        Test seams: an injected `transport` stands in for the whole network (in-process, it dials
        nothing), so it gets the same checks but no pinning; an injected `network_backend` instead
        replaces only the socket layer under the production pinned transport, which is how pinning
        itself is tested.
        """
        pins: dict[tuple[str, int], list[str]] = {}
        async with self._public_http(pins) as http:
            for _hop in range(MAX_REDIRECTS + 1):
                try:
                    parsed = httpx.URL(url)
                except httpx.InvalidURL as exc:
                    raise InputError(f"Not a valid image URL ({exc}): {url}") from None
                if parsed.scheme != "https":
                    raise InputError(
                        f"Only https:// image URLs are accepted; got {parsed.scheme}:// ({url})."
                    )
                # The host exactly as the connection will name it (IDNA-encoded, no brackets).
                host, port = parsed.raw_host.decode("ascii"), parsed.port or 443
                pins[(host.lower(), port)] = list(await check_host(host, port))
                try:
                    async with http.stream("GET", url, follow_redirects=False) as response:
                        if response.is_redirect and "location" in response.headers:
                            url = str(response.url.join(response.headers["location"]))
                            continue
                        if response.status_code >= 400:
                            raise InputError(f"The image URL answered HTTP {response.status_code}: {url}")
                        yield (_content_length(response.headers), response.aiter_bytes())
                        return
                except (httpx.TransportError, httpx.InvalidURL) as exc:
                    raise InputError(f"Could not fetch the image URL ({type(exc).__name__}): {url}") from exc
            raise InputError(f"The image URL redirected more than {MAX_REDIRECTS} times: {url}")

    @asynccontextmanager
    async def _public_http(self, pins: dict[tuple[str, int], list[str]]) -> AsyncIterator[httpx.AsyncClient]:
        """The client one `open_public_url` call fetches with: its own, pinned to `pins`, and no proxy
        (a proxy would resolve the name again). Only an injected test transport is used as it is."""
        if not self._pin_public_urls:
            yield self._http
            return
        from scenario_upscale_mcp.api.pinned import PinnedTransport

        async with httpx.AsyncClient(
            transport=PinnedTransport(pins, network=self._public_network),
            timeout=self._http.timeout,
            headers={"User-Agent": self._http.headers["User-Agent"]},
            trust_env=False,
        ) as http:
            yield http

    @asynccontextmanager
    async def open_download(self, url: str) -> AsyncIterator[SizedChunks]:
        """Stream a signed asset URL: yields (Content-Length or None, chunk iterator).

        No API credentials go with it: the URL is signed and belongs to the CDN, not the API.
        """
        try:
            async with self._http.stream("GET", url) as response:
                if response.status_code >= 400:
                    await response.aread()
                    expired = response.status_code in (401, 403) or b"expired" in response.content.lower()
                    hint = " (the signed URL expired; fetch the asset again)" if expired else ""
                    raise DownloadError(f"The asset download answered {response.status_code}{hint}.")
                yield (_content_length(response.headers), response.aiter_bytes())
        except httpx.TransportError as exc:
            raise DownloadError(f"The download was interrupted ({type(exc).__name__}).") from exc


def _content_length(headers: httpx.Headers) -> int | None:
    """The size a response announces, or None when it announces none (or nothing readable as one)."""
    length = headers.get("content-length")
    return int(length) if length and length.isdigit() else None
