"""The Scenario API client: one adapter over Scenario's official SDK, plus the HTTP the SDK does not do.

Every API call goes through `scenario_sdk.AsyncScenario`, which shares our one long-lived
`httpx.AsyncClient` (owned by the lifespan; its transport is injectable for tests). What the SDK
does not do (presigned part PUTs, CDN downloads, user-given image URLs) is `api/transfers.py`, which
this client owns and hands that same `httpx.AsyncClient` (and, for downloads, which run in a worker
thread, a synchronous `httpx.Client` made with the same options): callers see one object. One
choke point (`_call`) turns every SDK failure into a typed `errors.ScenarioError`; nothing of the
SDK's reaches a tool result.

Retries are ours, not the SDK's: its defaults retry POSTs on 5xx and timeouts with no idempotency
key (the API has none), which can bill a job twice. So the SDK runs with `max_retries=0`, and
`_call` retries only reads (GET), on timeouts, dropped connections, 429 and 5xx, with backoff that
honours `Retry-After` (`api/retries.py`), waiting on the injected clock (the server's one clock, so a
test's fake clock runs the back-off without sleeping). A generate POST is retried only when the API surely never received it (the
connection could not even be opened); any other failure after sending is reported as
`SubmissionUncertainError` instead of risking a second charge. Other POSTs (uploads, cancel) are
never retried here.

`scenario_sdk` is large, so it is imported on the first API call, never at start-up.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

import httpx
from pydantic import ValidationError

from scenario_upscale_mcp import __version__
from scenario_upscale_mcp.api.answers import Asset, DownloadLink, GenerateAnswer, Job, Upload
from scenario_upscale_mcp.api.errors import (
    ApiError,
    ApiUnreachableError,
    InputError,
    MissingCredentialsError,
    PlanLimitReachedError,
    RateLimitedError,
    ServerError,
    SubmissionUncertainError,
    api_error_from,
)
from scenario_upscale_mcp.api.retries import (
    MAX_ATTEMPTS,
    MAX_RETRY_AFTER_SECONDS,
    backoff_seconds,
    retry_after_seconds,
)
from scenario_upscale_mcp.api.transfers import (
    Download,
    FilePart,
    HostCheck,
    LoopTransport,
    SizedChunks,
    Transfers,
)
from scenario_upscale_mcp.clock import AnyioClock, Clock
from scenario_upscale_mcp.config import DEFAULT_BASE_URL, Settings

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    import httpcore
    from scenario_sdk import AsyncScenario
    from scenario_sdk.pagination import AsyncJobsCursor

logger = logging.getLogger(__name__)

T = TypeVar("T")
P = TypeVar("P", bound="AsyncJobsCursor[Any]")

JOB_LIST_PAGE_SIZE = 100  # the API's maximum
JOB_LIST_MAX_PAGES = 5  # recovery looks at the last few hundred jobs, not the whole history


class ScenarioClient:
    """Typed calls to the endpoints this server uses. Use as an async context manager.

    `retry_base_seconds` is the first pause before a read is retried (doubling after that); the
    pauses are slept on `clock` (the real one unless given).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        base_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        network_backend: httpcore.AsyncNetworkBackend | None = None,
        retry_base_seconds: float = 0.5,
        clock: Clock | None = None,
    ) -> None:
        self._settings = settings
        self.base_url = (base_url or settings.base_url or DEFAULT_BASE_URL).rstrip("/")
        self._retry_base_seconds = retry_base_seconds
        self._clock: Clock = clock or AnyioClock()
        # Both clients, the async one and the downloads' synchronous one, are made with these options,
        # and both take TLS verification and proxies from the environment (httpx's defaults).
        options: dict[str, Any] = {
            "timeout": httpx.Timeout(settings.http_timeout_seconds, connect=10.0),
            "follow_redirects": True,  # CDN transform URLs redirect
            "headers": {"User-Agent": f"scenario-upscale-mcp/{__version__}"},
        }
        self._http = httpx.AsyncClient(transport=transport, **options)
        # Downloads run in a worker thread (`Transfers.open_download`), each on a connection of its
        # own (no idle ones kept: a cancelled download can then always cut its own); an injected
        # transport serves them too, from the event loop (`LoopTransport`).
        download_transport = None if transport is None else LoopTransport(transport)
        self._sdk: AsyncScenario | None = None
        self._transfers = Transfers(
            self._http,
            download_client=lambda: httpx.Client(
                transport=download_transport, limits=httpx.Limits(max_keepalive_connections=0), **options
            ),
            retry_base_seconds=retry_base_seconds,
            clock=self._clock,
            # User-given image URLs: see `Transfers.open_public_url` for how these two test seams are used.
            network_backend=network_backend,
            pin_public_urls=transport is None or network_backend is not None,
        )

    async def __aenter__(self) -> ScenarioClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        try:
            await self._http.aclose()
        finally:
            self._transfers.close()

    def _api(self) -> AsyncScenario:
        """The SDK client, made on the first API call (the import is the costly part)."""
        credentials = self._settings.credentials()
        if credentials is None:
            raise MissingCredentialsError
        if self._sdk is None:
            from scenario_sdk import AsyncScenario

            key, secret = credentials
            self._sdk = AsyncScenario(
                api_key=key,
                api_secret=secret,
                base_url=self.base_url,
                max_retries=0,  # see the module docstring: retries are decided in `_call`
                timeout=httpx.Timeout(self._settings.http_timeout_seconds, connect=10.0),
                http_client=self._http,
                default_query={"projectId": self._settings.project_id} if self._settings.project_id else None,
            )
        return self._sdk

    # --- endpoints -------------------------------------------------------------------------------

    async def generate(
        self, model_id: str, inputs: Mapping[str, Any], *, dry_run: bool = False
    ) -> GenerateAnswer:
        """Submit a job (billed), or with `dry_run` get its cost estimate (free, HTTP 269).

        A 269 carries an empty `"job": {}` beside the cost: only the cost fields are read from it.
        """
        if dry_run:
            estimate = await self._call(
                "generate (dry run)",
                lambda api: api.generate.run_model(model_id, body=dict(inputs), dry_run="true"),
                retry=False,
            )
            try:
                return GenerateAnswer.model_validate(_answer_dict(estimate) | {"job": None})
            except (ValidationError, TypeError) as exc:
                raise ApiError(
                    "The Scenario API's cost estimate was not in the expected shape.", status=269
                ) from exc
        answer = await self._call(
            "generate", lambda api: api.generate.run_model(model_id, body=dict(inputs)), billed=True
        )
        try:
            return GenerateAnswer.model_validate(_answer_dict(answer))
        except (ValidationError, TypeError) as exc:
            raise self._uncertain("the API's answer was not in the expected shape") from exc

    async def get_job(self, job_id: str) -> Job:
        answer = await self._call("get job", lambda api: api.jobs.retrieve(_path_id(job_id, "job id")))
        return Job.model_validate(_part(answer, "job"))

    async def list_jobs(self, *, created_after: str) -> list[Job]:
        """Jobs created at or after an ISO 8601 instant, newest first: finds a job a lost answer created.

        Follows `nextPaginationToken` for a few pages of the API's largest size, no further.
        """
        first = await self._call(
            "list jobs",
            lambda api: api.jobs.list(created_after=created_after, page_size=JOB_LIST_PAGE_SIZE),
        )
        jobs: list[Job] = []
        page = first
        for number in range(1, JOB_LIST_MAX_PAGES + 1):
            jobs += [Job.model_validate(_answer_dict(row)) for row in page.jobs]
            # Not `has_next_page()`: it stops at an empty page, and the API may send an empty page
            # that still carries a token.
            if number == JOB_LIST_MAX_PAGES or page.next_page_info() is None:
                break
            page = await self._call("list jobs", _next_page(page))
        return jobs

    async def cancel_job(self, job_id: str) -> None:
        await self._call(
            "cancel job",
            lambda api: api.jobs.trigger_action(_path_id(job_id, "job id"), action="cancel"),
            retry=False,
        )

    async def create_asset(self, name: str, data: bytes, mime_type: str) -> Asset:
        """Upload a small image inline, as a data URL (as Scenario's own clients do). Never retried."""
        data_url = f"data:{mime_type};base64,{base64.b64encode(data).decode('ascii')}"
        answer = await self._call(
            "upload asset", lambda api: api.assets.upload(image=data_url, name=name), retry=False
        )
        return Asset.model_validate(_part(answer, "asset"))

    async def create_upload(self, *, file_name: str, content_type: str, file_size: int, parts: int) -> Upload:
        answer = await self._call(
            "create upload",
            lambda api: api.uploads.create(
                file_name=file_name, content_type=content_type, file_size=file_size, parts=parts, kind="image"
            ),
            retry=False,
        )
        return Upload.model_validate(_part(answer, "upload"))

    async def complete_upload(self, upload_id: str) -> None:
        await self._call(
            "complete upload",
            lambda api: api.uploads.trigger_action(_path_id(upload_id, "upload id"), action="complete"),
            retry=False,
        )

    async def get_upload(self, upload_id: str) -> Upload:
        answer = await self._call(
            "get upload", lambda api: api.uploads.retrieve(_path_id(upload_id, "upload id"))
        )
        return Upload.model_validate(_part(answer, "upload"))

    async def get_model(self, model_id: str) -> dict[str, Any]:
        """`GET /models/{modelId}`: the model as the API describes it (its `inputs` carry the live schema)."""
        answer = await self._call(
            "get model", lambda api: api.models.retrieve(_path_id(model_id, "model id"))
        )
        model: dict[str, Any] = _part(answer, "model")
        return model

    async def get_asset(self, asset_id: str) -> Asset:
        answer = await self._call(
            "get asset", lambda api: api.assets.retrieve(_path_id(asset_id, "asset id"))
        )
        return Asset.model_validate(_part(answer, "asset"))

    async def convert_asset(self, asset_id: str, target_format: str) -> DownloadLink:
        answer = await self._call(
            "convert asset",
            lambda api: api.assets.download.request(
                _path_id(asset_id, "asset id"), target_format=cast(Any, target_format)
            ),
        )
        return DownloadLink.model_validate(_answer_dict(answer))

    # --- the HTTP the SDK does not do (api/transfers.py) ------------------------------------------

    async def put_part(self, url: str, part: FilePart) -> None:
        """PUT one part, a byte range of a file, to its presigned URL (`Transfers.put_part`)."""
        await self._transfers.put_part(url, part)

    def open_public_url(self, url: str, *, check_host: HostCheck) -> AbstractAsyncContextManager[SizedChunks]:
        """Stream an image from a user-given https URL, every hop's host checked and its addresses
        pinned: (Content-Length or None, chunks) (`Transfers.open_public_url`)."""
        return self._transfers.open_public_url(url, check_host=check_host)

    def open_download(self, url: str) -> AbstractAsyncContextManager[Download]:
        """GET a signed asset URL; its body then written into a file in a worker thread
        (`Transfers.open_download`)."""
        return self._transfers.open_download(url)

    # --- the choke point -------------------------------------------------------------------------

    async def _call(
        self,
        what: str,
        request: Callable[[AsyncScenario], Awaitable[T]],
        *,
        billed: bool = False,
        retry: bool = True,
    ) -> T:
        """Make one SDK call; return its answer or raise a typed error. Reads are retried (see above)."""
        from scenario_sdk import APIConnectionError, APIStatusError

        api = self._api()
        attempt = 0
        while True:
            attempt += 1
            try:
                return _readable(await request(api), billed=billed)
            except APIStatusError as exc:
                api_error = api_error_from(
                    exc.status_code,
                    exc.body,
                    exc.response.text,
                    retry_after=retry_after_seconds(exc.response.headers, now=self._clock.wall),
                )
                logger.info("API %s answered %s %s", what, exc.status_code, api_error.name or "")
                if billed and isinstance(api_error, ServerError):
                    raise self._uncertain(f"the API answered {exc.status_code}") from None
                error: Exception = api_error
                # A plan limit repeats until a job finishes: no hot retry here (see PlanLimitReachedError).
                retryable = (
                    retry
                    and not billed
                    and isinstance(api_error, ServerError | RateLimitedError)
                    and not isinstance(api_error, PlanLimitReachedError)
                )
            except APIConnectionError as exc:
                cause = type(exc.__cause__).__name__ if exc.__cause__ else type(exc).__name__
                if isinstance(exc.__cause__, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
                    # The connection was never opened, so nothing reached the API: safe to retry even a
                    # billed request.
                    error = ApiUnreachableError(
                        f"Could not connect to the Scenario API at {self.base_url} ({cause}). "
                        "Check the network and SCENARIO_BASE_URL, then try again."
                    )
                    retryable = True
                elif billed:
                    raise self._uncertain(f"the connection failed after sending ({cause})") from None
                else:
                    error = ApiUnreachableError(
                        f"The Scenario API did not answer in time ({cause}). Try again in a minute."
                    )
                    retryable = retry
            except (_UnreadableAnswer, ValueError) as exc:  # ValueError: a 2xx body that is not valid JSON
                if billed:
                    raise self._uncertain(f"the API answered with {exc}") from None
                raise ApiError(f"The Scenario API answered with {exc}.", status=200) from None
            if not retryable or attempt >= MAX_ATTEMPTS:
                raise error
            delay = backoff_seconds(self._retry_base_seconds, attempt)
            if isinstance(error, ApiError) and error.retry_after is not None:
                delay = min(error.retry_after, MAX_RETRY_AFTER_SECONDS)
            logger.info("retrying %s in %.2f s after %s", what, delay, type(error).__name__)
            await self._clock.sleep(delay)

    @staticmethod
    def _uncertain(what: str) -> SubmissionUncertainError:
        return SubmissionUncertainError(
            f"The job submission's outcome is unknown: {what}. The API may have accepted it and may bill "
            "it, so it was not sent again. Check your recent jobs on app.scenario.com before submitting "
            "the same request again."
        )


def import_sdk() -> None:
    """Import Scenario's SDK and the parts of it this client uses (to warm it ahead of the first call)."""
    from scenario_sdk import AsyncScenario

    api = AsyncScenario(api_key="-", api_secret="-", base_url="http://127.0.0.1")  # noqa: S106 - never used to send
    for resource in ("generate", "jobs", "assets", "uploads", "models"):
        getattr(api, resource)  # each resource module is imported on first access


def _next_page(page: P) -> Callable[[AsyncScenario], Awaitable[P]]:
    async def fetch(_api: AsyncScenario) -> P:
        return await page.get_next_page()

    return fetch


def _part(answer: Any, key: str) -> Any:
    """What an answer carries under `key` (`job`, `asset`, ...), or a clear error when it is missing."""
    value = _answer_dict(answer).get(key)
    if not isinstance(value, dict):
        raise ApiError(f"The Scenario API's answer was not in the expected shape (no {key!r}).", status=200)
    return value


class _UnreadableAnswer(Exception):
    """A success status whose body is not the JSON object every endpoint answers with."""


def _readable(answer: T, *, billed: bool) -> T:
    """The SDK hands back the raw text (not an error) when a 2xx body is not JSON; refuse it here.

    An empty body (204 No Content) is a fine answer to a call whose answer is not read, never to a
    billed one, whose answer must name its job.
    """
    if isinstance(answer, str | bytes):
        if billed or answer.strip():
            raise _UnreadableAnswer("a body that is not JSON")
        return cast(T, {})
    return answer


def _answer_dict(answer: Any) -> dict[str, Any]:
    """An SDK answer as the API's own JSON names (camelCase), so our tolerant models parse it."""
    if isinstance(answer, dict):
        return answer
    data: dict[str, Any] = answer.to_dict(mode="json", use_api_names=True, exclude_unset=True)
    return data


def _path_id(identifier: str, what: str) -> str:
    """An id the SDK will put in a URL path (it quotes it as one segment); `.` and `..` would still
    mean another path, and the SDK refuses them with a bare ValueError: refuse them clearly first."""
    if identifier.strip(".") == "":
        raise InputError(f"{identifier!r} is not a valid {what}.")
    return identifier
