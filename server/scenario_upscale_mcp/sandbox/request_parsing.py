"""Reading a request as the API does: a JSON object body, and query parameters by the SDK's names;
unknown fields and query parameters are refused, not ignored."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request

from scenario_upscale_mcp.sandbox.errors import bad_request


async def json_object(request: Request, *, optional: bool = False) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip() and optional:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        raise bad_request("Request body must be valid JSON") from None
    if not isinstance(value, dict):
        raise bad_request("Request body must be a JSON object")
    return value


def reject_unknown_fields(body: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for key in body:
        if key not in allowed:
            raise bad_request(
                f'Unknown field "{key}"; allowed fields: {", ".join(allowed)}',
                field=key,
                allowed=list(allowed),
            )


def reject_unknown_query(request: Request, allowed: tuple[str, ...]) -> None:
    """Query parameters outside the SDK's names for this route are refused, not ignored.

    A misspelt one (`dry_run`, `page_size`) would otherwise change what the call does without a word.
    """
    for key in request.query_params:
        if key not in allowed:
            raise bad_request(
                f'Unknown query parameter "{key}"; allowed: {", ".join(allowed)}',
                field=key,
                allowed=list(allowed),
            )


def bool_query(request: Request, name: str) -> bool | None:
    text = request.query_params.get(name)
    if text is None:
        return None
    if text not in ("true", "false"):
        raise bad_request(f'"{name}" must be true or false (got {text!r})', field=name)
    return text == "true"


def date_query(request: Request, name: str) -> datetime | None:
    text = request.query_params.get(name)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise bad_request(f'"{name}" must be an ISO 8601 date (got {text!r})', field=name) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
