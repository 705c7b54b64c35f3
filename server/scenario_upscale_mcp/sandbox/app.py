"""The `Sandbox`: the stores put together, the route table, the `/v1` wrapper (faults, auth, error
shape), and the routes outside the API (the index, and the control routes tests and the demo use)."""

from __future__ import annotations

import base64
import binascii
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scenario_upscale_mcp.sandbox.assets import AssetStore, CdnObject, SandboxAsset
from scenario_upscale_mcp.sandbox.catalogue import MODELS, get_model
from scenario_upscale_mcp.sandbox.clock import Clock, SystemClock
from scenario_upscale_mcp.sandbox.errors import (
    ApiError,
    error_response,
    route_not_found,
    unexpected_error,
)
from scenario_upscale_mcp.sandbox.faults import Faults
from scenario_upscale_mcp.sandbox.generate import Generation
from scenario_upscale_mcp.sandbox.imaging import sniff_image
from scenario_upscale_mcp.sandbox.jobs import JobStore
from scenario_upscale_mcp.sandbox.request_parsing import json_object
from scenario_upscale_mcp.sandbox.signed_urls import UrlSigner
from scenario_upscale_mcp.sandbox.storage import Storage, Table
from scenario_upscale_mcp.sandbox.timeline import SandboxJob
from scenario_upscale_mcp.sandbox.uploads import SandboxUpload, UploadStore
from scenario_upscale_mcp.sandbox.wire_format import SANDBOX_HEADER

logger = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]


