"""The simulator's error answers: the API's JSON shape, object storage's XML, and the fallbacks.

The API answers ``{"reason", "name", "details"}`` (the observed shape); the CDN and the presigned
part URLs are object storage, which answers in S3's XML.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from scenario_upscale_mcp.sandbox.wire_format import SANDBOX_HEADER, shown

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answer in the observed shape `{"reason", "name", "details"}`."""

    def __init__(self, status: int, name: str, reason: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.name = name
        self.reason = reason
        self.details = details


def bad_request(reason: str, **details: Any) -> ApiError:
    return ApiError(400, "BadRequestError", reason, details or None)


def asset_not_found(asset_id: str, field_name: str | None = None) -> ApiError:
    details: dict[str, Any] = {"assetId": asset_id}
    if field_name is not None:
        details["field"] = field_name
    return ApiError(404, "NotFoundError", "Asset not found", details)


def error_response(error: ApiError, retry_after_seconds: float | None) -> Response:
    """The JSON answer for `error`; `Retry-After` on 429 and 5xx when the fault knob sets one."""
    body: dict[str, Any] = {"reason": error.reason, "name": error.name}
    if error.details:
        body["details"] = error.details
    headers = {}
    if retry_after_seconds is not None and (error.status == 429 or error.status >= 500):
        # Sent as given, decimals included, so tests can ask for short waits.
        headers["Retry-After"] = shown(retry_after_seconds)
    return JSONResponse(body, status_code=error.status, headers=headers)


def xml_error(status: int, code: str, message: str) -> Response:
    # The CDN and the part URLs are object storage, which answers in S3's XML, not Scenario's JSON.
    body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    return Response(body, status_code=status, media_type="application/xml")


async def route_not_found(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    headers = exc.headers if isinstance(exc, HTTPException) else None  # e.g. Allow on a 405
    name = {404: "NotFoundError", 405: "MethodNotAllowedError"}.get(status, "BadRequestError")
    reason = f"No such route in the sandbox: {request.method} {request.url.path}"
    return JSONResponse({"reason": reason, "name": name}, status_code=status, headers=headers)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    # Runs outside the middleware stack, so it sets the sandbox header itself.
    logger.error("sandbox: unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    body = {"reason": "Unexpected error in the sandbox simulator", "name": "InternalServerError"}
    return JSONResponse(body, status_code=500, headers={SANDBOX_HEADER: "simulator"})
