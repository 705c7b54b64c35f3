"""`scenario-upscale-mcp check`: the drift comparison on hand-made schemas, then the whole command against
the simulator and against fake APIs (httpx.MockTransport) that refuse the credentials or a model."""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from scenario_upscale_mcp.check.command import check_command, run_checks
from scenario_upscale_mcp.check.drift import Difference, compare_inputs, load_tool_schema
from scenario_upscale_mcp.check.probing import CHECKED_MODELS
from scenario_upscale_mcp.check.report import render
from scenario_upscale_mcp.cli import main
from scenario_upscale_mcp.config import Settings
from scenario_upscale_mcp.sandbox.app import Sandbox
from scenario_upscale_tools.arguments import CALL_OPTIONS
from tests.fake_clock import FakeClock

API_URL = "https://api.test/v1"
KEY = "kEy-7Hq2Vx9Lm4"
SECRET = "sEcReT-Zq9Wp3Rt8Yu6"
TEXTURE = "model_sc-upscale-flux-texture"

Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]

# Texture Upscale as the JSON API describes it (SCENARIO_API.md §1): a faithful copy of the documented
# table, in the documented shape (types `file`, `file_array`, ...; `required` as a rule object).
TEXTURE_INPUTS: list[dict[str, Any]] = [
    {"name": "image", "type": "file", "kind": "image", "required": {"always": True}},
    {"name": "upscaleFactor", "type": "number", "default": 2, "min": 2, "max": 8},
    {
        "name": "preset",
        "type": "string",
        "default": "balanced",
        "allowedValues": ["precise", "balanced", "creative"],
    },
    {"name": "loras", "type": "model_array", "default": []},
    {"name": "lorasScale", "type": "number_array", "default": []},
    {"name": "prompt", "type": "string", "default": ""},
    {"name": "imagePrompt", "type": "file_array", "kind": "image", "maxLength": 4},
    {"name": "imagePromptStrength", "type": "number", "default": 0.6, "min": 0, "max": 1},
    {"name": "controlnetConditioningScale", "type": "number", "default": 0.4, "min": 0, "max": 1},
    {"name": "strength", "type": "number", "default": 0.4, "min": 0, "max": 1},
    {"name": "numInferenceSteps", "type": "number", "default": 28, "min": 1, "max": 50, "step": 1},
    {"name": "detailsEnable", "type": "boolean", "default": True},
    {
        "name": "baseModel",
        "type": "string",
        "default": "FLUX.1-dev",
        "allowedValues": ["FLUX.1-dev", "FLUX.1-Krea-dev"],
    },
    {"name": "seed", "type": "number", "min": 0, "max": 2147483647},
]


def texture_inputs() -> list[dict[str, Any]]:
    return copy.deepcopy(TEXTURE_INPUTS)


