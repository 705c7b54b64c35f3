"""Upload of a large image through the multipart flow: upload_image vs curl PUTs of the same parts.

A ~100 MB PNG goes to the simulator (in its own process, on loopback). Ours: the server, spawned over
stdio, runs upload_image (hash, create the upload, PUT parts 4 at a time, complete, wait for the
import). Reference, same run: the same steps with the same parts, the PUTs done by curl, 4 at a time.
Prints throughput for both, their ratio, and the server's peak resident memory above idle.

    python -m tests.benchmarks.upload [--megabytes 100] [--runs 3]
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import anyio
import httpx

from scenario_upscale_mcp.images.uploads import PART_CONCURRENCY, part_plan
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


async def curl_upload_seconds(base_url: str, path: Path, folder: Path) -> float:
    size = path.stat().st_size
    part_size, count = part_plan(size)
    pieces = []
    with path.open("rb") as file:  # the parts as files, ready for curl (not timed)
        for number in range(1, count + 1):
            piece = folder / f"part-{number}"
            piece.write_bytes(file.read(part_size))
            pieces.append(piece)
    limiter = anyio.CapacityLimiter(PART_CONCURRENCY)
    async with httpx.AsyncClient(timeout=120) as http:
        started = time.perf_counter()
        upload = await create_upload(http, base_url, path.name, size, count)

        async def put(piece: Path, url: str) -> None:
            async with limiter:
                await anyio.run_process(["curl", "-sS", "-f", "-X", "PUT", "-T", str(piece), url])

        async with anyio.create_task_group() as group:
            for piece, part in zip(pieces, upload["parts"], strict=True):
                group.start_soon(put, piece, part["url"])
        await complete_upload(http, base_url, upload["id"])
        elapsed = time.perf_counter() - started
    for piece in pieces:
        piece.unlink()
    return elapsed


async def run(megabytes: float, runs: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as scratch, simulator_process(job_seconds=0.5) as base_url:
        folder = Path(scratch)
        original = write_noise_png(folder / "original.png", megabytes)
        size = original.stat().st_size
        ours: list[float] = []
        theirs: list[float] = []
        peaks: list[int] = []
        async with server_over_stdio(base_url, folder, SCENARIO_POLL_INITIAL_SECONDS="0.05") as server:
            for run_number in range(runs):
                theirs.append(await curl_upload_seconds(base_url, original, folder))
                # A different file each run (a trailing byte after the PNG's end), or it would be reused.
                copy = folder / f"upload-{run_number}.png"
                copy.write_bytes(original.read_bytes() + bytes([run_number]))
                content, seconds, peak = await measured_call(server, "upload_image", {"image": str(copy)})
                assert not content["reused"]
                ours.append(seconds)
                peaks.append(peak)
                copy.unlink()
    return throughput_figures(size, ours, theirs, peaks)


def main(argv: list[str] | None = None) -> dict[str, float]:
    figures, runs = throughput_main(run, "upload_image (multipart) vs curl PUTs", 100, argv)
    part_size, count = part_plan(int(figures["bytes"]))
    print(
        f"multipart upload of a {figures['bytes'] / 1e6:.0f} MB image ({count} parts of {mib(part_size)}), median of {runs}"
    )
    print(f"  upload_image {figures['ours_mb_s']:7.1f} MB/s   curl PUTs {figures['curl_mb_s']:7.1f} MB/s")
    print(f"  ratio {figures['ratio']:.2f}")
    print(f"  server peak memory above idle: {mib(figures['peak'])}")
    return figures


if __name__ == "__main__":
    main()
