"""`scenario-upscale-mcp check`: is this setup ready to upscale with Scenario? One line per answer.

What a user runs after putting in their key (and what the README's troubleshooting points to). It asks
the API, in this order, and then prints one ✓ or ✗ line per check, each ✗ with its fix:

1. the credentials are accepted (none configured: no request is made at all);
2. each of the two models is usable by this account (a plan that lacks one names the plan it needs);
3. each model's live input schema (`GET /models/{modelId}`) still matches the tool's committed schema:
   every bound, default, allowed value or item count that differs, and inputs only one side has;
4. the price of a 2x upscale of a small sample, by dry run (free; the sample is a PNG made here with
   Pillow and uploaded as an asset first, since a dry run needs an existing asset).

Everything is asked first and printed at the end, because a model's line also depends on its dry run
(the API may refuse a plan's model only when asked to generate with it).

This is a command for people, not the MCP server: it prints to stdout. It never prints a credential,
not even part of one; whatever the API answers is scrubbed of them before it is shown.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, TextIO

import anyio
from pydantic import SecretStr, ValidationError

from scenario_upscale_mcp.api.errors import (
    ApiError,
    ApiUnreachableError,
    AuthenticationError,
    BadRequestError,
    MissingCredentialsError,
    ModelAccessRestrictedError,
    NotFoundError,
    PermissionDeniedError,
    ScenarioError,
)
from scenario_upscale_mcp.config import DEFAULT_BASE_URL, SANDBOX_CREDENTIAL, Settings

if TYPE_CHECKING:
    import httpx

    from scenario_upscale_mcp.api.client import ScenarioClient

PASSED = "✓"
FAILED = "✗"

SAMPLE_EDGE = 256  # px: small enough to upload in a blink, large enough to be a plausible input
SAMPLE_NAME = "scenario-upscale-mcp-check.png"
SAMPLE_FACTOR = 2

KEYS_PAGE = "app.scenario.com > Project Settings > API Keys"


@dataclass(frozen=True)
class CheckedModel:
    model_id: str
    name: str
    tool: str  # the tool whose committed input schema mirrors this model's inputs


CHECKED_MODELS: tuple[CheckedModel, ...] = (
    CheckedModel("model_upscale-v3", "Scenario Upscale V3", "upscale_v3"),
    CheckedModel("model_sc-upscale-flux-texture", "Scenario Texture Upscale", "upscale_texture"),
)

# The model tools' own options (see DESIGN.md, "Options shared by the two model tools"): they steer
# the server and are never sent to the API, so the API's schema does not list them.
TOOL_ONLY_OPTIONS = frozenset({"dryRun", "wait", "outputDir", "allowDuplicate"})

# Inputs whose API type JSON Schema cannot express: the tools take image references and LoRA ids as
# plain strings, but the API types them by what they point at.
_SEMANTIC_TYPES = {
    "image": "file",
    "styleImages": "file_array",
    "imagePrompt": "file_array",
    "loras": "model_array",
}
# The docs' prose spellings (`assetId`, `assetId[]`, `model[]`; SCENARIO_API.md §1), read as the JSON
# API's types should an answer ever use them, rather than reported as a change of type.
_PROSE_TYPES = {
    "assetId": "file",
    "assetId[]": "file_array",
    "model[]": "model_array",
    "number[]": "number_array",
    "string[]": "string_array",
}


# --- the drift comparison (pure) -----------------------------------------------------------------

Aspect = Literal[
    "input", "type", "required", "min", "max", "default", "allowed value", "max items", "max length"
]


@dataclass(frozen=True)
class Difference:
    """One way a model's live input schema differs from the tool's.

    `api` and `tool` are each side's value, None when that side does not set it. For `input` (an input
    only one side has) they hold the input's type on the side that has it; for `allowed value`, the
    value on the side that allows it.
    """

    input: str
    aspect: Aspect
    api: Any = None
    tool: Any = None

    def __str__(self) -> str:
        if self.aspect == "input":
            if self.tool is None:
                return f"{self.input}: the API has this input ({self.api}); the tool lacks it"
            return f"{self.input}: the tool has this input; the API no longer lists it"
        if self.aspect == "allowed value":
            if self.tool is None:
                return f"{self.input}: the API allows {_shown(self.api)}; the tool does not"
            return f"{self.input}: the tool allows {_shown(self.tool)}; the API does not"
        if self.aspect == "required":
            return (
                f"{self.input}: {'required' if self.api else 'optional'} in the API, "
                f"{'required' if self.tool else 'optional'} in the tool"
            )
        return (
            f"{self.input}: {self.aspect} is {_shown(self.api)} in the API, {_shown(self.tool)} in the tool"
        )


def compare_inputs(live_inputs: Sequence[Any], tool_schema: Mapping[str, Any]) -> list[Difference]:
    """Every difference between a model's live inputs (`model.inputs` of `GET /models/{modelId}`) and a
    tool's `inputSchema`, the tool-only options left out. Missing keys on either side mean "not set"."""
    live = {
        entry["name"]: entry
        for entry in live_inputs
        if isinstance(entry, Mapping) and isinstance(entry.get("name"), str)
    }
    properties: Mapping[str, Any] = tool_schema.get("properties") or {}
    ours = {name: prop for name, prop in properties.items() if name not in TOOL_ONLY_OPTIONS}
    required = set(tool_schema.get("required") or ())

    differences: list[Difference] = []
    for name, entry in live.items():
        if name in ours:
            differences += _compare_input(name, entry, ours[name], tool_required=name in required)
        else:
            differences.append(Difference(name, "input", api=_api_type(entry)))
    differences += [
        Difference(name, "input", tool=_tool_type(name, _unwrapped(prop)))
        for name, prop in ours.items()
        if name not in live
    ]
    return differences


