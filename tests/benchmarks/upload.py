"""Upload of a large image through the multipart flow: upload_image vs curl PUTs of the same parts.

A ~100 MB PNG goes to the simulator (in its own process, on loopback). Ours: the server, spawned over
stdio, runs upload_image: first its checks, before any request (a private copy, every pixel decoded,
the content hash), then the transfer (create the upload, PUT parts 4 at a time, complete, wait for
the import). Reference, same run: the transfer's steps with the same parts, the PUTs done by curl, 4
at a time. Then the call's two parts are timed alone in this process with the server's own code:
the checks (`check_readable`) and the transfer (`upload_in_parts`, beside curl's same steps again).
Every run has fresh processes, and who goes first alternates (see `run`). Prints throughput for both
and their ratio, the split, each run's figures, and the server's peak resident memory above idle.

    python -m tests.benchmarks.upload [--megabytes 100] [--runs 3]
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path

import anyio
import httpx

from scenario_upscale_mcp.api.client import ScenarioClient
from scenario_upscale_mcp.clock import AnyioClock
from scenario_upscale_mcp.config import Settings
from scenario_upscale_mcp.images.reading import check_readable
from scenario_upscale_mcp.images.uploads import PART_CONCURRENCY, part_plan, upload_in_parts
from tests.benchmarks.support import (
    complete_upload,
    create_upload,
    measured_call,
    mib,
    server_over_stdio,
    simulator_process,
    throughput_figures,
    throughput_main,
)
from tests.images import write_noise_png


def curl_parts(path: Path, folder: Path) -> list[Path]:
    """The file's parts as files, ready for curl (made once, not timed)."""
    part_size, count = part_plan(path.stat().st_size)
    pieces = []
    with path.open("rb") as file:
        for number in range(1, count + 1):
            piece = folder / f"part-{number}"
            piece.write_bytes(file.read(part_size))
            pieces.append(piece)
    return pieces


async def curl_upload_seconds(base_url: str, pieces: list[Path]) -> float:
    """The transfer's steps with curl doing the PUTs, 4 at a time: create, PUT every part, complete,
    wait for the import."""
    size = sum(piece.stat().st_size for piece in pieces)
    limiter = anyio.CapacityLimiter(PART_CONCURRENCY)
    async with httpx.AsyncClient(timeout=120) as http:
        started = time.perf_counter()
        upload = await create_upload(http, base_url, "original.png", size, len(pieces))

        async def put(piece: Path, url: str) -> None:
            async with limiter:
                await anyio.run_process(["curl", "-sS", "-f", "-X", "PUT", "-T", str(piece), url])

        async with anyio.create_task_group() as group:
            for piece, part in zip(pieces, upload["parts"], strict=True):
                group.start_soon(put, piece, part["url"])
        await complete_upload(http, base_url, upload["id"])
        return time.perf_counter() - started


async def split_seconds(
    client: ScenarioClient, settings: Settings, path: Path, folder: Path
) -> tuple[float, float]:
    """The two parts of upload_image timed alone, with the server's code: (checks, transfer) seconds."""
    started = time.perf_counter()
    image = await anyio.to_thread.run_sync(check_readable, path, settings, "image", folder)
    checked = time.perf_counter()
    await upload_in_parts(
        client, image, file_name=path.name, clock=AnyioClock(), poll_initial=0.05, poll_max=1.0
    )
    finished = time.perf_counter()
    shutil.rmtree(image.path.parent)  # the private copy, which the server's call removes too
    return checked - started, finished - checked


