"""Download of a large asset: throughput of download_assets vs curl on the same URL, and server memory.

The simulator serves a ~256 MB PNG on loopback. curl fetches its signed URL; then the server
(spawned over stdio, as a host would) saves the same asset with download_assets (preview off: the
preview is measured on its own by tests.benchmarks.preview). Alternating runs. Prints throughput
(MB/s) for both and their ratio (goal ≥ 0.9), and the server's peak resident memory above idle
during the call (goal < 64 MiB).

    python -m tests.benchmarks.download [--megabytes 256] [--runs 3]
"""

from __future__ import annotations

import subprocess
import tempfile
import time
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


def curl_seconds(url: str, target: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["curl", "-sS", "-f", "-o", str(target), url], check=True)
    return time.perf_counter() - started


async def run(megabytes: float, runs: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as scratch, simulator_process() as base_url:
        folder = Path(scratch)
        source = write_noise_png(folder / "large.png", megabytes)
        size = source.stat().st_size
        asset_id = await upload_through_parts(base_url, source)
        source.unlink()
        ours: list[float] = []
        theirs: list[float] = []
        peaks: list[int] = []
        async with server_over_stdio(base_url, folder) as server, httpx.AsyncClient() as http:
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
    return throughput_figures(size, ours, theirs, peaks)


def main(argv: list[str] | None = None) -> dict[str, float]:
    figures, runs = throughput_main(run, "download_assets vs curl", 256, argv)
    print(f"download of a {figures['bytes'] / 1e6:.0f} MB asset over loopback, median of {runs}")
    print(f"  download_assets {figures['ours_mb_s']:7.1f} MB/s   curl {figures['curl_mb_s']:7.1f} MB/s")
    print(f"  ratio {figures['ratio']:.2f} (goal ≥ 0.9)")
    print(f"  server peak memory above idle: {mib(figures['peak'])} (goal < 64 MiB)")
    return figures


if __name__ == "__main__":
    main()
