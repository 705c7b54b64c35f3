"""What every answer of the simulator shares: the header that says it is one, who owns what it
creates, and how it writes ids, dates and numbers."""

from __future__ import annotations

import math
import secrets
from datetime import UTC, datetime
from typing import Any

SANDBOX_HEADER = "x-scenario-sandbox"

# Made up: who owns what the simulator creates (the real API names the caller's user and team).
SANDBOX_AUTHOR_ID = "user_sandbox"
SANDBOX_OWNER_ID = "team_sandbox"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(16)}"


def shown(value: float) -> str:
    """Numbers as a person writes them: 16, not 16.0; 2147483647, not 2.14748e+09."""
    return str(int(value)) if float(value).is_integer() else str(value)


def is_number(value: Any) -> bool:
    # bool is an int in Python but not a number in JSON.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