def entry(inputs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(item for item in inputs if item["name"] == name)


def drift(inputs: list[dict[str, Any]]) -> list[Difference]:
    return compare_inputs(inputs, load_tool_schema("upscale_texture"))


# --- the drift comparison ---------------------------------------------------------------------------


def test_a_faithful_copy_of_the_live_schema_shows_no_drift() -> None:
    assert drift(texture_inputs()) == []


def test_a_changed_max_is_reported_with_both_values() -> None:
    inputs = texture_inputs()
    entry(inputs, "upscaleFactor")["max"] = 16

    assert drift(inputs) == [Difference("upscaleFactor", "max", api=16, tool=8)]
    assert str(drift(inputs)[0]) == "upscaleFactor: max is 16 in the API, 8 in the tool"


def test_a_new_allowed_value_and_a_withdrawn_one_are_each_reported() -> None:
    inputs = texture_inputs()
    entry(inputs, "baseModel")["allowedValues"] = ["FLUX.1-dev", "FLUX.2-dev"]

    assert drift(inputs) == [
        Difference("baseModel", "allowed value", api="FLUX.2-dev"),
        Difference("baseModel", "allowed value", tool="FLUX.1-Krea-dev"),
    ]
    assert [str(difference) for difference in drift(inputs)] == [
        'baseModel: the API allows "FLUX.2-dev"; the tool does not',
        'baseModel: the tool allows "FLUX.1-Krea-dev"; the API does not',
    ]


def test_an_input_the_api_no_longer_lists_is_reported() -> None:
    inputs = [item for item in texture_inputs() if item["name"] != "detailsEnable"]

    assert drift(inputs) == [Difference("detailsEnable", "input", tool="boolean")]
    assert "the API no longer lists it" in str(drift(inputs)[0])


def test_an_input_only_the_api_has_is_reported_with_its_type() -> None:
    inputs = [*texture_inputs(), {"name": "negativePrompt", "type": "string", "default": ""}]

    assert drift(inputs) == [Difference("negativePrompt", "input", api="string")]
    assert str(drift(inputs)[0]) == "negativePrompt: the API has this input (string); the tool lacks it"


def test_defaults_item_counts_types_and_required_are_compared() -> None:
    inputs = texture_inputs()
    entry(inputs, "strength")["default"] = 0.5
    entry(inputs, "imagePrompt")["maxLength"] = 8
    entry(inputs, "lorasScale")["type"] = "string_array"
    entry(inputs, "prompt")["required"] = {"always": True}
    entry(inputs, "detailsEnable")["default"] = 1  # a number is not the boolean true
    entry(inputs, "seed")["max"] = 4294967295  # the tool's bound sits inside `anyOf` (a nullable input)

    assert drift(inputs) == [
        Difference("lorasScale", "type", api="string_array", tool="number_array"),
        Difference("prompt", "required", api=True, tool=False),
        Difference("imagePrompt", "max items", api=8, tool=4),
        Difference("strength", "default", api=0.5, tool=0.4),
        Difference("detailsEnable", "default", api=1, tool=True),
        Difference("seed", "max", api=4294967295, tool=2147483647),
    ]


def test_a_bound_only_one_side_sets_is_drift_and_reads_as_not_set() -> None:
    inputs = texture_inputs()
    del entry(inputs, "strength")["max"]

    [difference] = drift(inputs)
    assert str(difference) == "strength: max is not set in the API, 1 in the tool"


def test_the_docs_prose_spellings_and_conditional_requirements_are_not_drift() -> None:
    inputs = texture_inputs()
    entry(inputs, "image").update(type="assetId", required=True)
    entry(inputs, "imagePrompt")["type"] = "assetId[]"
    entry(inputs, "loras")["type"] = "model[]"
    entry(inputs, "lorasScale").update(type="number[]", required={"ifDefined": "loras"})

    assert drift(inputs) == []


def test_incomplete_live_entries_are_read_as_unset_not_refused() -> None:
    inputs: list[Any] = [*texture_inputs(), {"type": "string"}, "not an input"]
    entry(inputs, "prompt").pop("type")

    assert drift(inputs) == [Difference("prompt", "type", api="unknown", tool="string")]


@pytest.mark.parametrize("tool", [model.tool for model in CHECKED_MODELS])
def test_the_tool_only_options_are_in_both_tool_schemas(tool: str) -> None:
    """They are left out of the comparison, so each must really be one of the tools' options."""
    assert set(load_tool_schema(tool)["properties"]) >= CALL_OPTIONS


# --- the whole command ------------------------------------------------------------------------------


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCENARIO_SDK_API_KEY", KEY)
    monkeypatch.setenv("SCENARIO_SDK_API_SECRET", SECRET)
    monkeypatch.setenv("SCENARIO_BASE_URL", API_URL)


def run_command(handler: Handler) -> tuple[int, str, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    async def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return await handler(request)

    out = io.StringIO()
    code = check_command(out=out, transport=httpx.MockTransport(record), clock=FakeClock())
    return code, out.getvalue(), seen


def simulator_answering(sandbox: Sandbox) -> Handler:
    """The simulator, reached in-process: it stands for Scenario's API at API_URL."""
    inner = httpx.ASGITransport(app=sandbox.app)

    async def answer(request: httpx.Request) -> httpx.Response:
        return await inner.handle_async_request(request)

    return answer


def line(output: str, start: str) -> str:
    return next(text for text in output.splitlines() if text.startswith(start))


def test_check_sandbox_passes_every_check_and_quotes_a_price(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["check", "--sandbox"])

    output = capsys.readouterr().out
    assert exited.value.code == 0, output
    checks = output.splitlines()[1:-1]
    assert len(checks) == 6 and all(text.startswith("✓ ") for text in checks), output
    price = line(output, "✓ Price")
    assert "3 creative units with model_upscale-v3" in price
    assert "5 creative units with model_sc-upscale-flux-texture" in price
    assert "dry run" in price and "uploaded" in price
    assert output.splitlines()[-1] == "All 6 checks passed."


@pytest.mark.usefixtures("environment")
def test_against_the_api_it_reads_both_models_uploads_once_and_prices_by_dry_run() -> None:
    sandbox = Sandbox()
    code, output, seen = run_command(simulator_answering(sandbox))

    assert code == 0, output
    assert [(request.method, request.url.path) for request in seen] == [
        ("GET", "/v1/models/model_upscale-v3"),
        ("GET", f"/v1/models/{TEXTURE}"),
        ("POST", "/v1/assets"),
        ("POST", "/v1/generate/custom/model_upscale-v3"),
        ("POST", f"/v1/generate/custom/{TEXTURE}"),
    ]
    assert all(request.url.params["dryRun"] == "true" for request in seen[3:])
    assert not sandbox.jobs  # a dry run starts no job
    assert line(output, "Checking").startswith(f"Checking Scenario's API at {API_URL}")


@pytest.mark.usefixtures("environment")
def test_refused_credentials_fail_the_check_with_what_to_check() -> None:
    async def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"reason": "Invalid API key", "name": "UnauthorizedError"})

    code, output, seen = run_command(refuse)

    assert code == 1
    credentials = line(output, "✗ Credentials")
    assert "refused by the API (401: Invalid API key)" in credentials
    assert "SCENARIO_SDK_API_KEY" in credentials and "SCENARIO_SDK_API_SECRET" in credentials
    assert len(seen) == 1  # nothing more is asked once the credentials are refused
    assert "✓" not in output


