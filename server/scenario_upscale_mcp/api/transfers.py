"""The HTTP the SDK does not do: bytes moved straight to or from a URL, never through the API's endpoints.

Three transfers, each with no API credentials (the URL is signed, or the user's):

- a part of a multipart upload (a byte range of a file, `FilePart`), PUT to its presigned URL
  (`put_part`), read from the file a slice at a time as the connection takes it;
- an asset's file, streamed from its signed CDN URL straight into a file (`open_download`);
- an image at a user-given https URL (`open_public_url`), on a client of its own per fetch, pinned
  to the addresses its host check approved (`api/pinned.py`).

Parts and image URLs go over the `ScenarioClient`'s one `httpx.AsyncClient`, which `Transfers` is
handed and never closes: `ScenarioClient` owns it and is the one object the rest of the server calls.

Downloads are the one transfer that moves hundreds of megabytes, and the async client moves them at
a third of the link's speed on loopback (each 64 KiB read goes through the event loop and the
HTTP/1.1 parser). So a download runs in a worker thread on a synchronous `httpx.Client` made with the
async client's very options (timeouts, redirects, headers; TLS verification and proxies from the
environment, both httpx's defaults): the thread reads the response's headers through httpx, then the
body straight from the connection into one buffer of 1 MiB (`DOWNLOAD_READ_BYTES`), written to the
file after each read: memory stays flat whatever the size. Its task being cancelled stops the thread
at its next read, and a read blocked on a silent connection (for the headers or the body) is cut
short by shutting the connection down (`_Stop`), so a cancelled download ends at once and its
temporary file is removed.

Test seam: with an injected async transport (in-process, it dials nothing), the download client gets
`LoopTransport`, which hands each request from the worker thread to that transport on the event loop.
The thread, the file writing and the cancellation are then the same code as in production; only the
last step, reading past the headers straight from a socket, needs one (tests/test_downloads.py
covers it against the simulator on a real loopback socket).
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar, cast

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import httpcore
import httpx

from scenario_upscale_mcp.api.errors import DownloadError, InputError, UploadError
from scenario_upscale_mcp.api.retries import MAX_ATTEMPTS, backoff_seconds

if TYPE_CHECKING:
    from scenario_upscale_mcp.clock import Clock

# httpcore's stream over a socket, whose `read` is the socket's `recv` (see `_reader`).
_SOCKET_STREAM: type[Any]
try:
    from httpcore._backends import sync as _httpcore_sync

    _SOCKET_STREAM = _httpcore_sync.SyncStream
except (ImportError, AttributeError):  # pragma: no cover - another httpcore: every stream uses `read`
    _SOCKET_STREAM = type(None)

T = TypeVar("T")

MAX_REDIRECTS = 5
DOWNLOAD_READ_BYTES = 1024 * 1024  # the most one read of a download's body takes off the connection
PART_SEND_BYTES = 256 * 1024  # a part is read and sent this much at a time (see `FilePart`)
# Downloads at once per process (more wait for a slot): each holds a worker thread of anyio's default
# pool (40) while it runs, and the ledger and the image code need threads of that pool too.
PARALLEL_DOWNLOADS = 16

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
        download_client: Callable[[], httpx.Client],
        retry_base_seconds: float,
        clock: Clock,
        network_backend: httpcore.AsyncNetworkBackend | None,
        pin_public_urls: bool,
    ) -> None:
        self._http = http
        # The synchronous client downloads go over, made on the first download (in its worker thread).
        self._make_download_client = download_client
        self._download_client: httpx.Client | None = None
        self._download_client_lock = threading.Lock()
        self._download_slots: anyio.CapacityLimiter | None = None
        self._retry_base_seconds = retry_base_seconds
        self._clock = clock
        # User-given image URLs: see `open_public_url` for how these two test seams are used.
        self._public_network = network_backend
        self._pin_public_urls = pin_public_urls

    async def put_part(self, url: str, part: FilePart) -> None:
        """PUT one part's raw bytes to its presigned URL; retried on failure (a part may be sent again).

        No API credentials and no `x-amz-checksum-*` headers: the URL's signature covers neither.
        """
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                # Its length announced: S3 refuses a part sent chunked.
                response = await self._http.put(
                    url, content=part, headers={"Content-Length": str(part.length)}
                )
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
    async def open_download(self, url: str) -> AsyncIterator[Download]:
        """GET a signed asset URL in a worker thread; yield its `Download` once the headers are in.

        No API credentials go with it: the URL is signed and belongs to the CDN, not the API. An
        answer of 400 or more is a DownloadError (saying so when the link expired). Cancelled while
        waiting for the answer, the thread gives up at once (see `_Stop`) and the call ends.
        """
        if self._download_slots is None:
            self._download_slots = anyio.CapacityLimiter(PARALLEL_DOWNLOADS)
        async with self._download_slots:
            stop = _Stop()
            response = await _run_stoppable(stop, self._send_download, url, stop)
            try:
                yield Download(response, stop)
            finally:
                with anyio.CancelScope(shield=True):  # closed even when the call is cancelled
                    await anyio.to_thread.run_sync(_close, response, stop)

    def _send_download(self, url: str, stop: _Stop) -> httpx.Response:
        """In a worker thread: send the GET, return the response with its headers read (body not)."""
        http = self._sync_client()
        request = http.build_request("GET", url, extensions={"trace": stop.trace})
        try:
            response = http.send(request, stream=True)
        except httpx.TransportError as exc:
            stop.check()  # a connection ended by the cancellation is not a network failure
            raise DownloadError(f"The download was interrupted ({type(exc).__name__}).") from exc
        if response.status_code >= 400:
            try:
                refusal = _refusal(response)
            finally:
                response.close()
            raise refusal
        return response

    def _sync_client(self) -> httpx.Client:
        with self._download_client_lock:
            if self._download_client is None:
                self._download_client = self._make_download_client()
            return self._download_client

    def close(self) -> None:
        """Close the download client, if a download made it (its pooled connections)."""
        with self._download_client_lock:
            if self._download_client is not None:
                self._download_client.close()
                self._download_client = None


class Download:
    """An asset's answer, headers received and body not yet read: `length` is the size it announces
    (Content-Length; None when not announced, or when the body is compressed for transfer), and
    `write_to` copies the body into a file."""

    def __init__(self, response: httpx.Response, stop: _Stop) -> None:
        self._response = response
        self._stop = stop
        self.encoded = response.headers.get("content-encoding", "identity").lower() not in ("", "identity")
        self.length = None if self.encoded else _content_length(response.headers)

    async def write_to(self, sink: BinaryIO) -> int:
        """Copy the body into `sink` in a worker thread; return the bytes written.

        A cut connection or a timeout is a DownloadError (a short body is not: the caller compares
        what was written with `length`); a failed write is the OSError itself. Cancelled, the copy
        stops at its next read (a blocked read is interrupted) before the cancellation goes on.
        """
        return await _run_stoppable(self._stop, self._copy_body, sink)

    def _copy_body(self, sink: BinaryIO) -> int:
        response, stop = self._response, self._stop
        written = 0
        # Held until the end: dropping it would end httpx's reading, which closes the connection.
        chunks = cast(  # typed as iterators; generators in fact, closed at the end
            "Generator[bytes, None, None]", response.iter_bytes() if self.encoded else response.iter_raw()
        )
        try:
            direct = self._direct_stream()
            # httpx parses the body's beginning (whatever came in with the headers, or one read)...
            for chunk in chunks:
                stop.check()
                sink.write(chunk)
                written += len(chunk)
                if direct is not None and self.length is not None and written < self.length:
                    break
            else:
                direct = None
            # ... and the rest is read straight off the connection: the HTTP/1.1 parser hands over all
            # the body it has buffered in its first chunk, so nothing of the body is left in it now.
            if direct is not None and self.length is not None:
                timeout = response.request.extensions.get("timeout", {}).get("read")
                read_into = _reader(direct, timeout)
                buffer = memoryview(bytearray(DOWNLOAD_READ_BYTES))  # one buffer, filled again and again
                while written < self.length:
                    stop.check()
                    received = read_into(buffer[: min(DOWNLOAD_READ_BYTES, self.length - written)])
                    if not received:  # the connection was closed: the caller reports the short body
                        break
                    sink.write(buffer[:received])
                    written += received
            stop.check()
        except (httpx.TransportError, httpcore.NetworkError, httpcore.TimeoutException) as exc:
            stop.check()  # a read ended by the cancellation is not a network failure
            raise DownloadError(f"The download was interrupted ({type(exc).__name__}).") from exc
        finally:
            stop.release()  # no shutdown from here on: the connection is about to be closed
            chunks.close()
        return written

    def _direct_stream(self) -> httpcore.NetworkStream | None:
        """The connection the body can be read from directly, or None to leave it all to httpx: only
        a plain HTTP/1.1 body of announced length (not chunked, not compressed) on a real connection
        (an injected test transport has none)."""
        stream = self._response.extensions.get("network_stream")
        if (
            not isinstance(stream, httpcore.NetworkStream)
            or self._response.http_version != "HTTP/1.1"
            or "transfer-encoding" in self._response.headers
            or self.length is None
        ):
            return None
        return stream


def _reader(stream: httpcore.NetworkStream, timeout: float | None) -> Callable[[memoryview], int]:
    """A function that reads what the connection has (up to the buffer's size) into a buffer and
    says how much; 0 when the connection was closed. Errors are httpcore's ReadTimeout and ReadError.

    On httpcore's own socket stream (plain TCP, or TLS over it), straight into the buffer with the
    socket's `recv_into`, as the stream's `read` would `recv` (steadier than a new bytes object per
    read: measured on 1 GB downloads); on any other stream (TLS inside a TLS proxy's), its `read`.
    """
    connection = stream.get_extra_info("socket") if isinstance(stream, _SOCKET_STREAM) else None
    if isinstance(connection, socket.socket):
        sock = connection

        def receive(buffer: memoryview) -> int:
            try:
                sock.settimeout(timeout)
                return sock.recv_into(buffer)
            except TimeoutError as exc:
                raise httpcore.ReadTimeout(exc) from exc
            except OSError as exc:
                raise httpcore.ReadError(exc) from exc

        return receive

    def read(buffer: memoryview) -> int:
        data = stream.read(len(buffer), timeout=timeout)
        buffer[: len(data)] = data
        return len(data)

    return read


class _Stopped(Exception):
    """Raised in a download's worker thread when its task was cancelled."""


class _Stop:
    """Set when a download's task is cancelled: its worker thread gives up at its next step, and a
    read or a wait blocked on the connection returns at once (the connection's socket is shut down).

    The socket is known from the moment it is connected (`trace`, httpx's hook into httpcore: the
    download client keeps no idle connections, so every download connects afresh and is seen doing
    so). Only connecting itself (the name lookup, then the TCP handshake: 10 s at most) cannot be
    interrupted; the TLS handshake and everything after can. Thread-safe; the socket is shut down
    only while registered, never after `release` (its file descriptor may be another's then).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stopped = False
        self._socket: socket.socket | None = None

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's trace callback (in the worker thread): register the connection's socket once
        connected, and again once TLS wraps it (wrapping moves the file descriptor to a new socket
        object). Through a proxy, the socket is the proxy's connection."""
        if not event.endswith((".connect_tcp.complete", ".start_tls.complete")):
            return
        stream = info.get("return_value")
        connection = stream.get_extra_info("socket") if isinstance(stream, httpcore.NetworkStream) else None
        if isinstance(connection, socket.socket):
            with self._lock:
                self._socket = connection
                if self._stopped:  # stopped while connecting: this connection ends before it is used
                    self._shut_down()

    def release(self) -> None:
        with self._lock:
            self._socket = None

    def set(self) -> None:
        with self._lock:
            self._stopped = True
            self._shut_down()

    def _shut_down(self) -> None:
        if self._socket is not None:
            # The plain socket's shutdown (for TLS, under the TLS layer): a read blocked on it in
            # another thread then sees the connection end.
            with suppress(OSError):
                socket.socket.shutdown(self._socket, socket.SHUT_RDWR)

    def is_set(self) -> bool:
        return self._stopped

    def check(self) -> None:
        if self._stopped:
            raise _Stopped


def _close(response: httpx.Response, stop: _Stop) -> None:
    """In a worker thread: close a download's response, and so its connection (the download client
    keeps none idle)."""
    stop.release()
    response.close()


async def _run_stoppable(stop: _Stop, work: Callable[..., T], *args: Any) -> T:
    """Run `work(*args)` in a worker thread; if this task is cancelled meanwhile, set `stop` and wait
    for the thread to give up (promptly: see `_Stop`), then let the cancellation go on.

    What the thread returns is returned even if the task was cancelled meanwhile (so that the caller
    closes it; the cancellation comes at its next checkpoint); what it raises is raised as it is (not
    in an exception group), or, when it failed because it was stopped, the cancellation is."""
    finished = False
    failure: Exception | None = None

    async def stop_when_cancelled() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            if not finished:
                stop.set()

    async with anyio.create_task_group() as group:
        group.start_soon(stop_when_cancelled)
        try:
            result = await anyio.to_thread.run_sync(work, *args)
        except Exception as exc:
            failure = exc
        finally:
            finished = True
            group.cancel_scope.cancel()
    if failure is not None:
        if stop.is_set():  # it failed because this task was cancelled: that is what goes on
            await anyio.lowlevel.checkpoint()
        if isinstance(failure, _Stopped):
            raise DownloadError("The download was stopped.") from None
        raise failure
    return result


class LoopTransport(httpx.BaseTransport):
    """Test seam: a synchronous transport that sends each request, from the anyio worker thread it is
    called in, to an async transport on the event loop (`anyio.from_thread`).

    With it, downloads in tests run in their worker thread as in production while their requests go
    to an injected in-process transport (the simulator's ASGI app, a MockTransport), recorded as
    every other request is. There is no connection to cut here: a cancelled download stops at its
    next chunk, so an in-process app that never answers would hold it (tests/test_downloads.py
    stalls the simulator on a real socket instead).
    """

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()  # a body, if any, as bytes: usable from either side
        # The download's trace hook is for a synchronous connection; an async one would await it.
        request.extensions = {key: value for key, value in request.extensions.items() if key != "trace"}
        response = anyio.from_thread.run(self._inner.handle_async_request, request)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_StreamFromLoop(response.stream),
            extensions={k: v for k, v in response.extensions.items() if k != "network_stream"},
        )

    def close(self) -> None:
        pass  # the inner transport belongs to the async client


class _StreamFromLoop(httpx.SyncByteStream):
    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        chunks = aiter(self._stream)
        while (chunk := anyio.from_thread.run(_next_chunk, chunks)) is not None:
            yield chunk

    def close(self) -> None:
        if isinstance(self._stream, httpx.AsyncByteStream):
            anyio.from_thread.run(self._stream.aclose)


async def _next_chunk(chunks: AsyncIterator[bytes]) -> bytes | None:
    return await anext(chunks, None)


def _refusal(response: httpx.Response) -> DownloadError:
    """The error an asset download answered with (its body read, to tell an expired link)."""
    try:
        content = response.read()
    except httpx.TransportError:
        content = b""
    expired = response.status_code in (401, 403) or b"expired" in content.lower()
    hint = " (the signed URL expired; fetch the asset again)" if expired else ""
    return DownloadError(f"The asset download answered {response.status_code}{hint}.")


@dataclass(frozen=True)
class FilePart:
    """A byte range of a file, sent as one part of a multipart upload: `length` bytes from `offset`.

    Iterated (asynchronously), it reads the range PART_SEND_BYTES at a time, each read in a worker
    thread, and it can be iterated again: a retry or a redirect sends the part anew. So a part is never
    whole in memory. Handed over whole, 5 MiB bytes objects went into asyncio's send buffer, which on
    Python 3.11 copies them and moves what is left down after every send, and left the process about
    100 MB larger after a 100 MB upload (allocations that size stay in the allocator's arenas).
    """

    path: Path
    offset: int
    length: int

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with self.path.open("rb", buffering=0) as file:
            sent = 0
            while sent < self.length:
                count = min(PART_SEND_BYTES, self.length - sent)
                data = await anyio.to_thread.run_sync(os.pread, file.fileno(), count, self.offset + sent)
                if not data:
                    raise UploadError(f"{self.path.name} ended before the part to upload did; try again.")
                sent += len(data)
                yield data


def _content_length(headers: httpx.Headers) -> int | None:
    """The size a response announces, or None when it announces none (or nothing readable as one)."""
    length = headers.get("content-length")
    return int(length) if length and length.isdigit() else None
