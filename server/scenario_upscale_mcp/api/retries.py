"""When a request is tried again: how many attempts, how long between them, what `Retry-After` asks.

One rule for the SDK calls (`client.ScenarioClient._call`, which retries reads) and for the HTTP the
SDK does not do (`transfers.Transfers.put_part`, which retries a part's PUT).
"""

from __future__ import annotations

import email.utils
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx

MAX_ATTEMPTS = 3
MAX_RETRY_AFTER_SECONDS = 30.0


def backoff_seconds(base_seconds: float, attempt: int) -> float:
    """The pause after failed attempt number `attempt` (counted from 1): doubling from `base_seconds`."""
    return base_seconds * 2.0 ** (attempt - 1)


def retry_after_seconds(headers: httpx.Headers, *, now: Callable[[], float] = time.time) -> float | None:
    """`Retry-After` as seconds: either a number or an HTTP date (measured from `now`, epoch seconds)."""
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
    return max(0.0, when.timestamp() - now())