@pytest.mark.usefixtures("environment")
@pytest.mark.parametrize("refused", ["GET", "POST"], ids=["describing the model", "its dry run"])
def test_a_model_the_plan_lacks_names_the_plan_it_needs(refused: str) -> None:
    simulator = simulator_answering(Sandbox())

    async def restrict_texture(request: httpx.Request) -> httpx.Response:
        if request.method == refused and request.url.path.endswith(f"/{TEXTURE}"):
            return httpx.Response(
                403,
                json={
                    "reason": "Model access restricted",
                    "name": "ModelAccessRestrictedError",
                    "details": {"requiredPlan": "Pro"},
                },
            )
        return await simulator(request)

    code, output, _ = run_command(restrict_texture)

    assert code == 1
    texture = line(output, f"✗ {TEXTURE} (")
    assert "the Pro plan" in texture and "upscale_v3" in texture
    assert line(output, "✓ Credentials")
    assert line(output, "✓ model_upscale-v3 (")
    assert "creative units with model_upscale-v3" in line(output, "✓ Price")


def test_missing_credentials_fail_without_a_single_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCENARIO_BASE_URL", API_URL)

    async def unexpected(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"no request may be made without credentials: {request.url}")

    code, output, seen = run_command(unexpected)

    assert code == 1 and seen == []
    credentials = line(output, "✗ Credentials")
    assert "SCENARIO_SDK_API_KEY and SCENARIO_SDK_API_SECRET are not set" in credentials
    assert "check --sandbox" in credentials
    assert "✓" not in output


