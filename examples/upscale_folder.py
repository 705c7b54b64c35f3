"""Upscale every image in a folder with one model, through the MCP server, as a host app would.

    .venv/bin/python examples/upscale_folder.py FOLDER [--pattern '*.png'] [--recursive]
        [--model upscale_texture] [--factor 2] [--output-dir DIR] [--dry-run] [--sandbox]

It spawns `scenario-upscale-mcp` over stdio with the MCP client and makes one `upscale_batch` call
for the folder: the server lists it (hidden files and non-images are skipped, and said so), submits
every image and answers at once with a batch id. `wait_for_jobs` with that id then waits for the
jobs (called again while they run) and saves the results into one folder, with one progress bar fed
by the server's progress notifications. A batch beyond your plan's parallel-job limit is submitted
in parts: the same `upscale_batch` call, made again, submits the rest and never bills an image
twice. It prints what was saved where, what was skipped and why, and exits non-zero if any image
failed.

Each upscale is a paid job: `--dry-run` prints each image's cost and the total, and submits nothing.
`--sandbox` uses the server's built-in simulator instead of Scenario's API (no account needed,
nothing billed). Without it the server gets your SCENARIO_* settings, credentials included.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters
from mcp.types import CallToolResult
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

WAIT_STEP_SECONDS = 45.0  # one upscale_batch or wait_for_jobs call; called again while work remains
BATCH_CALL_SECONDS = 900.0  # how long one upscale_batch answer may take: it checks and uploads every image
TERMINAL = {"success", "failure", "canceled", "not-found"}


class ToolError(Exception):
    """A tool call answered with an error; the message is the server's."""


async def call(client: Client, tool: str, arguments: dict[str, Any], **options: Any) -> dict[str, Any]:
    """The tool's structured answer; ToolError with the server's message if it refused."""
    result: CallToolResult = await client.call_tool(tool, arguments, **options)
    if result.is_error or not result.structured_content:
        text = " ".join(getattr(block, "text", "") for block in result.content).strip()
        # "Error executing tool upscale_batch: folder: …" → "folder: …"
        prefix, _, rest = text.partition(": ")
        raise ToolError(rest if prefix.startswith("Error executing tool") and rest else text or "no answer")
    answer: dict[str, Any] = result.structured_content
    return answer


