"""The knobs that inject faults, and how `POST /_sandbox/faults` sets them.

Each knob is read where its fault happens: the `/v1` wrapper (server errors, latency), generate
(plan limits, restricted models, accepted-then-500, failed jobs), the CDN (expired URLs, truncated
downloads), cancel, and the listing of jobs (empty pages).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from scenario_upscale_mcp.sandbox.catalogue import MODELS
from scenario_upscale_mcp.sandbox.errors import bad_request
from scenario_upscale_mcp.sandbox.wire_format import is_number


@dataclass
class Faults:
    """Knobs to inject faults. Tests set them directly or through `POST /_sandbox/faults`.

    Counters (`fail_next_jobs`, `server_errors`, ...) count down as they fire.

    `plan_limit` caps the jobs in flight: a generate beyond it answers 429 PlanLimitReachedError
    with `actionLimit` set to it. `plan_limit=0` is a plan that does not include the action at all
    (`actionLimit: 0`): every generate is refused, and waiting does not help. `restricted_models`
    lists model ids the plan lacks: generating with one answers 403 ModelAccessRestrictedError.
    `empty_job_pages` makes the next listings of jobs answer an empty page that still carries a
    `nextPaginationToken` (to the same place), which the SDK says the real API may do.
    """

    plan_limit: int | None = None
    fail_next_jobs: int = 0
    server_errors: int = 0
    accept_then_500: int = 0
    latency_seconds: float = 0.0
    expire_urls: bool = False
    cancel_refused: bool = True
    truncate_downloads: int = 0
    retry_after_seconds: float | None = None
    restricted_models: list[str] = field(default_factory=list)
    empty_job_pages: int = 0

    def reset(self) -> None:
        """Back to the defaults, in place, so code holding this object sees the reset."""
        defaults = Faults()
        for fault in fields(Faults):
            setattr(self, fault.name, getattr(defaults, fault.name))

    def set_from_json(self, body: dict[str, Any]) -> None:
        """Set the knobs named in `body` (a JSON object), all or none: an ApiError names a wrong one."""
        changes = {name: _fault_value(name, value) for name, value in body.items()}
        for name, value in changes.items():
            setattr(self, name, value)


# The JSON kind of each Faults field, for `POST /_sandbox/faults` (a test checks it covers them all).
FAULT_KINDS: dict[str, tuple[str, bool]] = {  # name -> (kind, None allowed)
    "plan_limit": ("int", True),
    "fail_next_jobs": ("int", False),
    "server_errors": ("int", False),
    "accept_then_500": ("int", False),
    "latency_seconds": ("float", False),
    "expire_urls": ("bool", False),
    "cancel_refused": ("bool", False),
    "truncate_downloads": ("int", False),
    "retry_after_seconds": ("float", True),
    "restricted_models": ("model ids", False),
    "empty_job_pages": ("int", False),
}


def _fault_value(name: str, value: Any) -> Any:
    if name not in FAULT_KINDS:
        raise bad_request(f'Unknown fault "{name}"; known: {", ".join(FAULT_KINDS)}', field=name)
    kind, nullable = FAULT_KINDS[name]
    if value is None and nullable:
        return None
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if kind == "float" and is_number(value) and value >= 0:
        return float(value)
    if kind == "model ids":
        if isinstance(value, list) and all(isinstance(item, str) and item in MODELS for item in value):
            return list(value)
        raise bad_request(f'Fault "{name}" must be a list of model ids among: {", ".join(MODELS)}')
    raise bad_request(f'Fault "{name}" must be a non-negative {kind}' + (" or null" if nullable else ""))
