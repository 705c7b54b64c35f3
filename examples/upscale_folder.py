"""Upscale every image in a folder with one model, through the MCP server, as a host app would.

    .venv/bin/python examples/upscale_folder.py FOLDER [--model upscale_texture] [--factor 2]
        [--concurrency 4] [--output-dir DIR] [--dry-run] [--sandbox]

It spawns `scenario-upscale-mcp` over stdio with the MCP client, submits every image with
`wait: 0` (the tool answers at once with the job id), at most `--concurrency` submissions in flight,
then waits for all the jobs with `wait_for_jobs` (up to 32 per call, called again until they end),
with one progress bar fed by the server's progress notifications. It prints where each result was
saved, and exits non-zero if any image failed.

Each upscale is a paid job: `--dry-run` prints the total cost and submits nothing. `--sandbox` uses
the server's built-in simulator instead of Scenario's API (no account needed, nothing billed).
Without it the server gets your SCENARIO_* settings, credentials included.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters
from mcp.types import CallToolResult
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".avif", ".tif", ".tiff"}
MAX_JOBS_PER_WAIT = 32  # wait_for_jobs takes at most 32 job ids
WAIT_STEP_SECONDS = 45.0  # one wait_for_jobs call; called again while jobs still run
TERMINAL = {"success", "failure", "canceled", "not-found"}


@dataclass
class Item:
    """One image and what became of it."""

    image: Path
    job_id: str | None = None
    job: dict[str, Any] | None = None
    error: str | None = None


def images_in(folder: Path) -> list[Path]:
    """The folder's image files (not its subfolders), by name; hidden files skipped."""
    return sorted(
        path
        for path in folder.iterdir()
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")
    )


def error_text(result: CallToolResult) -> str:
    text = " ".join(getattr(block, "text", "") for block in result.content).strip()
    prefix, _, rest = text.partition(": ")  # "Error executing tool upscale_v3: image: …" → "image: …"
    return rest if prefix.startswith("Error executing tool") and rest else text or "no answer"


async def submit_all(
    client: Client,
    items: list[Item],
    *,
    model: str,
    arguments: dict[str, Any],
    concurrency: int,
    progress: Progress,
) -> None:
    """Submit every image with `wait: 0`, at most `concurrency` calls in flight (uploads happen here)."""
    limiter = anyio.CapacityLimiter(concurrency)
    task = progress.add_task("submitting", total=len(items))

    async def submit(item: Item) -> None:
        async with limiter:
            result = await client.call_tool(model, {"image": str(item.image), **arguments, "wait": 0})
        if result.is_error or not result.structured_content:
            item.error = error_text(result)
        else:
            item.job = result.structured_content
            item.job_id = item.job.get("jobId")
        progress.advance(task)

    async with anyio.create_task_group() as group:
        for item in items:
            group.start_soon(submit, item)


async def wait_all(client: Client, items: list[Item], *, seconds: float, bars: Progress) -> None:
    """Wait for every submitted job with wait_for_jobs, 32 per call, until all end or `seconds` pass.

    The server saves each job's outputs as it succeeds; its answers say where.
    """
    submitted = [item for item in items if item.job_id is not None]
    task = bars.add_task("upscaling", total=len(submitted))
    by_id = {item.job_id: item for item in submitted if item.job_id is not None}
    done: dict[str, float] = {}  # per job: 0..1, from the progress the server reports
    deadline = anyio.current_time() + seconds

    async def wait_chunk(job_ids: list[str]) -> None:
        running = [job_id for job_id in job_ids if (by_id[job_id].job or {}).get("status") not in TERMINAL]
        while running and anyio.current_time() < deadline:

            async def show(
                progress: float, total: float | None, message: str | None, ids: list[str] = running
            ) -> None:
                # wait_for_jobs reports its jobs' overall progress: share it among them.
                for job_id in ids:
                    done[job_id] = progress / (total or 1.0)
                bars.update(task, completed=sum(done.values()))

            step = min(WAIT_STEP_SECONDS, max(0.0, deadline - anyio.current_time()))
            result = await client.call_tool(
                "wait_for_jobs", {"jobIds": running, "timeout": step}, progress_callback=show
            )
            if result.is_error or not result.structured_content:
                for job_id in running:
                    by_id[job_id].error = error_text(result)
                return
            for job in result.structured_content["jobs"]:
                by_id[job["jobId"]].job = job
                if job["status"] in TERMINAL:
                    done[job["jobId"]] = 1.0
            running = [
                job["jobId"] for job in result.structured_content["jobs"] if job["status"] not in TERMINAL
            ]
            bars.update(task, completed=sum(done.values()))

    async with anyio.create_task_group() as group:
        ids = list(by_id)
        for start in range(0, len(ids), MAX_JOBS_PER_WAIT):
            group.start_soon(wait_chunk, ids[start : start + MAX_JOBS_PER_WAIT])
    for item in submitted:
        status = (item.job or {}).get("status")
        if item.error is None and status != "success":
            detail = (item.job or {}).get("error") or ("still running" if status not in TERMINAL else "")
            item.error = f"job {item.job_id} is {status}" + (f": {detail}" if detail else "")


