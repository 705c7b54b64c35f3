"""The Scenario REST client: the only module that speaks HTTP.

One long-lived `httpx.AsyncClient` per server (owned by the lifespan), an injectable transport for
tests, and one choke point (`_send`) where every failure becomes a typed `errors.ScenarioError`.

Retries: reads (GET) and uploads are retried on timeouts, dropped connections, 429 and 5xx, with
backoff that honours `Retry-After`. A generate POST is *billed*, so it is retried only when the API
surely never received it (the connection could not even be opened); any other failure after
sending is reported as `SubmissionUncertainError` instead of risking a second charge.
"""

from __future__ import annotations

import base64
import email.utils
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import anyio
import httpx
from pydantic import ValidationError

from scenario_upscale_mcp import __version__
from scenario_upscale_mcp.api.answers import Asset, DownloadLink, GenerateAnswer, Job, Upload
from scenario_upscale_mcp.api.errors import (
    ApiError,
    ApiUnreachableError,
    DownloadError,
    InputError,
    MissingCredentialsError,
    PlanLimitReachedError,
    RateLimitedError,
    ServerError,
    SubmissionUncertainError,
    UploadError,
    api_error_from,
)
from scenario_upscale_mcp.config import DEFAULT_BASE_URL, Settings

logger = logging.getLogger(__name__)

DRY_RUN_STATUS = 269  # the API's answer to ?dryRun=true: a cost estimate, no job
MAX_ATTEMPTS = 3
MAX_RETRY_AFTER_SECONDS = 30.0
MAX_REDIRECTS = 5