def _compare_input(
    name: str, entry: Mapping[str, Any], prop: Mapping[str, Any], *, tool_required: bool
) -> list[Difference]:
    schema = _unwrapped(prop)
    api_type = _api_type(entry)
    tool_type = _tool_type(name, schema)
    is_array = api_type.endswith("_array") or tool_type.endswith("_array")
    # For a list of numbers, bounds and allowed values belong to its items.
    items = schema.get("items")
    element = items if is_array and isinstance(items, Mapping) else schema

    differences: list[Difference] = []

    def compare(aspect: Aspect, api: Any, tool: Any) -> None:
        if not _same(api, tool):
            differences.append(Difference(name, aspect, api=api, tool=tool))

    compare("type", api_type, tool_type)
    compare("required", _always_required(entry.get("required")), tool_required)
    compare("min", entry.get("min"), element.get("minimum"))
    compare("max", entry.get("max"), element.get("maximum"))
    # The default sits beside `anyOf` for a nullable input, so it is read from the unwrapped schema too.
    compare("default", entry.get("default"), schema.get("default"))
    if is_array:
        compare("max items", entry.get("maxLength"), schema.get("maxItems"))
    elif api_type == "string":  # for `file` the API's length is not the reference's (an asset id's)
        compare("max length", entry.get("maxLength"), schema.get("maxLength"))

    api_values = _as_list(entry.get("allowedValues"))
    tool_values = _as_list(element.get("enum"))
    differences += [
        Difference(name, "allowed value", api=value)
        for value in api_values
        if not any(_same(value, ours) for ours in tool_values)
    ]
    differences += [
        Difference(name, "allowed value", tool=value)
        for value in tool_values
        if not any(_same(value, theirs) for theirs in api_values)
    ]
    return differences


def _unwrapped(prop: Mapping[str, Any]) -> dict[str, Any]:
    """A nullable property (`anyOf: [X, {"type": "null"}]`, how pydantic writes `X | None`) as X, keeping
    the outer keys (default, description)."""
    merged = {key: value for key, value in prop.items() if key != "anyOf"}
    branches = [
        branch
        for branch in prop.get("anyOf") or ()
        if isinstance(branch, Mapping) and branch.get("type") != "null"
    ]
    if len(branches) == 1:
        merged = {**branches[0], **merged}
    return merged


def _tool_type(name: str, schema: Mapping[str, Any]) -> str:
    """The API type the tool's schema stands for."""
    if name in _SEMANTIC_TYPES:
        return _SEMANTIC_TYPES[name]
    json_type = schema.get("type")
    if json_type in ("number", "integer"):
        return "number"
    if json_type in ("string", "boolean"):
        return str(json_type)
    if json_type == "array":
        items = schema.get("items")
        element = _tool_type("", items) if isinstance(items, Mapping) else "unknown"
        return f"{element}_array"
    return str(json_type) if json_type else "unknown"