async def quote_all(
    client: Client, items: list[Item], *, model: str, arguments: dict[str, Any], concurrency: int
) -> float:
    """The total cost in creative units (dry runs: free, nothing submitted)."""
    limiter = anyio.CapacityLimiter(concurrency)
    total = 0.0

    async def quote(item: Item) -> None:
        nonlocal total
        async with limiter:
            result = await client.call_tool(model, {"image": str(item.image), **arguments, "dryRun": True})
        if result.is_error or not result.structured_content:
            item.error = error_text(result)
        else:
            total += result.structured_content.get("creativeUnitsCost") or 0

    async with anyio.create_task_group() as group:
        for item in items:
            group.start_soon(quote, item)
    return total


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


def print_results(items: list[Item], console: Console) -> None:
    table = Table(title="Results", title_justify="left")
    table.add_column("image")
    table.add_column("saved as", overflow="fold")
    table.add_column("dimensions")
    table.add_column("cost", justify="right")
    folders: set[Path] = set()
    for item in items:
        if item.error is not None:
            table.add_row(item.image.name, f"[red]failed: {item.error}[/]", "", "")
            continue
        job = item.job or {}
        cost = job.get("creativeUnitsCost")
        for output in job.get("outputs", []):
            path = Path(output["path"]) if output.get("path") else None
            if path is not None:
                folders.add(path.parent)
            table.add_row(
                item.image.name,
                path.name if path is not None else output["assetId"],
                f"{output.get('width')}×{output.get('height')}",
                "?" if cost is None else f"{cost:g} CU",
            )
    console.print(table)
    for folder in sorted(folders):
        console.print(f"Saved in: [bold]{folder}[/]")


async def upscale_folder(
    client: Client,
    items: list[Item],
    *,
    model: str,
    arguments: dict[str, Any],
    concurrency: int,
    seconds: float,
    console: Console,
) -> None:
    """Submit every image (wait 0), then wait for all the jobs; `items` record what became of each."""
    columns = (TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as bars:
        await submit_all(
            client, items, model=model, arguments=arguments, concurrency=concurrency, progress=bars
        )
        await wait_all(client, items, seconds=seconds, bars=bars)


async def run(
    args: argparse.Namespace, items: list[Item], params: StdioServerParameters, console: Console
) -> int:
    arguments: dict[str, Any] = {"upscaleFactor": args.factor}
    async with Client(params, read_timeout_seconds=WAIT_STEP_SECONDS + 60) as client:
        if args.dry_run:
            total = await quote_all(
                client, items, model=args.model, arguments=arguments, concurrency=args.concurrency
            )
            for item in items:
                if item.error:
                    console.print(f"[red]{item.image.name}: {item.error}[/]")
            console.print(
                f"{len(items)} images with {args.model}: {total:g} creative units. Nothing was submitted."
            )
            return 1 if any(item.error for item in items) else 0
        await upscale_folder(
            client,
            items,
            model=args.model,
            arguments=arguments,
            concurrency=args.concurrency,
            seconds=args.timeout,
            console=console,
        )
    print_results(items, console)
    failed = [item for item in items if item.error is not None]
    if failed:
        console.print(f"[red]{len(failed)} of {len(items)} images failed.[/]")
        return 1
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("folder", help="folder whose images to upscale (not its subfolders)")
    parser.add_argument("--model", choices=("upscale_v3", "upscale_texture"), default="upscale_v3")
    parser.add_argument("--factor", type=float, default=2, help="upscaleFactor (default 2)")
    parser.add_argument(
        "--concurrency", type=int, default=4, help="submissions in flight at once (default 4)"
    )
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the jobs in all")
    parser.add_argument(
        "--output-dir", help="where to save the results (default: the server's output folder)"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the total cost; submit nothing")
    parser.add_argument(
        "--sandbox", action="store_true", help="use the built-in simulator: no account, no bill"
    )
    args = parser.parse_args(argv)
    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(highlight=False)
    folder = Path(args.folder).expanduser().resolve()
    if not folder.is_dir():
        console.print(f"[red]{folder} is not a folder[/]")
        return 2
    items = [Item(image) for image in images_in(folder)]
    if not items:
        console.print(f"[red]no images in {folder}[/] ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return 2
    output_dir = Path(args.output_dir).expanduser().resolve() if args.output_dir else None
    with ExitStack() as stack:
        params = server_parameters(folder, output_dir, args.sandbox, stack)
        return anyio.run(run, args, items, params, console)


if __name__ == "__main__":
    sys.exit(main())