async def upscale_folder(
    client: Client, arguments: dict[str, Any], *, seconds: float, console: Console
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Submit the batch, then wait for its jobs until they end or `seconds` pass.

    Returns upscale_batch's last answer and wait_for_jobs' last word on each job, by job id. The
    server saves each job's outputs as it succeeds; the jobs say where.
    """
    deadline = anyio.current_time() + seconds

    def step() -> float:
        return max(0.0, min(WAIT_STEP_SECONDS, deadline - anyio.current_time()))

    columns = (
        TextColumn("{task.description:<10}"),
        BarColumn(),
        TextColumn("{task.fields[message]}"),
        TimeElapsedColumn(),
    )
    jobs: dict[str, dict[str, Any]] = {}
    with Progress(*columns, console=console) as bars:
        bar = bars.add_task("submitting", total=1.0, message="")

        async def show(progress: float, total: float | None, message: str | None) -> None:
            bars.update(bar, completed=progress / (total or 1.0), message=message or "")

        async def submit() -> dict[str, Any]:
            bars.reset(bar, description="submitting", message="")
            return await call(
                client,
                "upscale_batch",
                {**arguments, "wait": step()},
                read_timeout_seconds=BATCH_CALL_SECONDS,
                progress_callback=show,
            )

        batch = await submit()
        while True:
            running = 0
            if any(image["jobId"] for image in batch["images"]):
                bars.reset(bar, description="upscaling", message="")
                waited = await call(
                    client,
                    "wait_for_jobs",
                    {"batchId": batch["batchId"], "timeout": step()},
                    progress_callback=show,
                )
                jobs |= {job["jobId"]: job for job in waited["jobs"]}
                running = waited["running"]
            if batch["notSubmitted"] and step() > 0:  # the plan's parallel-job limit: submit the rest
                batch = await submit()
            elif not running or step() == 0:
                return batch, jobs


def why_not_saved(image: dict[str, Any], job: dict[str, Any] | None) -> str:
    if image["jobId"] is None:
        return f"not submitted: {image.get('notice') or 'the deadline passed'}"
    status = (job or image)["status"]
    if status not in TERMINAL:
        return f"job {image['jobId']} is still {status}: wait_for_jobs with its id saves it later"
    detail = (job or {}).get("error") or ""
    return f"job {image['jobId']} ended {status}" + (f": {detail}" if detail else "")


def print_results(batch: dict[str, Any], jobs: dict[str, dict[str, Any]], console: Console) -> int:
    """What was saved where, what was skipped and why, and what failed; returns how many images failed."""
    table = Table(title="Results", title_justify="left")
    table.add_column("image")
    table.add_column("saved as", overflow="fold")
    table.add_column("dimensions")
    table.add_column("cost", justify="right")
    folders: set[Path] = set()
    failed = 0
    for image in batch["images"]:
        job = jobs.get(image["jobId"] or "")
        if job is None or job["status"] != "success":
            failed += 1
            table.add_row(image["image"], f"[red]failed: {why_not_saved(image, job)}[/]", "", "")
            continue
        cost = job.get("creativeUnitsCost")
        for output in job["outputs"]:
            path = Path(output["path"]) if output.get("path") else None
            if path is not None:
                folders.add(path.parent)
            table.add_row(
                image["image"],
                path.name if path is not None else output["assetId"],
                f"{output.get('width')}×{output.get('height')}",
                "?" if cost is None else f"{cost:g} CU",
            )
    console.print(table)
    print_skipped(batch, console)
    for folder in sorted(folders):
        console.print(f"Saved in: [bold]{folder}[/]")
    if failed:
        console.print(f"[red]{failed} of {len(batch['images'])} images failed.[/]")
    return failed


def print_quote(quote: dict[str, Any], model: str, console: Console) -> None:
    table = Table(title="Cost estimate", title_justify="left")
    table.add_column("image")
    table.add_column("cost", justify="right")
    for image in quote["images"]:
        cost = image["creativeUnitsCost"]
        table.add_row(image["image"], "?" if cost is None else f"{cost:g} CU")
    console.print(table)
    print_skipped(quote, console)
    total = "an unknown number of" if quote["totalCost"] is None else f"{quote['totalCost']:g}"
    images = len(quote["images"])
    console.print(
        f"{images} image{'s' * (images != 1)} with {model}: {total} creative units. Nothing was submitted."
    )


def print_skipped(batch: dict[str, Any], console: Console) -> None:
    for skipped in batch["skipped"]:
        console.print(f"[dim]skipped {skipped['path']}: {skipped['reason']}[/]")


def server_parameters(
    folder: Path, output_dir: Path | None, sandbox: bool, stack: ExitStack
) -> StdioServerParameters:
    """The server as a host app would start it; it sees only the environment given here."""
    env = {name: value for name, value in os.environ.items() if name.startswith("SCENARIO_")}
    allowed = [env["SCENARIO_ALLOWED_DIRS"]] if env.get("SCENARIO_ALLOWED_DIRS") else [str(Path.home())]
    env["SCENARIO_ALLOWED_DIRS"] = os.pathsep.join([*allowed, str(folder)])
    if output_dir is not None:
        env["SCENARIO_OUTPUT_DIR"] = str(output_dir)
    if sandbox:
        for name in (
            "SCENARIO_BASE_URL",
            "SCENARIO_SDK_API_KEY",
            "SCENARIO_SDK_API_SECRET",
            "SCENARIO_API_KEY",
            "SCENARIO_API_SECRET",
        ):
            env.pop(name, None)
        env["SCENARIO_SANDBOX"] = "1"
        # The simulator's jobs stay out of your job ledger.
        env["SCENARIO_STATE_DIR"] = stack.enter_context(tempfile.TemporaryDirectory(prefix="upscale-folder-"))
    env.setdefault("SCENARIO_LOG_LEVEL", "WARNING")
    return StdioServerParameters(command=sys.executable, args=["-m", "scenario_upscale_mcp"], env=env)


def batch_arguments(args: argparse.Namespace, folder: Path, output_dir: Path | None) -> dict[str, Any]:
    """upscale_batch's arguments; the same ones again make the same batch (nothing billed twice)."""
    arguments: dict[str, Any] = {
        "model": args.model,
        "folder": str(folder),
        "pattern": args.pattern,
        "recursive": args.recursive,
        "parameters": {"upscaleFactor": args.factor},
    }
    if output_dir is not None:
        arguments["outputDir"] = str(output_dir)  # else: a folder named for the batch, in the output folder
    return arguments


async def run(
    args: argparse.Namespace, arguments: dict[str, Any], params: StdioServerParameters, console: Console
) -> int:
    async with Client(params, read_timeout_seconds=WAIT_STEP_SECONDS + 60) as client:
        try:
            if args.dry_run:
                quote = await call(
                    client,
                    "upscale_batch",
                    {**arguments, "dryRun": True},
                    read_timeout_seconds=BATCH_CALL_SECONDS,
                )
                print_quote(quote, args.model, console)
                return 0
            batch, jobs = await upscale_folder(client, arguments, seconds=args.timeout, console=console)
        except ToolError as exc:  # the batch refused (nothing submitted), or a wait failed
            console.print(f"[red]{exc}[/]", soft_wrap=True)
            return 1
    return 1 if print_results(batch, jobs, console) else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("folder", help="folder whose images to upscale")
    parser.add_argument("--pattern", default="*", help="file names to upscale, e.g. '*.png' (default: all)")
    parser.add_argument("--recursive", action="store_true", help="include the sub-folders' images too")
    parser.add_argument("--model", choices=("upscale_v3", "upscale_texture"), default="upscale_v3")
    parser.add_argument("--factor", type=float, default=2, help="upscaleFactor (default 2)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the jobs in all")
    parser.add_argument(
        "--output-dir", help="where to save the results (default: a folder named for the batch)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print each image's cost and the total; submit nothing"
    )
    parser.add_argument(
        "--sandbox", action="store_true", help="use the built-in simulator: no account, no bill"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(highlight=False)
    folder = Path(args.folder).expanduser().resolve()
    if not folder.is_dir():
        console.print(f"[red]{folder} is not a folder[/]")
        return 2
    output_dir = Path(args.output_dir).expanduser().resolve() if args.output_dir else None
    arguments = batch_arguments(args, folder, output_dir)
    with ExitStack() as stack:
        params = server_parameters(folder, output_dir, args.sandbox, stack)
        return anyio.run(run, args, arguments, params, console)


if __name__ == "__main__":
    sys.exit(main())
