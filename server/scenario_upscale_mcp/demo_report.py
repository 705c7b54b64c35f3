"""What the demo prints of its upscales: the cost estimate before a billed run, the results table (what
was saved where, its dimensions, size and cost), and the failures, each with its reason."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.filesize import decimal
from rich.table import Table

if TYPE_CHECKING:
    from rich.console import Console

    from scenario_upscale_mcp.demo import Outcome, Quote


def print_quotes(quotes: list[Quote], out: Console) -> float:
    """Show the cost of every upscale, one dry-run batch per model (a refused batch in one row); return
    the total quoted."""
    table = Table(title="Cost estimate", title_justify="left")
    table.add_column("image")
    table.add_column("model")
    table.add_column("cost", justify="right")
    total = 0.0
    for quote in quotes:
        if quote.error is not None:
            table.add_row("all images", quote.tool, "[red]refused[/]")
        for image, cost in quote.costs.items():
            total += cost or 0
            table.add_row(image.name, quote.tool, _cost(cost))
    out.print(table)
    return total


def print_refused_quotes(quotes: list[Quote], err: Console) -> None:
    for quote in quotes:
        if quote.error is not None:  # the server's reason names the image
            err.print(f"[red]✗[/] {quote.tool}: {quote.error}", soft_wrap=True)


def _cost(cost: float | None) -> str:
    return "?" if cost is None else f"{cost:g} CU"


def _dimensions(path: Path) -> str:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return f"{image.width}×{image.height}"
    except (OSError, UnidentifiedImageError):
        return "?"


def report_results(outcomes: list[Outcome], folder: Path, out: Console, err: Console, *, billed: bool) -> int:
    """Print what was saved where, then the failures; return the exit code (0: every upscale succeeded)."""
    table = Table(title="Results", title_justify="left")
    table.add_column("file", overflow="fold")  # never cut: it is what the user looks for
    table.add_column("dimensions")
    table.add_column("size", justify="right")
    table.add_column("cost", justify="right")
    total = 0.0
    for outcome in outcomes:
        if outcome.job is None or outcome.error is not None:
            continue
        cost = outcome.job.get("creativeUnitsCost")
        total += cost or 0
        for output in outcome.job.get("outputs", []):
            table.add_row(
                Path(output["path"]).name if output.get("path") else output["assetId"],
                f"{_dimensions(outcome.upscale.image)} → {output.get('width')}×{output.get('height')}",
                decimal(output["bytes"]) if output.get("bytes") is not None else "?",
                _cost(cost),
            )
    out.print()
    if table.row_count:
        out.print(table)
        where = (
            "billed to your Scenario account" if billed else "made up by the simulator: nothing was billed"
        )
        out.print(f"Total cost: {total:g} creative units ({where}).")
        out.print(f"Saved in: [bold]{folder}[/]")
    failures = [outcome for outcome in outcomes if outcome.error is not None]
    if failures:
        print_failures(failures, err)
        err.print(f"[bold red]{len(failures)} of {len(outcomes)} upscales failed.[/]")
        return 1
    return 0


def print_failures(failures: list[Outcome], err: Console) -> None:
    for outcome in failures:
        err.print(f"[red]✗[/] {outcome.upscale.label}: {outcome.error}", soft_wrap=True)
