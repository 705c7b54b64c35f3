"""Download of a large asset: throughput of download_assets vs curl on the same URL, and server memory.

The simulator serves a ~256 MB PNG on loopback (past 256 MB, see `write_large_png`). curl fetches
its signed URL; then the server (spawned over stdio, as a host would) saves the same asset with
download_assets (preview off: the preview is measured on its own by tests.benchmarks.preview).
Alternating runs, after one small warm-up download that is not counted: the server's first call
pays one-time costs (importing the SDK and Pillow, opening the ledger) that are the cold-start
benchmark's subject; the warm-up's time and memory are printed apart.

Prints throughput (MB/s) for both, medians and the range over the runs; their ratio (goal ≥ 0.9:
the ratio of the medians, and the range of run-by-run ratios); and the server's peak resident
memory above idle during the call, the highest of the runs (goal < 64 MiB). The goals are for
256 MB and for 1 GB (`--megabytes 1024`).

    python -m tests.benchmarks.download [--megabytes 256] [--runs 3]
"""

from __future__ import annotations

import os
import struct
import subprocess
import tempfile
import time
import zlib
from pathlib import Path

import anyio
import httpx

from tests.benchmarks.support import (
    AUTH,
    measured_call,
    mib,
    server_over_stdio,
    simulator_process,
    throughput_figures,
    throughput_main,
    upload_through_parts,
)
from tests.images import write_noise_png

# The largest square noise PNG the simulator takes: Pillow refuses more than ~179 M pixels (its
# decompression-bomb limit), and the simulator checks every upload with Pillow.
NOISE_MEGABYTES = 256
PADDING_CHUNK_BYTES = 64 * 1024 * 1024
IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def write_large_png(path: Path, megabytes: float) -> Path:
    """A PNG of about `megabytes` MB: random pixels, and past `NOISE_MEGABYTES` random bytes in
    private ancillary chunks ("pdNg", which decoders skip) before its end. Returns `path`."""
    write_noise_png(path, min(megabytes, NOISE_MEGABYTES))
    missing = int(megabytes * 1_000_000) - path.stat().st_size
    if missing <= 0:
        return path
    with path.open("r+b") as file:
        file.seek(-len(IEND), os.SEEK_END)
        assert file.read() == IEND
        file.seek(-len(IEND), os.SEEK_END)
        while missing > 12:
            data = os.urandom(min(PADDING_CHUNK_BYTES, missing - 12))
            file.write(struct.pack(">I", len(data)) + b"pdNg" + data)
            file.write(struct.pack(">I", zlib.crc32(b"pdNg" + data)))
            missing -= len(data) + 12
        file.write(IEND)
    return path


def curl_seconds(url: str, target: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["curl", "-sS", "-f", "-o", str(target), url], check=True)
    return time.perf_counter() - started


async def run(megabytes: float, runs: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as scratch, simulator_process() as base_url:
        folder = Path(scratch)
        source = write_large_png(folder / "large.png", megabytes)
        size = source.stat().st_size
        asset_id = await upload_through_parts(base_url, source)
        source.unlink()
        small = await upload_through_parts(base_url, write_noise_png(folder / "small.png", 1))
        ours: list[float] = []
        theirs: list[float] = []
        peaks: list[int] = []
        async with server_over_stdio(base_url, folder) as server, httpx.AsyncClient() as http:
            # Warm-up, not counted: the server's first call pays its one-time costs (importing the SDK
            # and Pillow, opening the ledger), which are the cold-start benchmark's subject, not a
            # download's. Its time and memory are printed apart.
            _, warm_up_seconds, warm_up_peak = await measured_call(
                server, "download_assets", {"assetIds": [small], "outputDir": "warm-up", "preview": False}
            )
            for run_number in range(runs):
                # curl gets a fresh signed URL, as the server does for itself.
                answer = await http.get(f"{base_url}/assets/{asset_id}", auth=AUTH)
                target = folder / f"curl-{run_number}.png"
                theirs.append(
                    await anyio.to_thread.run_sync(curl_seconds, answer.json()["asset"]["url"], target)
                )
                target.unlink()
                content, seconds, peak = await measured_call(
                    server,
                    "download_assets",
                    {"assetIds": [asset_id], "outputDir": f"run{run_number}", "preview": False},
                )
                ours.append(seconds)
                peaks.append(peak)
                saved = Path(content["files"][0]["path"])
                assert saved.stat().st_size == size
                saved.unlink()
    figures = throughput_figures(size, ours, theirs, peaks)
    # The spread: each run's ratio, ours against the curl run just before it (this machine is noisy).
    pairs = [curl / mine for curl, mine in zip(theirs, ours, strict=True)]
    figures |= {
        "warm_up_s": warm_up_seconds,
        "warm_up_peak": warm_up_peak,
        "ratio_min": min(pairs),
        "ratio_max": max(pairs),
        "ours_min_mb_s": size / max(ours) / 1e6,
        "ours_max_mb_s": size / min(ours) / 1e6,
        "curl_min_mb_s": size / max(theirs) / 1e6,
        "curl_max_mb_s": size / min(theirs) / 1e6,
    }
    return figures


def main(argv: list[str] | None = None) -> dict[str, float]:
    figures, runs = throughput_main(run, "download_assets vs curl", 256, argv)
    print(f"download of a {figures['bytes'] / 1e6:.0f} MB asset over loopback, median of {runs}")
    print(f"  download_assets {figures['ours_mb_s']:7.1f} MB/s   curl {figures['curl_mb_s']:7.1f} MB/s")
    print(
        f"  runs: download_assets {figures['ours_min_mb_s']:.0f}–{figures['ours_max_mb_s']:.0f} MB/s, "
        f"curl {figures['curl_min_mb_s']:.0f}–{figures['curl_max_mb_s']:.0f} MB/s"
    )
    print(
        f"  ratio {figures['ratio']:.2f} (goal ≥ 0.9); run by run "
        f"{figures['ratio_min']:.2f}–{figures['ratio_max']:.2f}"
    )
    print(f"  server peak memory above idle: {mib(figures['peak'])} (goal < 64 MiB)")
    print(
        f"  (before the runs, not counted: a 1 MB warm-up download, the server's first call: "
        f"{figures['warm_up_s']:.2f} s, {mib(figures['warm_up_peak'])} above idle)"
    )
    return figures


if __name__ == "__main__":
    main()
