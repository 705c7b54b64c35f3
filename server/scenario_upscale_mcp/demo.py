"""`scenario-upscale-mcp demo`: see the server work end to end, with no account.

It starts the API simulator on loopback, spawns the server over stdio exactly as a host app would,
upscales the sample images (or the given ones) with both models through MCP tool calls, draws
progress bars from the MCP progress notifications, and prints a table of what was saved where
(the tables and the failures are printed by `demo_report.py`).

With `--real` it uses Scenario's API and the credentials in the environment instead: it first asks
the server for the cost of every upscale (one `upscale_batch` dry run per model: free, each image's
cost and the total), shows it, and submits only after the user confirms (or passed `--yes`). Without
`--real` the credentials are never passed on.

The upscales themselves are one model-tool call per image and model, not `upscale_batch`: a batch
reports one progress for all its jobs, so the per-upscale progress bars would go, and one unreadable
image refuses its whole batch, where the demo shows every other upscale through to its result.

This module is a client, not the server, so it prints to stdout (results) and stderr (errors).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters
from mcp.types import CallToolResult
from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.prompt import Confirm
from rich.text import Text

from scenario_upscale_mcp.api.statuses import SUCCESS, TERMINAL_STATUSES
from scenario_upscale_mcp.demo_report import print_quotes, print_refused_quotes, report_results

DEMO_CALLS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("upscale_v3", {"upscaleFactor": 2, "style": "standard"}),
    ("upscale_texture", {"upscaleFactor": 2}),
)
# The sample images ship inside the package (wheels install unzipped, so this is a real folder).
SAMPLES = Path(str(resources.files("scenario_upscale_mcp") / "samples"))
CREDENTIAL_VARIABLES = (
    "SCENARIO_SDK_API_KEY",
    "SCENARIO_SDK_API_SECRET",
    "SCENARIO_API_KEY",
    "SCENARIO_API_SECRET",
)
# How long one tool call may wait for its job (the server caps it with SCENARIO_MAX_WAIT_SECONDS);
# a job still running then is waited for with wait_for_jobs, up to JOB_DEADLINE_SECONDS in all.
CALL_WAIT_SECONDS = 120.0
JOB_DEADLINE_SECONDS = 1800.0


@dataclass(frozen=True)
class DemoOptions:
    images: list[str] = field(default_factory=list)
    output_dir: str | None = None
    real: bool = False
    yes: bool = False
    concurrency: int = 4
    job_seconds: float = 4.0  # how long a simulated job takes


class DemoError(Exception):
    """A failure explained in one message; the demo prints it and exits with `exit_code`."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Upscale:
    """One tool call of the demo: an image through one model."""

    image: Path
    tool: str
    arguments: Mapping[str, Any]

    @property
    def label(self) -> str:
        return f"{self.image.name} · {self.tool}"


@dataclass
class Outcome:
    upscale: Upscale
    job: dict[str, Any] | None = None
    error: str | None = None


@dataclass
class Quote:
    """One model's dry-run batch: each image's cost, or why the server refused the batch."""

    tool: str
    costs: dict[Path, float | None] = field(default_factory=dict)  # creative units; None: not quoted
    error: str | None = None