async def run(megabytes: float, runs: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        original = write_noise_png(folder / "original.png", megabytes)
        size = original.stat().st_size
        pieces = curl_parts(original, folder)
        warm_up = write_noise_png(folder / "warm-up.png", 4)  # small, but still sent in parts
        ours: list[float] = []
        theirs: list[float] = []
        peaks: list[int] = []
        checks: list[float] = []
        transfers: list[float] = []
        theirs_beside_transfers: list[float] = []
        # Each run on fresh processes: a simulator that holds every upload grows by 100 MB each time,
        # and on this virtual machine memory the guest has not touched yet costs ~12 µs a page to
        # fault in, which slowed whatever allocated after the first few runs (curl the least).
        for run_number in range(runs):
            # Who goes first alternates: the first upload into a fresh simulator pays for its memory.
            curl_first = run_number % 2 == 0
            with simulator_process(job_seconds=0.5) as base_url:
                async with server_over_stdio(
                    base_url, folder, SCENARIO_POLL_INITIAL_SECONDS="0.05"
                ) as server:
                    # The first call's imports (the SDK, libvips) are the cold-start rows' business.
                    await measured_call(server, "upload_image", {"image": str(warm_up)})
                    if curl_first:
                        theirs.append(await curl_upload_seconds(base_url, pieces))
                    # Different content each run, or it would be reused: one more byte after the PNG's
                    # end (appended in place: a 100 MB copy each run would keep the disk writing back).
                    with original.open("ab") as file:
                        file.write(bytes([run_number]))
                    content, seconds, peak = await measured_call(
                        server, "upload_image", {"image": str(original)}
                    )
                    assert not content["reused"]
                    if not curl_first:
                        theirs.append(await curl_upload_seconds(base_url, pieces))
                ours.append(seconds)
                peaks.append(peak)
            # Then the call's two parts, timed here with the server's code, beside curl's again.
            with simulator_process(job_seconds=0.5) as base_url:
                settings = Settings(
                    allowed_dirs=[folder], base_url=base_url, api_key="sandbox", api_secret="sandbox"
                )
                async with ScenarioClient(settings) as client:
                    await split_seconds(client, settings, warm_up, folder)
                    if curl_first:
                        theirs_beside_transfers.append(await curl_upload_seconds(base_url, pieces))
                    check_seconds, transfer_seconds = await split_seconds(client, settings, original, folder)
                    if not curl_first:
                        theirs_beside_transfers.append(await curl_upload_seconds(base_url, pieces))
                checks.append(check_seconds)
                transfers.append(transfer_seconds)
    figures = throughput_figures(size, ours, theirs, peaks)
    figures["check_s"] = statistics.median(checks)
    figures["transfer_s"] = statistics.median(transfers)
    figures["curl_s"] = statistics.median(theirs_beside_transfers)
    figures["transfer_ratio"] = figures["curl_s"] / figures["transfer_s"]
    print(
        "  each run, upload_image / curl (s): "
        + "; ".join(f"{a:.2f} / {b:.2f}" for a, b in zip(ours, theirs, strict=True))
    )
    print(
        "  each run, checks / transfer / curl (s): "
        + "; ".join(
            f"{a:.2f} / {b:.2f} / {c:.2f}"
            for a, b, c in zip(checks, transfers, theirs_beside_transfers, strict=True)
        )
    )
    return figures


def main(argv: list[str] | None = None) -> dict[str, float]:
    figures, runs = throughput_main(run, "upload_image (multipart) vs curl PUTs", 100, argv)
    part_size, count = part_plan(int(figures["bytes"]))
    print(
        f"multipart upload of a {figures['bytes'] / 1e6:.0f} MB image ({count} parts of {mib(part_size)}), median of {runs}"
    )
    print(f"  upload_image {figures['ours_mb_s']:7.1f} MB/s   curl PUTs {figures['curl_mb_s']:7.1f} MB/s")
    print(f"  ratio {figures['ratio']:.2f}")
    print(
        f"  its checks before any request (copy, pixels, hash): {figures['check_s']:.3f} s; its transfer: "
        f"{figures['transfer_s']:.3f} s against curl's {figures['curl_s']:.3f} s, ratio {figures['transfer_ratio']:.2f}"
    )
    print(f"  server peak memory above idle: {mib(figures['peak'])}")
    return figures


if __name__ == "__main__":
    main()