class ScenarioClient:
    """Typed calls to the endpoints this server uses. Use as an async context manager."""

    def __init__(
        self,
        settings: Settings,
        *,
        base_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retry_base_seconds: float = 0.5,
    ) -> None:
        self._settings = settings
        self.base_url = (base_url or settings.base_url or DEFAULT_BASE_URL).rstrip("/")
        self._retry_base_seconds = retry_base_seconds
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.http_timeout_seconds, connect=10.0),
            transport=transport,
            follow_redirects=True,  # CDN transform URLs redirect
            headers={"User-Agent": f"scenario-upscale-mcp/{__version__}"},
        )

    async def __aenter__(self) -> ScenarioClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- endpoints -------------------------------------------------------------------------------

    async def generate(
        self, model_id: str, inputs: Mapping[str, Any], *, dry_run: bool = False
    ) -> GenerateAnswer:
        """Submit a job (billed), or with `dry_run` get its cost estimate (free, HTTP 269)."""
        params = {"dryRun": "true"} if dry_run else None
        body = await self._send(
            "POST",
            f"/generate/custom/{_segment(model_id)}",
            json=dict(inputs),
            params=params,
            billed=not dry_run,
        )
        try:
            return GenerateAnswer.model_validate(body)
        except ValidationError as exc:
            if dry_run:
                raise ApiError(
                    "The Scenario API's cost estimate was not in the expected shape.", status=200
                ) from exc
            raise self._uncertain("the API's answer was not in the expected shape") from exc

    async def get_job(self, job_id: str) -> Job:
        body = await self._send("GET", f"/jobs/{_segment(job_id)}")
        return Job.model_validate(body["job"])

    async def list_jobs(self, *, created_after: str) -> list[Job]:
        """Jobs created at or after an ISO 8601 instant, newest first: finds a job a lost answer created."""
        body = await self._send("GET", "/jobs", params={"createdAfter": created_after})
        return [Job.model_validate(job) for job in body.get("jobs", [])]

    async def cancel_job(self, job_id: str) -> None:
        await self._send("POST", f"/jobs/{_segment(job_id)}/action", json={"action": "cancel"}, retry=False)

    async def create_asset(self, name: str, data: bytes) -> Asset:
        """Upload a small image (under 6 MB) as base64 JSON. A duplicate asset costs nothing, so retry is safe."""
        payload = {"image": base64.b64encode(data).decode("ascii"), "name": name}
        body = await self._send("POST", "/assets", json=payload)
        return Asset.model_validate(body["asset"])

    async def create_upload(self, *, file_name: str, content_type: str, file_size: int, parts: int) -> Upload:
        body = await self._send(
            "POST",
            "/uploads",
            json={
                "fileName": file_name,
                "contentType": content_type,
                "fileSize": file_size,
                "parts": parts,
                "kind": "image",
            },
        )
        return Upload.model_validate(body["upload"])

    async def complete_upload(self, upload_id: str) -> None:
        await self._send("POST", f"/uploads/{_segment(upload_id)}/action", json={"action": "complete"})

    async def get_upload(self, upload_id: str) -> Upload:
        body = await self._send("GET", f"/uploads/{_segment(upload_id)}")
        return Upload.model_validate(body["upload"])

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
            await anyio.sleep(self._retry_base_seconds * 2 ** (attempt - 1))

    @asynccontextmanager
    async def open_public_url(
        self, url: str, *, check_host: Callable[[str, int], Awaitable[None]]
    ) -> AsyncIterator[tuple[int | None, AsyncIterator[bytes]]]:
        """Stream an image from a user-given https URL: (Content-Length or None, chunks).

        Redirects are followed here, one hop at a time, so that `check_host` vets every host the
        request goes to (not only the first): https only, and public addresses only.
        """
        for _hop in range(MAX_REDIRECTS + 1):
            try:
                parsed = httpx.URL(url)
            except httpx.InvalidURL as exc:
                raise InputError(f"Not a valid image URL ({exc}): {url}") from None
            if parsed.scheme != "https":
                raise InputError(f"Only https:// image URLs are accepted; got {parsed.scheme}:// ({url}).")
            await check_host(parsed.host, parsed.port or 443)
            try:
                async with self._http.stream("GET", url, follow_redirects=False) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = str(response.url.join(response.headers["location"]))
                        continue
                    if response.status_code >= 400:
                        raise InputError(f"The image URL answered HTTP {response.status_code}: {url}")
                    length = response.headers.get("content-length")
                    yield (
                        (int(length) if length and length.isdigit() else None),
                        response.aiter_bytes(),
                    )
                    return
            except (httpx.TransportError, httpx.InvalidURL) as exc:
                raise InputError(f"Could not fetch the image URL ({type(exc).__name__}): {url}") from exc
        raise InputError(f"The image URL redirected more than {MAX_REDIRECTS} times: {url}")

    async def get_model(self, model_id: str) -> dict[str, Any]:
        """`GET /models/{modelId}`: the model as the API describes it (its `inputs` carry the live schema)."""
        body = await self._send("GET", f"/models/{_segment(model_id)}")
        model: dict[str, Any] = body["model"]
        return model

    async def get_asset(self, asset_id: str) -> Asset:
        body = await self._send("GET", f"/assets/{_segment(asset_id)}")
        return Asset.model_validate(body["asset"])

    async def convert_asset(self, asset_id: str, target_format: str) -> DownloadLink:
        body = await self._send(
            "POST", f"/assets/{_segment(asset_id)}/download", json={"targetFormat": target_format}
        )
        return DownloadLink.model_validate(body)

    @asynccontextmanager
    async def open_download(self, url: str) -> AsyncIterator[tuple[int | None, AsyncIterator[bytes]]]:
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
                length = response.headers.get("content-length")
                yield (
                    (int(length) if length and length.isdigit() else None),
                    response.aiter_bytes(),
                )
        except httpx.TransportError as exc:
            raise DownloadError(f"The download was interrupted ({type(exc).__name__}).") from exc

    # --- the choke point -------------------------------------------------------------------------

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        billed: bool = False,
        retry: bool = True,
    ) -> Any:
        """Send one API request; return the parsed JSON body or raise a typed error."""
        credentials = self._settings.credentials()
        if credentials is None:
            raise MissingCredentialsError
        query = dict(params or {})
        if self._settings.project_id:
            query["projectId"] = self._settings.project_id
        url = f"{self.base_url}{path}"
        auth = httpx.BasicAuth(*credentials)

        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._http.request(method, url, json=json, params=query or None, auth=auth)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                # The connection was never opened, so nothing reached the API: safe to retry even a
                # billed request.
                error: Exception = ApiUnreachableError(
                    f"Could not connect to the Scenario API at {self.base_url} ({type(exc).__name__}). "
                    "Check the network and SCENARIO_BASE_URL, then try again."
                )
                retryable = retry
            except httpx.TransportError as exc:
                if billed:
                    raise self._uncertain(
                        f"the connection failed after sending ({type(exc).__name__})"
                    ) from exc
                error = ApiUnreachableError(
                    f"The Scenario API did not answer in time ({type(exc).__name__}). Try again in a minute."
                )
                retryable = retry
            else:
                if response.status_code < 300 or response.status_code == DRY_RUN_STATUS:
                    body = _json_or_none(response)
                    if body is not None:
                        return body
                    if billed:
                        raise self._uncertain(
                            f"the API answered {response.status_code} with a body that is not JSON"
                        )
                    if not response.content.strip():
                        return {}  # e.g. 204 No Content
                    raise ApiError(
                        f"The Scenario API answered {response.status_code} with a body that is not JSON.",
                        status=response.status_code,
                    )
                body = _json_or_none(response)
                api_error = api_error_from(
                    response.status_code, body, response.text, retry_after=_retry_after(response.headers)
                )
                logger.info(
                    "API %s %s answered %s %s", method, path, response.status_code, api_error.name or ""
                )
                if billed and isinstance(api_error, ServerError):
                    raise self._uncertain(f"the API answered {response.status_code}") from api_error
                error = api_error
                # A plan limit repeats until a job finishes: no hot retry here (see PlanLimitReachedError).
                retryable = (
                    retry
                    and not billed
                    and isinstance(api_error, ServerError | RateLimitedError)
                    and not isinstance(api_error, PlanLimitReachedError)
                )
            if not retryable or attempt >= MAX_ATTEMPTS:
                raise error
            delay = self._retry_base_seconds * 2 ** (attempt - 1)
            if isinstance(error, ApiError) and error.retry_after is not None:
                delay = min(error.retry_after, MAX_RETRY_AFTER_SECONDS)
            logger.info("retrying %s %s in %.2f s after %s", method, path, delay, type(error).__name__)
            await anyio.sleep(delay)

    @staticmethod
    def _uncertain(what: str) -> SubmissionUncertainError:
        return SubmissionUncertainError(
            f"The job submission's outcome is unknown: {what}. The API may have accepted it and may bill "
            "it, so it was not sent again. Check your recent jobs on app.scenario.com before submitting "
            "the same request again."
        )


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _segment(identifier: str) -> str:
    """An id as one URL path segment: never a way to reach another path of the API."""
    return quote(identifier, safe="")


def _retry_after(headers: httpx.Headers) -> float | None:
    """`Retry-After` as seconds: either a number or an HTTP date."""
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