def _api_type(entry: Mapping[str, Any]) -> str:
    value = entry.get("type")
    if not isinstance(value, str):
        return "unknown"
    return _PROSE_TYPES.get(value, value)


def _always_required(rule: Any) -> bool:
    """`required` is a rule object (`{"always": true}`, or conditional: `ifDefined`, ...); only `always`
    makes an input required outright. A bare boolean is read as the same thing."""
    if isinstance(rule, Mapping):
        return rule.get("always") is True
    return rule is True


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _same(api: Any, tool: Any) -> bool:
    """JSON equality: 2 equals 2.0, but true never equals 1 (Python's `True == 1` would hide that)."""
    if isinstance(api, bool) or isinstance(tool, bool):
        return type(api) is type(tool) and api == tool
    if isinstance(api, list) and isinstance(tool, list):
        return len(api) == len(tool) and all(_same(a, b) for a, b in zip(api, tool, strict=True))
    return bool(api == tool)


def _shown(value: Any) -> str:
    return "not set" if value is None else json.dumps(_plain(value), ensure_ascii=False)


def _plain(value: Any) -> Any:
    """16.0 shown as 16: the SDK reads every bound as a float, and the tools' schemas write 16."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def load_tool_schema(tool: str) -> dict[str, Any]:
    """The tool's committed `inputSchema`: what hosts are shown, so what the check holds the API to."""
    from scenario_upscale_tools.inventory import SCHEMAS

    schema: dict[str, Any] = json.loads((SCHEMAS / f"{tool}.json").read_text(encoding="utf-8"))["inputSchema"]
    return schema


# --- asking the API -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckLine:
    """One check's verdict: a line, and for a failure its fix; `details` are listed beneath it."""

    passed: bool
    text: str
    fix: str | None = None
    details: tuple[str, ...] = ()


@dataclass
class _ModelProbe:
    model: CheckedModel
    described: dict[str, Any] | None = None  # the `model` object of GET /models/{modelId}
    error: ScenarioError | None = None  # why this account cannot use the model (or it could not be asked)
    cost: float | None = None
    price_error: ScenarioError | None = None


class _Stop(Exception):
    """A failure that makes every further request pointless (credentials refused, API unreachable)."""

    def __init__(self, line: CheckLine, *, until: str = "until the credentials are accepted") -> None:
        super().__init__(line.text)
        self.line = line
        self.until = until  # what the checks not run wait for


@dataclass
class _Run:
    probes: list[_ModelProbe]
    authenticated: bool = False  # some answer proved the API accepted the credentials
    first_error: ScenarioError | None = None
    sample_asset: str | None = None
    sample_error: ScenarioError | None = None


