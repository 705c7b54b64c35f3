"""What the check's answers mean for the user: one `CheckLine` per check, ✓ or ✗, each ✗ with its fix.

In the order printed: the credentials, each model's access, each model's inputs against its tool
(`drift.py`), the price. Made from `probing.Findings`, or, when the asking stopped early
(`probing.Stopped`) or never started (credentials not set), the line that says why and a line for
each check that could not run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from scenario_upscale_mcp.api.errors import (
    ApiError,
    ApiUnreachableError,
    AuthenticationError,
    MissingCredentialsError,
    ModelAccessRestrictedError,
    NotFoundError,
    PermissionDeniedError,
    ScenarioError,
)
from scenario_upscale_mcp.check.drift import compare_inputs, load_tool_schema
from scenario_upscale_mcp.check.probing import (
    CHECKED_MODELS,
    SAMPLE_EDGE,
    SAMPLE_FACTOR,
    Findings,
    ModelProbe,
    Stopped,
)
from scenario_upscale_mcp.config import DEFAULT_BASE_URL

KEYS_PAGE = "app.scenario.com > Project Settings > API Keys"


@dataclass(frozen=True)
class CheckLine:
    """One check's verdict: a line, and for a failure its fix; `details` are listed beneath it."""

    passed: bool
    text: str
    fix: str | None = None
    details: tuple[str, ...] = ()


def stopped_lines(stop: Stopped) -> list[CheckLine]:
    """The line of the failure that stopped the asking, then those of the checks it left unrun."""
    error = stop.error
    until = "until the credentials are accepted"  # what the checks not run wait for
    if isinstance(error, MissingCredentialsError):
        line = missing_credentials_line(("SCENARIO_SDK_API_KEY", "SCENARIO_SDK_API_SECRET"))
    elif isinstance(error, AuthenticationError):
        line = CheckLine(
            False,
            f"Credentials: refused by the API{_reason(error)}",
            fix=(
                "check SCENARIO_SDK_API_KEY and SCENARIO_SDK_API_SECRET: a key and its secret from the "
                f"same Scenario project ({KEYS_PAGE}), copied whole, without quotes or spaces; a "
                "deleted key stops working. If SCENARIO_BASE_URL is set, it must be Scenario's API "
                f"({DEFAULT_BASE_URL})"
            ),
        )
    elif isinstance(error, ApiUnreachableError):
        line = CheckLine(
            False,
            f"Credentials: not checked, no answer from the API ({error})",
            fix=(
                "check the network (and the proxy, if you use one) and SCENARIO_BASE_URL (unset means "
                f"{DEFAULT_BASE_URL}), then run the check again"
            ),
        )
        until = "until the API answers"
    else:  # a plain 403 to the sample's upload
        line = CheckLine(
            False,
            f"Credentials: accepted, but not allowed to upload{_reason(error)}",
            fix=(
                "the key may belong to another project than SCENARIO_PROJECT_ID: unset "
                "SCENARIO_PROJECT_ID, or set it to the key's project"
            ),
        )
    return [line, *not_checked(until)]


def verdict_lines(run: Findings, base_url: str) -> list[CheckLine]:
    """Every check's line, in the order printed, from what the API answered."""
    if run.authenticated:
        lines = [CheckLine(True, f"Credentials: accepted by {base_url}")]
    else:
        lines = [
            CheckLine(
                False,
                f"Credentials: not confirmed, the API answered only with errors ({run.first_error})",
                fix="run the check again in a few minutes: Scenario's API may be having trouble",
            )
        ]
    lines += [_model_line(probe) for probe in run.probes]
    lines += [_schema_line(probe) for probe in run.probes]
    lines.append(_price_line(run))
    return lines


def _model_line(probe: ModelProbe) -> CheckLine:
    label = f"{probe.model.model_id} ({probe.model.name})"
    error = probe.error
    if error is None:
        return CheckLine(True, f"{label}: usable with this account")
    other = next(model.tool for model in CHECKED_MODELS if model != probe.model)
    if isinstance(error, ModelAccessRestrictedError):
        plan = error.details.get("requiredPlan")
        needs = f"the {plan} plan" if plan else "a higher plan (the API did not say which)"
        return CheckLine(
            False,
            f"{label}: your Scenario plan does not include this model; it needs {needs}",
            fix=f"upgrade to {needs} on app.scenario.com, or use the other tool ({other})",
        )
    if isinstance(error, NotFoundError):
        return CheckLine(
            False,
            f"{label}: the API does not know this model{_reason(error)}",
            fix="update scenario-upscale-mcp (the model id may have changed); if it persists, report it",
        )
    if isinstance(error, PermissionDeniedError):
        return CheckLine(
            False,
            f"{label}: access denied{_reason(error)}",
            fix="check that the key's project may use this model, and SCENARIO_PROJECT_ID if set",
        )
    return CheckLine(False, f"{label}: could not be checked ({error})", fix="run the check again in a minute")