def run_demo(options: DemoOptions, out: Console | None = None, err: Console | None = None) -> int:
    """Return the process exit code: 0 when every upscale succeeded."""
    out = out or Console(highlight=False)
    err = err or Console(stderr=True, highlight=False)
    try:
        return anyio.run(_demo, options, out, err)
    except DemoError as exc:
        err.print(f"[bold red]demo failed:[/] {exc}", soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("demo: interrupted (a job already submitted keeps running).")
        return 130


async def _demo(options: DemoOptions, out: Console, err: Console) -> int:
    if options.concurrency < 1:
        raise DemoError("--concurrency must be at least 1", exit_code=2)
    if options.yes and not options.real:
        raise DemoError("--yes only makes sense with --real", exit_code=2)
    images = _images(options.images)
    folder = _output_folder(options.output_dir)
    upscales = [Upscale(image, tool, arguments) for image in images for tool, arguments in DEMO_CALLS]
    env_credentials = [name for name in CREDENTIAL_VARIABLES if os.environ.get(name)]
    if options.real:
        if not (
            (os.environ.get("SCENARIO_SDK_API_KEY") or os.environ.get("SCENARIO_API_KEY"))
            and (os.environ.get("SCENARIO_SDK_API_SECRET") or os.environ.get("SCENARIO_API_SECRET"))
        ):
            raise DemoError(
                "--real needs your Scenario API key and secret in SCENARIO_SDK_API_KEY and "
                "SCENARIO_SDK_API_SECRET (app.scenario.com → Project Settings → API Keys).",
                exit_code=2,
            )
        return await _real(upscales, folder, options, out, err)

    out.print("[bold]Scenario upscale demo[/] — built-in simulator: no account, nothing billed.")
    if env_credentials:
        out.print(
            f"[yellow]Your {env_credentials[0]} is set but not used:[/] pass --real to upscale with "
            "Scenario's API instead (billed, after showing the cost)."
        )
    from scenario_upscale_mcp.sandbox.app import Sandbox
    from scenario_upscale_mcp.sandbox.serving import serve_in_thread

    with (
        serve_in_thread(Sandbox(job_seconds=options.job_seconds)) as base_url,
        tempfile.TemporaryDirectory(prefix="scenario-demo-state-") as state_dir,
    ):
        # Only these variables reach the server (the SDK adds PATH, HOME and the like, never the
        # rest of this environment): the simulator, never the credentials.
        env = {
            "SCENARIO_SANDBOX": "1",
            "SCENARIO_BASE_URL": base_url,
            "SCENARIO_OUTPUT_DIR": str(folder),
            "SCENARIO_ALLOWED_DIRS": _folders_of(images),
            "SCENARIO_STATE_DIR": state_dir,  # the simulator's made-up jobs stay out of your job ledger
            "SCENARIO_LOG_LEVEL": "WARNING",
            "SCENARIO_POLL_INITIAL_SECONDS": "0.5",
            "SCENARIO_POLL_MAX_SECONDS": "1",
        }
        out.print(f"Simulator at {base_url}; the server runs over stdio, as a host app starts it.\n")
        async with _connected(env) as client:
            outcomes = await _upscale_all(client, upscales, options.concurrency, out)
    return report_results(outcomes, folder, out, err, billed=False)


async def _real(
    upscales: list[Upscale], folder: Path, options: DemoOptions, out: Console, err: Console
) -> int:
    out.print("[bold]Scenario upscale demo[/] — against [bold]Scenario's API[/], with your credentials.")
    env = {name: value for name, value in os.environ.items() if name.startswith("SCENARIO_")}
    env.pop("SCENARIO_SANDBOX", None)
    env |= {
        "SCENARIO_OUTPUT_DIR": str(folder),
        "SCENARIO_ALLOWED_DIRS": _folders_of([u.image for u in upscales]),
    }
    env.setdefault("SCENARIO_LOG_LEVEL", "WARNING")
    # A DemoError is raised only outside the client's context: inside it, anyio would wrap it in an
    # exception group on the way out.
    refusal: DemoError | None = None
    outcomes: list[Outcome] = []
    async with _connected(env) as client:
        out.print("Asking for the cost of each upscale first (dry run: free, nothing is submitted)…")
        images = list(dict.fromkeys(upscale.image for upscale in upscales))
        quotes = [await _quote(client, images, tool, arguments) for tool, arguments in DEMO_CALLS]
        total = print_quotes(quotes, out)
        if any(quote.error is not None for quote in quotes):
            print_refused_quotes(quotes, err)
            refusal = DemoError("nothing was submitted: fix the refused upscales first.")
        else:
            out.print(f"Total: [bold]{total:g} creative units[/], to be billed to your Scenario account.")
            refusal = await _confirm(len(upscales), total, options.yes)
        if refusal is None:
            outcomes = await _upscale_all(client, _approved(upscales, quotes), options.concurrency, out)
    if refusal is not None:
        raise refusal
    return report_results(outcomes, folder, out, err, billed=True)


async def _confirm(jobs: int, total: float, yes: bool) -> DemoError | None:
    """None to go ahead; otherwise why nothing is submitted. Never bills without a yes."""
    if yes:
        return None
    if not sys.stdin.isatty():
        return DemoError("nothing was submitted: confirm the cost by running again with --yes.", exit_code=2)
    question = f"Submit {jobs} upscale jobs for {total:g} creative units?"
    if await anyio.to_thread.run_sync(lambda: Confirm.ask(question, default=False)):
        return None
    return DemoError("cancelled: nothing was submitted or billed.")


def _approved(upscales: list[Upscale], quotes: list[Quote]) -> list[Upscale]:
    """Each upscale with the cost the user just approved as its `confirmCost`: a server set to ask above
    SCENARIO_CONFIRM_ABOVE_CREDITS takes that from a client that cannot ask (the demo asked instead)."""
    costs = {(quote.tool, image): cost for quote in quotes for image, cost in quote.costs.items()}
    return [
        replace(upscale, arguments={**upscale.arguments, "confirmCost": cost})
        if (cost := costs.get((upscale.tool, upscale.image))) is not None
        else upscale
        for upscale in upscales
    ]


def _images(given: list[str]) -> list[Path]:
    paths = [Path(image).expanduser().resolve() for image in given] or sorted(SAMPLES.glob("*.png"))
    if not paths:
        raise DemoError(
            f"no sample images in {SAMPLES}. Pass image paths: scenario-upscale-mcp demo IMAGE...",
            exit_code=2,
        )
    for path in paths:
        if not path.exists():
            raise DemoError(f"{path} does not exist.", exit_code=2)
        if not path.is_file():
            raise DemoError(f"{path} is not a file: pass image files.", exit_code=2)
    return list(dict.fromkeys(paths))


def _output_folder(given: str | None) -> Path:
    if given:
        return Path(given).expanduser().resolve()
    from pydantic import ValidationError

    from scenario_upscale_mcp.config import Settings

    try:
        return Settings().output_dir / "demo"
    except ValidationError as exc:
        raise DemoError(f"a SCENARIO_* setting is invalid: {exc}", exit_code=2) from None


def _folders_of(images: list[Path]) -> str:
    return os.pathsep.join(sorted({str(image.parent) for image in images}))


class _connected:
    """`async with _connected(env) as client`: the server spawned over stdio; its failure to start explained."""

    def __init__(self, env: dict[str, str]) -> None:
        params = StdioServerParameters(command=sys.executable, args=["-m", "scenario_upscale_mcp"], env=env)
        self._client = Client(params, read_timeout_seconds=60)

    async def __aenter__(self) -> Client:
        try:
            return await self._client.__aenter__()
        except Exception as exc:
            raise DemoError(f"the server did not start ({exc}); its messages are above.") from exc

    async def __aexit__(self, *exc_info: Any) -> None:
        await self._client.__aexit__(*exc_info)


async def _quote(client: Client, images: list[Path], tool: str, arguments: Mapping[str, Any]) -> Quote:
    """Every image's cost with one model: a dry-run `upscale_batch` (free; the server prices the images
    a few at a time and refuses the whole batch, naming the image, if one cannot be upscaled)."""
    batch = {"model": tool, "images": [str(image) for image in images], "parameters": dict(arguments)}
    result = await client.call_tool("upscale_batch", batch | {"dryRun": True}, read_timeout_seconds=300)
    if result.is_error or not result.structured_content:
        return Quote(tool, error=_text(result))
    answer = result.structured_content["images"]
    return Quote(tool, {Path(image["image"]): image["creativeUnitsCost"] for image in answer})


async def _upscale_all(
    client: Client, upscales: list[Upscale], concurrency: int, out: Console
) -> list[Outcome]:
    """Every upscale, at most `concurrency` at once, each with a progress bar fed by the server.

    One call per upscale, not upscale_batch: a batch's progress covers all its jobs at once, and one
    unreadable image would refuse the rest of its batch (see the module's docstring)."""
    outcomes = [Outcome(upscale) for upscale in upscales]
    limiter = anyio.CapacityLimiter(concurrency)
    width = max(len(upscale.label) for upscale in upscales)
    columns = (
        _MarkColumn(finished_text="[green]✓[/]"),
        TextColumn(f"{{task.description:<{width}}}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=out) as progress:
        tasks = {id(o): progress.add_task(o.upscale.label, total=1.0, status="waiting") for o in outcomes}

        async def run(outcome: Outcome) -> None:
            task = tasks[id(outcome)]
            async with limiter:
                progress.update(task, status="uploading and submitting")
                try:
                    await _upscale(client, outcome, progress, task)
                except Exception as exc:  # one broken call must not hide the others' results
                    outcome.error = f"the call failed: {exc}"
            if outcome.error is None:
                progress.update(task, completed=1.0, status="[green]saved[/]")
            else:
                progress.update(task, status="[red]failed[/]", failed=True)

        async with anyio.create_task_group() as group:
            for outcome in outcomes:
                group.start_soon(run, outcome)
    return outcomes


class _MarkColumn(SpinnerColumn):
    """A spinner while the upscale runs, then ✓, or ✗ when it failed."""

    def render(self, task: Task) -> RenderableType:
        if task.fields.get("failed"):
            return Text("✗", style="red")
        return super().render(task)


async def _upscale(client: Client, outcome: Outcome, bars: Progress, task: TaskID) -> None:
    async def show(progress: float, total: float | None, message: str | None) -> None:
        # The bar shows the percentage; "in-progress (40%)" → "in-progress".
        status = re.sub(r"\s*\(\d+%\)$", "", message or "")
        bars.update(task, completed=progress / (total or 1.0), status=status)

    upscale = outcome.upscale
    arguments = {"image": str(upscale.image), **upscale.arguments, "wait": CALL_WAIT_SECONDS}
    result = await client.call_tool(
        upscale.tool, arguments, read_timeout_seconds=CALL_WAIT_SECONDS + 60, progress_callback=show
    )
    _settle(outcome, result)
    deadline = anyio.current_time() + JOB_DEADLINE_SECONDS
    # A job that outlasts the call keeps running at Scenario: wait for it, as an assistant would.
    while outcome.job is not None and outcome.job.get("status") not in TERMINAL_STATUSES:
        if anyio.current_time() > deadline:
            outcome.error = f"job {outcome.job.get('jobId')} is still running; check it later with get_job"
            return
        result = await client.call_tool(
            "wait_for_jobs",
            {"jobIds": [outcome.job["jobId"]], "timeout": CALL_WAIT_SECONDS},
            read_timeout_seconds=CALL_WAIT_SECONDS + 60,
            progress_callback=show,
        )
        if result.is_error or not result.structured_content:
            outcome.error = _text(result)
            return
        outcome.job = result.structured_content["jobs"][0]
    if outcome.job is not None and outcome.job.get("status") != SUCCESS:
        job = outcome.job
        outcome.error = f"job {job.get('jobId')} ended {job.get('status')}: {job.get('error') or ''} {job.get('hint') or ''}".strip()


def _settle(outcome: Outcome, result: CallToolResult) -> None:
    if result.is_error or not result.structured_content:
        outcome.error = _text(result)
    else:
        outcome.job = result.structured_content


def _text(result: CallToolResult) -> str:
    text = " ".join(getattr(block, "text", "") for block in result.content).strip()
    # "Error executing tool upscale_v3: image: …" → "image: …": the label already names the tool.
    prefix, _, rest = text.partition(": ")
    return rest if prefix.startswith("Error executing tool") and rest else text or "no answer"