async def run_checks(
    settings: Settings,
    *,
    base_url: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[CheckLine]:
    """Ask the API everything the check needs; return the lines to print, in order."""
    missing = missing_credentials(settings)
    if missing:
        # Before the client is even made: no request can go out without credentials.
        return [_missing_credentials_line(missing), *_not_checked("until the credentials are set")]

    from scenario_upscale_mcp.api.client import ScenarioClient

    run = _Run(probes=[_ModelProbe(model) for model in CHECKED_MODELS])
    async with ScenarioClient(settings, base_url=base_url, transport=transport) as client:
        try:
            await _ask(client, run)
        except _Stop as stop:
            return [stop.line, *_not_checked(stop.until)]
    return _lines(run, client.base_url)


async def _ask(client: ScenarioClient, run: _Run) -> None:
    for probe in run.probes:
        try:
            probe.described = await client.get_model(probe.model.model_id)
            run.authenticated = True
        except ScenarioError as error:
            _stop_if_fatal(error, client.base_url)
            _note(run, error)
            probe.error = error

    reachable = [probe for probe in run.probes if probe.described is not None]
    if not reachable:
        return
    try:
        asset = await client.create_asset(SAMPLE_NAME, sample_png(), "image/png")
        run.sample_asset = asset.id
        run.authenticated = True
    except ScenarioError as error:
        _stop_if_fatal(error, client.base_url, uploading=True)
        _note(run, error)
        run.sample_error = error
        return

    for probe in reachable:
        body = {"image": run.sample_asset, "upscaleFactor": SAMPLE_FACTOR}
        try:
            estimate = await client.generate(probe.model.model_id, body, dry_run=True)
        except ScenarioError as error:
            _stop_if_fatal(error, client.base_url)
            _note(run, error)
            if isinstance(error, PermissionDeniedError | NotFoundError):
                probe.error = error  # the account cannot generate with it: the model's own line says so
            else:
                probe.price_error = error
            continue
        run.authenticated = True
        probe.cost = estimate.creative_units_cost


def _note(run: _Run, error: ScenarioError) -> None:
    run.first_error = run.first_error or error
    # These answers come after authentication: the credentials were accepted.
    if isinstance(error, ModelAccessRestrictedError | NotFoundError | BadRequestError):
        run.authenticated = True


def _stop_if_fatal(error: ScenarioError, base_url: str, *, uploading: bool = False) -> None:
    if isinstance(error, MissingCredentialsError):
        raise _Stop(_missing_credentials_line(("SCENARIO_SDK_API_KEY", "SCENARIO_SDK_API_SECRET")))
    if isinstance(error, AuthenticationError):
        raise _Stop(
            CheckLine(
                False,
                f"Credentials: refused by the API{_reason(error)}",
                fix=(
                    "check SCENARIO_SDK_API_KEY and SCENARIO_SDK_API_SECRET: a key and its secret from the "
                    f"same Scenario project ({KEYS_PAGE}), copied whole, without quotes or spaces; a "
                    "deleted key stops working. If SCENARIO_BASE_URL is set, it must be Scenario's API "
                    f"({DEFAULT_BASE_URL})"
                ),
            )
        )
    if isinstance(error, ApiUnreachableError):
        raise _Stop(
            CheckLine(
                False,
                f"Credentials: not checked, no answer from the API ({error})",
                fix=(
                    "check the network (and the proxy, if you use one) and SCENARIO_BASE_URL (unset means "
                    f"{DEFAULT_BASE_URL}), then run the check again"
                ),
            ),
            until="until the API answers",
        )
    # A plain 403 to an upload is about the key and the project, not about a model.
    if uploading and type(error) is PermissionDeniedError:
        raise _Stop(
            CheckLine(
                False,
                f"Credentials: accepted, but not allowed to upload{_reason(error)}",
                fix=(
                    "the key may belong to another project than SCENARIO_PROJECT_ID: unset "
                    "SCENARIO_PROJECT_ID, or set it to the key's project"
                ),
            )
        )


def _lines(run: _Run, base_url: str) -> list[CheckLine]:
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


def _model_line(probe: _ModelProbe) -> CheckLine:
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


def _schema_line(probe: _ModelProbe) -> CheckLine:
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


def _price_line(run: _Run) -> CheckLine:
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


def _missing_credentials_line(missing: Iterable[str]) -> CheckLine:
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


def _not_checked(until: str) -> list[CheckLine]:
    """The lines of the checks that cannot run yet; `until` says what they wait for (the fix above)."""
    models = [
        CheckLine(False, f"{model.model_id} ({model.name}): not checked {until}") for model in CHECKED_MODELS
    ]
    schemas = [CheckLine(False, f"{model.model_id} inputs: not compared {until}") for model in CHECKED_MODELS]
    price = CheckLine(False, f"Price of a {SAMPLE_FACTOR}x upscale: not asked {until}")
    return [*models, *schemas, price]


def missing_credentials(settings: Settings) -> tuple[str, ...]:
    """The credential variables still to set (empty when both are)."""
    missing = []
    if not (settings.api_key and settings.api_key.get_secret_value()):
        missing.append("SCENARIO_SDK_API_KEY")
    if not (settings.api_secret and settings.api_secret.get_secret_value()):
        missing.append("SCENARIO_SDK_API_SECRET")
    return tuple(missing)


def sample_png() -> bytes:
    """A small PNG made in memory: the dry run needs an existing asset, and no user file is touched."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.linear_gradient("L").resize((SAMPLE_EDGE, SAMPLE_EDGE)).convert("RGB").save(buffer, "PNG")
    return buffer.getvalue()


# --- printing ---------------------------------------------------------------------------------------


def render(
    lines: Sequence[CheckLine], *, hidden: Iterable[str] = (), symbols: tuple[str, str] = (PASSED, FAILED)
) -> str:
    """The report as printed, with every hidden value (the credentials) scrubbed from it."""
    passed_mark, failed_mark = symbols
    out: list[str] = []
    for line in lines:
        text = f"{passed_mark if line.passed else failed_mark} {line.text}"
        if not line.passed and line.fix:
            text += f" — fix: {line.fix}"
        out.append(text)
        out += [f"    · {detail}" for detail in line.details]
    failed = sum(not line.passed for line in lines)
    out.append(
        f"All {len(lines)} checks passed." if not failed else f"{failed} of {len(lines)} checks failed."
    )
    return _scrubbed("\n".join(out) + "\n", hidden)


def _scrubbed(text: str, hidden: Iterable[str]) -> str:
    # An error text is the API's own words; should it ever echo a credential, it is cut out here.
    # Values under 4 characters are left alone: no real key is that short, and scrubbing "a" would
    # garble every line.
    for value in sorted(hidden, key=len, reverse=True):
        if len(value) >= 4:
            text = text.replace(value, "[hidden]")
    return text


def _symbols_for(stream: TextIO) -> tuple[str, str]:
    """✓/✗, or plain words where the output's encoding has no such characters (older Windows consoles,
    output redirected to a file there)."""
    try:
        (PASSED + FAILED).encode(_encoding(stream))
    except (UnicodeEncodeError, LookupError):
        return ("OK", "FAIL")
    return (PASSED, FAILED)


def _write(stream: TextIO, text: str) -> None:
    """Write what the output's encoding can carry (a character it lacks becomes "?"), never crash on it."""
    with suppress(LookupError):
        text = text.encode(_encoding(stream), "replace").decode(_encoding(stream))
    stream.write(text)
    stream.flush()