def _schema_line(probe: ModelProbe) -> CheckLine:
    model, tool = probe.model.model_id, probe.model.tool
    if probe.described is None:
        return CheckLine(False, f"{model} inputs: not compared until the model can be read (see above)")
    live = probe.described.get("inputs")
    if not isinstance(live, list) or not live:
        return CheckLine(
            False,
            f"{model} inputs: not compared, the API's description of the model lists no inputs",
            fix="run the check again; if it persists, report it",
        )
    differences = compare_inputs(live, load_tool_schema(tool))
    if not differences:
        return CheckLine(
            True, f"{model} inputs: the live schema matches the {tool} tool ({len(live)} inputs)"
        )
    count = f"{len(differences)} difference{'s' if len(differences) != 1 else ''}"
    return CheckLine(
        False,
        f"{model} inputs: the live schema and the {tool} tool differ ({count}; the tool may refuse values "
        "the API accepts, or pass values it refuses)",
        fix=(
            "update scenario-upscale-mcp (git pull in its folder); if the newest version shows this too, "
            "report these lines to its maintainers"
        ),
        details=tuple(str(difference) for difference in differences),
    )


def _price_line(run: Findings) -> CheckLine:
    what = f"Price of a {SAMPLE_FACTOR}x upscale of a {SAMPLE_EDGE}×{SAMPLE_EDGE} sample"
    if run.sample_error is not None:
        return CheckLine(
            False,
            f"{what}: not asked, uploading the sample PNG (made here with Pillow) failed ({run.sample_error})",
            fix="run the check again in a minute; if it persists, report it",
        )
    if run.sample_asset is None:
        return CheckLine(False, f"{what}: not asked, no model could be described")
    how = f"dry run, nothing billed; a sample PNG made here was uploaded first, as asset {run.sample_asset}"
    priced = [probe for probe in run.probes if probe.cost is not None]
    quotes = [f"{probe.cost:g} creative units with {probe.model.model_id}" for probe in priced]
    unpriced = [probe for probe in run.probes if probe.described is not None and probe.cost is None]
    failures = [
        f"{probe.model.model_id}: {probe.price_error}"
        if probe.price_error is not None
        else f"{probe.model.model_id}: the estimate carried no creativeUnitsCost"
        for probe in unpriced
        if probe.error is None  # a model the account cannot use is reported on its own line
    ]
    if failures:
        return CheckLine(
            False,
            f"{what}: {'; '.join(quotes + failures)} ({how})",
            fix="run the check again in a minute; if it persists, report it",
        )
    if not quotes:
        return CheckLine(False, f"{what}: not asked, no model is usable with this account ({how})")
    return CheckLine(True, f"{what}: {', '.join(quotes)} ({how})")


def _reason(error: ScenarioError) -> str:
    if isinstance(error, ApiError):
        said = f": {error.reason}" if error.reason else ""
        return f" ({error.status}{said})"
    return f" ({error})"


def missing_credentials_line(missing: Iterable[str]) -> CheckLine:
    names = " and ".join(missing)
    return CheckLine(
        False,
        f"Credentials: {names} {'is' if ' and ' not in names else 'are'} not set",
        fix=(
            "set SCENARIO_SDK_API_KEY and SCENARIO_SDK_API_SECRET to a key and its secret "
            f"({KEYS_PAGE}): here to check them, and in your host config's env block for the server. "
            "To try everything without an account: scenario-upscale-mcp check --sandbox"
        ),
    )


def not_checked(until: str) -> list[CheckLine]:
    """The lines of the checks that cannot run yet; `until` says what they wait for (the fix above)."""
    models = [
        CheckLine(False, f"{model.model_id} ({model.name}): not checked {until}") for model in CHECKED_MODELS
    ]
    schemas = [CheckLine(False, f"{model.model_id} inputs: not compared {until}") for model in CHECKED_MODELS]
    price = CheckLine(False, f"Price of a {SAMPLE_FACTOR}x upscale: not asked {until}")
    return [*models, *schemas, price]