class Sandbox:
    """The simulated API.

    `app` is the ASGI app. `faults` holds the fault knobs. `requests` logs
    (method, path) of every request, control routes included. `jobs`, `assets`,
    `uploads` and `cdn_objects` (format conversions) are the stores: mappings by id.

    `state_dir`, when given, is a folder where the stores are kept (`persistence`):
    they outlive the process, and every simulator opening the same folder, in this
    process or another, at once or later, serves the same assets, jobs and uploads,
    and honours the URLs the others signed. Without it everything is in memory and
    the stores hold the records themselves; in a folder, each read of a store is a
    fresh copy (change a record through the API, not in place). The fault knobs,
    `job_seconds`, `max_output_edge` and the request log are this instance's own.
    `close` releases the folder.

    `clock` is where all of its time comes from (the real time unless given): job
    timelines, the import delay of uploads, dates, the expiry of signed URLs, and
    the injected latency of answers.
    Job statuses are computed lazily from the clock when a job is read through
    the API, so `jobs[id].status` may lag until the next read.
    """

    def __init__(
        self,
        *,
        job_seconds: float = 6.0,
        max_output_edge: int = 8192,
        clock: Clock | None = None,
        state_dir: Path | str | None = None,
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self.faults = Faults()
        self.requests: list[tuple[str, str]] = []
        self.route_counts: Counter[str] = Counter()
        if state_dir is None:
            self.storage = Storage()
        else:
            from scenario_upscale_mcp.sandbox.persistence import FolderStorage

            self.storage = FolderStorage(Path(state_dir).expanduser())
        self.state_dir: Path | None = None if state_dir is None else Path(state_dir).expanduser()
        signer = UrlSigner(self.clock, self.storage.url_secret())
        self._assets = AssetStore(self.clock, signer, self.faults, self.storage)
        self._jobs = JobStore(
            self.clock,
            self._assets,
            self.faults,
            self.storage,
            job_seconds=job_seconds,
            max_output_edge=max_output_edge,
        )
        self._generation = Generation(self._assets, self._jobs, self.faults)
        # Made up: how long an upload stays "validating" after "complete".
        import_delay = min(1.0, max(job_seconds, 0.0) / 10)
        self._uploads = UploadStore(self.clock, signer, self._assets, self.storage, import_delay=import_delay)
        # The stores themselves (not copies), for tests to read and set up.
        self.assets: Table[SandboxAsset] = self._assets.assets
        self.cdn_objects: Table[CdnObject] = self._assets.cdn_objects
        # How each `POST /assets` sent its image, in order: "data_url" or "base64" (bare).
        self.asset_image_forms: list[str] = self._assets.image_forms
        self.jobs: Table[SandboxJob] = self._jobs.jobs
        self.uploads: Table[SandboxUpload] = self._uploads.uploads
        self.app = Starlette(
            routes=self._routes(),
            middleware=[Middleware(_RecordRequests, sandbox=self)],
            exception_handlers={HTTPException: route_not_found, Exception: unexpected_error},
        )

    @property
    def job_seconds(self) -> float:
        """How long a job takes, from creation to its final status: set it to change later jobs."""
        return self._jobs.job_seconds

    @job_seconds.setter
    def job_seconds(self, seconds: float) -> None:
        self._jobs.job_seconds = seconds

    @property
    def max_output_edge(self) -> int:
        """The cap on the long edge of outputs, in pixels (a simulator limit, not Scenario's)."""
        return self._jobs.max_output_edge

    @max_output_edge.setter
    def max_output_edge(self, pixels: int) -> None:
        self._jobs.max_output_edge = pixels

    def close(self, render_timeout: float = 10.0) -> None:
        """Wait (up to `render_timeout` seconds) for the outputs this process is rendering, then release
        the state folder. In memory there is nothing to release."""
        self._jobs.wait_for_renders(render_timeout)
        self.storage.close()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def add_asset(self, data: bytes, name: str | None = None) -> str:
        """Store an image directly, as if uploaded earlier; return its asset id (for test setup)."""
        sniffed = sniff_image(data)
        if sniffed is None:
            raise ValueError("not an image Pillow can read")
        asset = self._assets.new(data, *sniffed, name)
        self._assets.add(asset)
        return asset.id

    def _new_asset(
        self,
        data: bytes,
        mime_type: str,
        width: int,
        height: int,
        name: str | None,
        *,
        parent_job_id: str | None = None,
    ) -> SandboxAsset:
        """An asset record with the given properties, unchecked and not stored (for tests that need
        an asset no real image could make, such as a huge one)."""
        return self._assets.new(data, mime_type, width, height, name, parent_job_id=parent_job_id)

    def api_request_count(self) -> int:
        """Requests that would reach Scenario's infrastructure: /v1, the CDN and the part URLs."""
        return sum(1 for _, path in self.requests if path.startswith(("/v1/", "/cdn/", "/_parts/")))

    def _routes(self) -> list[Route]:
        api, assets, jobs, uploads = self._api, self._assets, self._jobs, self._uploads
        return [
            Route("/", self._index, methods=["GET"]),
            Route("/v1/models/{modelId}", api(get_model, public_token_ok=True), methods=["GET"]),
            Route("/v1/assets", api(assets.post_asset), methods=["POST"]),
            Route("/v1/assets/{assetId}", api(assets.get_asset), methods=["GET"]),
            Route("/v1/assets/{assetId}/download", api(assets.download_asset), methods=["POST"]),
            Route("/v1/generate/custom/{modelId}", api(self._generation.generate), methods=["POST"]),
            Route("/v1/jobs", api(jobs.list_jobs), methods=["GET"]),
            Route("/v1/jobs/{jobId}", api(jobs.get_job), methods=["GET"]),
            Route("/v1/jobs/{jobId}/action", api(jobs.job_action), methods=["POST"]),
            Route("/v1/uploads", api(uploads.create_upload), methods=["POST"]),
            Route("/v1/uploads/{uploadId}", api(uploads.get_upload), methods=["GET"]),
            Route("/v1/uploads/{uploadId}/action", api(uploads.upload_action), methods=["POST"]),
            Route("/cdn/{key}/{filename}", assets.serve_cdn, methods=["GET"]),
            Route("/_parts/{uploadId}/{number:int}", uploads.put_part, methods=["PUT"]),
            Route("/_sandbox/state", self._state, methods=["GET"]),
            Route("/_sandbox/faults", self._set_faults, methods=["POST"]),
            Route("/_sandbox/reset", self._reset, methods=["POST"]),
        ]

    # -- the /v1 wrapper: faults, auth, error shape -------------------------

    def _api(self, handler: Handler, *, public_token_ok: bool = False) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                response = await self._checked(handler, request, public_token_ok)
            except ApiError as error:
                response = error_response(error, self.faults.retry_after_seconds)
            if self.faults.latency_seconds > 0:
                # After the work, before the answer: a slow answer to a generate
                # that was nonetheless accepted is what makes client timeouts risky.
                await self.clock.sleep(self.faults.latency_seconds)
            return response

        return endpoint

    async def _checked(self, handler: Handler, request: Request, public_token_ok: bool) -> Response:
        if self.faults.server_errors > 0:
            self.faults.server_errors -= 1
            raise ApiError(500, "InternalServerError", "Internal server error (simulated by the sandbox)")
        _authenticate(request, public_token_ok)
        return await handler(request)

    # -- outside the API: index and control routes -------------------------

    async def _index(self, request: Request) -> Response:
        return JSONResponse(
            {
                "simulator": True,
                "name": "scenario-upscale-mcp sandbox",
                "message": "This is the scenario-upscale-mcp simulator, not Scenario's API. "
                "Nothing here is billed and no image leaves this machine.",
                "apiBaseUrl": f"{request.base_url}v1",
                "models": list(MODELS),
            }
        )

    async def _state(self, request: Request) -> Response:
        uploads = {
            upload.id: {"status": upload.status, "partsReceived": upload.parts_received}
            for upload in self.uploads.values()
        }
        return JSONResponse(
            {
                "simulator": True,
                "stateDir": None if self.state_dir is None else str(self.state_dir),
                "faults": asdict(self.faults),
                "requestCount": len(self.requests),
                "apiRequestCount": self.api_request_count(),
                "requestsPerRoute": dict(self.route_counts),
                "jobs": list(self.jobs),
                "assets": len(self.assets),
                "assetImageForms": list(self.asset_image_forms),
                "uploads": uploads,
            }
        )

    async def _set_faults(self, request: Request) -> Response:
        try:
            self.faults.set_from_json(await json_object(request))
        except ApiError as error:
            return error_response(error, self.faults.retry_after_seconds)
        logger.info("sandbox: faults now %s", asdict(self.faults))
        return JSONResponse({"faults": asdict(self.faults)})

    async def _reset(self, request: Request) -> Response:
        self.faults.reset()
        self.requests.clear()
        self.route_counts.clear()
        self.asset_image_forms.clear()
        return JSONResponse({"faults": asdict(self.faults)})


def _authenticate(request: Request, public_token_ok: bool) -> None:
    header = request.headers.get("authorization", "")
    if public_token_ok and header == "public-auth-token":
        return
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            key, sep, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, ValueError):
            key, sep, secret = "", "", ""
        if key and sep and secret:
            return
    raise ApiError(
        401,
        "UnauthorizedError",
        "Missing or invalid credentials: send HTTP Basic auth with API_KEY:API_SECRET "
        "(the sandbox accepts any non-empty pair)",
    )


class _RecordRequests:
    """Logs every request and marks every response as the simulator's."""

    def __init__(self, app: ASGIApp, sandbox: Sandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        self.sandbox.requests.append((method, path))

        async def send_marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (SANDBOX_HEADER.encode(), b"simulator")]
            await send(message)

        try:
            await self.app(scope, receive, send_marked)
        finally:
            route = scope.get("route")  # set by the router once it has matched
            self.sandbox.route_counts[f"{method} {getattr(route, 'path', path)}"] += 1
