"""What can go wrong, as types. Every message is written for the assistant: what happened, what to do.

ScenarioError
├── MissingCredentialsError      no API key/secret configured
├── InputError                   an argument or local file the server refuses before any request
├── ApiError                     the API answered with an error status (status, name, reason, details)
│   ├── BadRequestError          400
│   ├── AuthenticationError      401
│   ├── PermissionDeniedError    403
│   │   └── ModelAccessRestrictedError   403 ModelAccessRestrictedError: the plan lacks the model
│   ├── NotFoundError            404
│   ├── RateLimitedError         429
│   │   └── PlanLimitReachedError        429 PlanLimitReachedError: too many jobs in flight
│   └── ServerError              5xx
├── ApiUnreachableError          no answer: connection failed or timed out
├── SubmissionUncertainError     a generate request may or may not have been accepted
├── ParallelLimitError           SCENARIO_MAX_PARALLEL_JOBS jobs are running; nothing was submitted
├── UploadError                  an image could not be uploaded
├── DownloadError                a result could not be saved
└── LedgerError                  the job ledger's file cannot be used (jobs/ledger_file.py)
    └── DamagedRecordError       one of its rows holds what this server never writes (jobs/ledger_rows.py)

Only `client.py` turns HTTP responses into these; the ledger raises its own two (both importable from
`jobs.ledger`); the tools turn them all into MCP tool errors.
"""

from __future__ import annotations

from typing import Any


class ScenarioError(Exception):
    """Base class; `str(error)` is the sentence the assistant reads."""


class MissingCredentialsError(ScenarioError):
    def __init__(self) -> None:
        super().__init__(
            "No Scenario API credentials are configured. Set SCENARIO_SDK_API_KEY and "
            "SCENARIO_SDK_API_SECRET in the MCP server's environment (create a key under Project "
            "Settings > API Keys on app.scenario.com), or set SCENARIO_SANDBOX=1 to try the built-in "
            "simulator."
        )


class InputError(ScenarioError):
    """An argument or input file was refused before anything was sent."""


class ApiUnreachableError(ScenarioError):
    """The API could not be reached, or did not answer in time."""


class SubmissionUncertainError(ScenarioError):
    """A generate request was sent but its outcome is unknown; it must not be sent again blindly."""


class ParallelLimitError(ScenarioError):
    """The client-side cap on jobs in flight (SCENARIO_MAX_PARALLEL_JOBS) stayed full for the whole wait."""


class UploadError(ScenarioError):
    """An image could not be uploaded (a part refused, the import failed or took too long)."""


class DownloadError(ScenarioError):
    """A result could not be fetched or saved."""


class ApiError(ScenarioError):
    """The API answered with an error status."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        name: str | None = None,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.name = name
        self.reason = reason
        self.details = details or {}
        self.retry_after = retry_after


class BadRequestError(ApiError):
    pass


class AuthenticationError(ApiError):
    pass


class PermissionDeniedError(ApiError):
    pass


class ModelAccessRestrictedError(PermissionDeniedError):
    pass


class NotFoundError(ApiError):
    pass


class RateLimitedError(ApiError):
    pass


class PlanLimitReachedError(RateLimitedError):
    @property
    def limit(self) -> int | None:
        value = self.details.get("actionLimit")
        return value if isinstance(value, int) else None

    @property
    def not_in_plan(self) -> bool:
        """`actionLimit: 0`: the plan does not include the action at all, so waiting never helps."""
        return self.limit == 0


class ServerError(ApiError):
    pass


# What the API's `details.actionName` values mean, in the words of the message they end up in.
_ACTION_NAMES = {
    "parallel-custom-jobs": "jobs running at once",
    "parallel-training": "trainings running at once",
}


def api_error_from(
    status: int,
    body: Any,
    text: str,
    *,
    retry_after: float | None = None,
) -> ApiError:
    """Build the typed error for an API answer. `body` is the parsed JSON (or None), `text` the raw body."""
    name: str | None = None
    reason: str | None = None
    details: dict[str, Any] = {}
    if isinstance(body, dict):
        name = body.get("name") if isinstance(body.get("name"), str) else None
        for key in ("reason", "message", "error"):
            if isinstance(body.get(key), str) and body[key]:
                reason = body[key]
                break
        if isinstance(body.get("details"), dict):
            details = body["details"]
    if reason is None:
        reason = text.strip()[:300] or None
    said = f": {reason}" if reason else ""
    common: dict[str, Any] = {
        "status": status,
        "name": name,
        "reason": reason,
        "details": details,
        "retry_after": retry_after,
    }

    if status == 400:
        return BadRequestError(f"The Scenario API rejected the request (400){said}.", **common)
    if status == 401:
        return AuthenticationError(
            f"The Scenario API refused the credentials (401){said}. Check SCENARIO_SDK_API_KEY and "
            "SCENARIO_SDK_API_SECRET: they must be a key and secret from the same Scenario project.",
            **common,
        )
    if status == 403 and name == "ModelAccessRestrictedError":
        plan = details.get("requiredPlan")
        needs = f" It needs the {plan} plan." if plan else ""
        return ModelAccessRestrictedError(
            f"Your Scenario plan does not include this model{said}.{needs} Upgrade the plan, or use the "
            "other upscale model.",
            **common,
        )
    if status == 403:
        return PermissionDeniedError(
            f"The Scenario API denied access (403){said}. The key may lack access to this project "
            "(check SCENARIO_PROJECT_ID).",
            **common,
        )
    if status == 404:
        return NotFoundError(f"Not found (404){said}. Check the id.", **common)
    if status == 429 and name == "PlanLimitReachedError":
        limit = details.get("actionLimit")
        action = details.get("actionName")
        action_text = _ACTION_NAMES.get(str(action), f"“{action}”") if action else "this action"
        if limit == 0:
            return PlanLimitReachedError(
                f"Your Scenario plan does not include {action_text}{said}. Retrying cannot help: upgrade the "
                "plan on app.scenario.com, or ask the team's admin.",
                **common,
            )
        cap = f" of {limit}" if limit is not None else ""
        return PlanLimitReachedError(
            f"Your Scenario plan's limit{cap} on {action_text} is reached{said}. Wait for a running job to "
            "finish (get_job), then submit again; retrying right away fails the same way.",
            **common,
        )
    if status == 429:
        wait = f" Wait {retry_after:g} s" if retry_after else " Wait a little"
        return RateLimitedError(
            f"The Scenario API is rate limiting requests (429){said}.{wait} and try again.", **common
        )
    if status >= 500:
        return ServerError(
            f"The Scenario API had an internal error ({status}){said}. Try again in a minute.", **common
        )
    return ApiError(f"The Scenario API answered {status}{said}.", **common)