def test_a_missing_secret_alone_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCENARIO_SDK_API_KEY", KEY)
    code, output, seen = run_command(simulator_answering(Sandbox()))

    assert code == 1 and seen == []
    assert "✗ Credentials: SCENARIO_SDK_API_SECRET is not set" in output
    assert KEY not in output


@pytest.mark.usefixtures("environment")
def test_the_credentials_never_appear_even_when_the_api_echoes_them() -> None:
    async def echo(request: httpx.Request) -> httpx.Response:
        # A careless error text that repeats what it was sent: it must not reach the screen.
        header = request.headers.get("authorization", "")
        return httpx.Response(401, json={"reason": f"bad {KEY}:{SECRET} ({header})"})

    code, output, _ = run_command(echo)

    assert code == 1
    assert "[hidden]" in output
    for value in (KEY, SECRET):
        assert value not in output
        assert value[: len(value) // 2] not in output and value[len(value) // 2 :] not in output


@pytest.mark.usefixtures("environment")
def test_the_credentials_never_appear_in_a_passing_report() -> None:
    code, output, _ = run_command(simulator_answering(Sandbox()))

    assert code == 0, output
    for value in (KEY, SECRET):
        assert value[: len(value) // 2] not in output and value[len(value) // 2 :] not in output


def test_check_sandbox_never_sends_the_users_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCENARIO_SDK_API_KEY", KEY)
    monkeypatch.setenv("SCENARIO_SDK_API_SECRET", SECRET)
    seen: list[httpx.Request] = []
    simulator = simulator_answering(Sandbox())

    async def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return await simulator(request)

    out = io.StringIO()
    code = check_command(sandbox=True, out=out, transport=httpx.MockTransport(record))

    assert code == 0, out.getvalue()
    assert seen and all(
        request.headers["authorization"] == httpx.BasicAuth("sandbox", "sandbox")._auth_header
        for request in seen
    )


@pytest.mark.anyio
async def test_drift_reaches_the_report_line_by_line() -> None:
    sandbox = Sandbox()
    simulator = simulator_answering(sandbox)

    async def drifted(request: httpx.Request) -> httpx.Response:
        response = await simulator(request)
        if request.method == "GET" and request.url.path.endswith(f"/{TEXTURE}"):
            body = json.loads(await response.aread())
            entry(body["model"]["inputs"], "upscaleFactor")["max"] = 16
            return httpx.Response(200, json=body)
        return response

    settings = Settings(api_key=KEY, api_secret=SECRET, base_url=API_URL)
    lines = await run_checks(settings, transport=httpx.MockTransport(drifted))
    report = render(lines, hidden=(KEY, SECRET))

    assert f"✗ {TEXTURE} inputs: the live schema and the upscale_texture tool differ (1 difference;" in report
    assert "    · upscaleFactor: max is 16 in the API, 8 in the tool\n" in report
    assert "✓ model_upscale-v3 inputs: the live schema matches the upscale_v3 tool" in report
    assert report.endswith("1 of 6 checks failed.\n")


@pytest.mark.usefixtures("environment")
def test_an_unreachable_api_says_so_and_stops() -> None:
    async def offline(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    code, output, seen = run_command(offline)

    assert code == 1
    credentials = line(output, "✗ Credentials: not checked, no answer from the API")
    assert "SCENARIO_BASE_URL" in credentials
    assert line(output, "✗ model_upscale-v3 (Scenario Upscale V3): not checked until the API answers")
    assert {request.url.path for request in seen} == {"/v1/models/model_upscale-v3"}


def test_a_terminal_without_check_marks_gets_words() -> None:
    out = io.TextIOWrapper(io.BytesIO(), encoding="cp1252")
    check_command(out=out)  # no credentials: fails at once, without a request
    out.seek(0)

    assert out.read().splitlines()[1].startswith("FAIL Credentials:")
