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

import sys
from contextlib import ExitStack
from functools import partial
from typing import TYPE_CHECKING, TextIO

import anyio
from pydantic import SecretStr, ValidationError

from scenario_upscale_mcp.check.probing import CHECKED_MODELS, Findings, ModelProbe, Stopped, ask
from scenario_upscale_mcp.check.report import render, symbols_for, write
from scenario_upscale_mcp.check.verdicts import (
    CheckLine,
    missing_credentials_line,
    not_checked,
    stopped_lines,
    verdict_lines,
)
from scenario_upscale_mcp.config import DEFAULT_BASE_URL, SANDBOX_CREDENTIAL, Settings

if TYPE_CHECKING:
    import httpx

    from scenario_upscale_mcp.clock import Clock


async def run_checks(
    settings: Settings,
    *,
    base_url: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock | None = None,
) -> list[CheckLine]:
    """Ask the API everything the check needs; return the lines to print, in order (retries wait on `clock`)."""
    missing = missing_credentials(settings)
    if missing:
        # Before the client is even made: no request can go out without credentials.
        return [missing_credentials_line(missing), *not_checked("until the credentials are set")]

    from scenario_upscale_mcp.api.client import ScenarioClient

    run = Findings(probes=[ModelProbe(model) for model in CHECKED_MODELS])
    async with ScenarioClient(settings, base_url=base_url, transport=transport, clock=clock) as client:
        try:
            await ask(client, run)
        except Stopped as stop:
            return stopped_lines(stop)
    return verdict_lines(run, client.base_url)


def missing_credentials(settings: Settings) -> tuple[str, ...]:
    """The credential variables still to set (empty when both are)."""
    missing = []
    if not (settings.api_key and settings.api_key.get_secret_value()):
        missing.append("SCENARIO_SDK_API_KEY")
    if not (settings.api_secret and settings.api_secret.get_secret_value()):
        missing.append("SCENARIO_SDK_API_SECRET")
    return tuple(missing)


def check_command(
    *,
    sandbox: bool = False,
    out: TextIO | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock | None = None,
) -> int:
    """Run every check and print the report; return the exit code (0: all passed, 1: not).

    `sandbox` (or SCENARIO_SANDBOX=1, as for the server) checks the built-in simulator, with dummy
    credentials: no account needed; so does a SCENARIO_BASE_URL that is a standalone simulator
    (`api.simulator`). `transport` and `clock` (what retries wait on) are for tests.
    """
    out = out or sys.stdout
    symbols = symbols_for(out)
    try:
        settings = Settings()
    except ValidationError as exc:
        # Only where and what, never the value: a setting's value is the user's, maybe private.
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        write(
            out,
            f"{symbols[1]} Configuration: {problems} — fix: correct or unset those SCENARIO_* variables\n",
        )
        return 1
    hidden = [secret.get_secret_value() for secret in (settings.api_key, settings.api_secret) if secret]

    with ExitStack() as resources:
        base_url = settings.base_url or DEFAULT_BASE_URL
        if sandbox or settings.sandbox or (transport is None and _is_standalone_simulator(settings)):
            if sandbox or settings.base_url is None:
                from scenario_upscale_mcp.sandbox.app import Sandbox
                from scenario_upscale_mcp.sandbox.serving import serve_in_thread

                base_url = resources.enter_context(serve_in_thread(Sandbox()))
            heading = (
                f"Checking the built-in simulator at {base_url} (no account, nothing billed, made-up prices)"
            )
            settings = _simulator_settings(settings, base_url)
        else:
            project = f", project {settings.project_id}" if settings.project_id else ""
            heading = f"Checking Scenario's API at {base_url}{project}"
        write(out, heading + "\n")  # now: the checks take a few seconds
        lines = anyio.run(partial(run_checks, settings, base_url=base_url, transport=transport, clock=clock))
    write(out, render(lines, hidden=hidden, symbols=symbols))
    return 0 if all(line.passed for line in lines) else 1


def _is_standalone_simulator(settings: Settings) -> bool:
    """SCENARIO_BASE_URL is `scenario-upscale-mcp sandbox` (see `api.simulator`): checked with dummy
    credentials, as the server uses it."""
    if settings.base_url is None:
        return False
    from scenario_upscale_mcp.api.simulator import answers_as_simulator

    return answers_as_simulator(settings.base_url) is True


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