def _encoding(stream: TextIO) -> str:
    return getattr(stream, "encoding", None) or "utf-8"


def check_command(
    *,
    sandbox: bool = False,
    out: TextIO | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> int:
    """Run every check and print the report; return the exit code (0: all passed, 1: not).

    `sandbox` (or SCENARIO_SANDBOX=1, as for the server) checks the built-in simulator, with dummy
    credentials: no account needed. `transport` is for tests.
    """
    out = out or sys.stdout
    symbols = _symbols_for(out)
    try:
        settings = Settings()
    except ValidationError as exc:
        # Only where and what, never the value: a setting's value is the user's, maybe private.
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        _write(
            out,
            f"{symbols[1]} Configuration: {problems} — fix: correct or unset those SCENARIO_* variables\n",
        )
        return 1
    hidden = [secret.get_secret_value() for secret in (settings.api_key, settings.api_secret) if secret]

    with ExitStack() as resources:
        base_url = settings.base_url or DEFAULT_BASE_URL
        if sandbox or settings.sandbox:
            if sandbox or settings.base_url is None:
                from scenario_upscale_mcp.sandbox import Sandbox, serve_in_thread

                base_url = resources.enter_context(serve_in_thread(Sandbox()))
            heading = (
                f"Checking the built-in simulator at {base_url} (no account, nothing billed, made-up prices)"
            )
            settings = _simulator_settings(settings, base_url)
        else:
            project = f", project {settings.project_id}" if settings.project_id else ""
            heading = f"Checking Scenario's API at {base_url}{project}"
        _write(out, heading + "\n")  # now: the checks take a few seconds
        lines = anyio.run(partial(run_checks, settings, base_url=base_url, transport=transport))
    _write(out, render(lines, hidden=hidden, symbols=symbols))
    return 0 if all(line.passed for line in lines) else 1


def _simulator_settings(settings: Settings, base_url: str) -> Settings:
    """Dummy credentials for the simulator: the user's own are never sent to it."""
    dummy = SecretStr(SANDBOX_CREDENTIAL)
    return settings.model_copy(
        update={
            "api_key": dummy,
            "api_secret": dummy,
            "base_url": base_url,
            "project_id": None,
            "sandbox": True,
        }
    )
