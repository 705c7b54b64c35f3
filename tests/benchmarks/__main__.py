"""The benchmark suite: `python -m tests.benchmarks` runs every benchmark and prints a summary table.

Every figure is measured in this one run against its reference (a bare MCP server, curl, Pillow's
own decode), on loopback only. Options scale everything down for a quick look: `--quick`.
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
from datetime import date

from tests.benchmarks import cold_start, download, load, preview, rejection, tool_list, upload, wait_for_jobs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes and few runs (about a minute)")
    args = parser.parse_args(argv)
    quick = args.quick
    logging.disable(logging.INFO)  # figures only: no request logs from the simulator or the clients
    rows: list[tuple[str, str, str, bool]] = []

    def section(title: str) -> None:
        print(f"\n== {title} ==", flush=True)

    section("cold start")
    start = cold_start.main(["--runs", "3" if quick else "15"])
    rows.append(
        (
            "cold start: spawn → tools/list",
            f"{start['ours_ms']:.0f} ms vs {start['bare_ms']:.0f} ms bare: ×{start['ratio']:.3f}",
            "≤ 1.05",
            start["ratio"] <= 1.05,
        )
    )
    rows.append(
        (
            "first call: upscale_v3 dry run, 1 s after tools/list",
            f"{start['first_call_ms']:.0f} ms vs {start['second_call_ms']:.0f} ms for the second",
            "reported",
            True,
        )
    )

    section("tool list")
    listed = tool_list.main([])
    rows.append(
        (
            "tool list: input schemas + descriptions",
            f"{listed['total_bytes']:,} bytes (largest tool {listed['largest_bytes']:,})",
            f"≤ {tool_list.BUDGET_BYTES:,} bytes",
            listed["total_bytes"] <= tool_list.BUDGET_BYTES
            and listed["largest_bytes"] <= tool_list.PER_TOOL_BYTES,
        )
    )

    section("rejecting bad input")
    refused = rejection.main(["--calls", "50" if quick else "300"])
    slowest = max(refused["per_kind"].values()) * 1000
    rows.append(
        (
            "bad input refused",
            f"{slowest:.2f} ms slowest, {refused['requests']} HTTP requests",
            "< 5 ms, 0 requests",
            slowest < 5 and refused["requests"] == 0,
        )
    )

    section("download")
    down = download.main(["--megabytes", "32" if quick else "256", "--runs", "2" if quick else "5"])
    rows.append(
        (
            "download vs curl",
            f"{down['ours_mb_s']:.0f} vs {down['curl_mb_s']:.0f} MB/s: ×{down['ratio']:.2f}",
            "≥ 0.9",
            down["ratio"] >= 0.9,
        )
    )
    rows.append(
        (
            "download: server memory",
            f"{down['peak'] / 2**20:.1f} MiB above idle",
            "< 64 MiB",
            down["peak"] < 64 * 2**20,
        )
    )

    section("upload")
    up = upload.main(["--megabytes", "12" if quick else "100", "--runs", "1" if quick else "3"])
    rows.append(
        (
            "multipart upload vs curl PUTs",
            f"{up['ours_mb_s']:.0f} vs {up['curl_mb_s']:.0f} MB/s: ×{up['ratio']:.2f}",
            "(reported)",
            True,
        )
    )
    rows.append(
        (
            "upload: its transfer vs curl's same steps",
            f"{up['transfer_s']:.3f} vs {up['curl_s']:.3f} s: ×{up['transfer_ratio']:.2f}",
            "≥ ×0.9",
            up["transfer_ratio"] >= 0.9,
        )
    )
    rows.append(("upload: its checks before any request", f"{up['check_s']:.3f} s", "(reported)", True))
    rows.append(("upload: server memory", f"{up['peak'] / 2**20:.1f} MiB above idle", "(reported)", True))

    section("waiting")
    waited = wait_for_jobs.main(["--jobs", "4" if quick else "32", "--job-seconds", "3" if quick else "10"])
    rows.append(
        (
            "wait_for_jobs: requests",
            f"{waited['requests_per_job_per_second']:.2f} per job per second",
            "≤ 1",
            waited["requests_per_job_per_second"] <= 1,
        )
    )
    rows.append(
        (
            "wait_for_jobs: answer delay",
            f"{waited['delay_after_last_finish_s']:.2f} s after the last job",
            "≤ 5 s",
            waited["delay_after_last_finish_s"] <= 5,
        )
    )

    section("preview")
    shown = preview.main(["--edge", "2048" if quick else "8192", "--runs", "1" if quick else "3"])
    rows.append(
        (
            "preview of an 8192² PNG" if not quick else "preview of a 2048² PNG",
            f"{shown['preview_s']:.2f} s; fastest bare decode {shown['decode_s']:.2f} s: ×{shown['ratio']:.2f}",
            f"≤ ×{preview.GOAL_RATIO}",
            shown["ratio"] <= preview.GOAL_RATIO,
        )
    )

    section("load over streamable HTTP")
    loaded = load.main(["--quick"] if quick else [])
    for name, figures in loaded.items():
        sessions = f"{figures['sessions']} sessions, {name}"
        rows.append(
            (
                f"load, {sessions}: overhead",
                f"p99 {figures['worst_p99_ms']:.0f} ms worst kind (p50 {max(figures['p50_ms'].values()):.0f}; "
                f"alone {max(figures['alone_ms'].values()):.0f})",
                f"p99 ≤ {load.GOAL_P99_MS:.0f} ms",
                figures["worst_p99_ms"] <= load.GOAL_P99_MS,
            )
        )
        peak = max(figures["rss_peak_mb"])
        cpu = ", ".join(f"{share:.0%}" for share in figures["cpu"][:-1])
        rows.append(
            (
                f"load, {sessions}: server",
                f"{peak:.0f} MB peak RSS, CPU {cpu}, {figures['calls_per_s']:.1f} calls/s",
                f"≤ {load.GOAL_RSS_MB:.0f} MB",
                peak <= load.GOAL_RSS_MB,
            )
        )
        counts = (figures["billed_twice"], figures["lost"], figures["failed_calls"])
        pairs = f", {figures['pairs_one_job']}/{figures['pairs']} pairs one job" if figures["pairs"] else ""
        rows.append(
            (
                f"load, {sessions}: billed twice / lost / failed",
                f"{' / '.join(map(str, counts))} of {figures['jobs_submitted']} jobs{pairs}",
                "0 / 0 / 0",
                counts == (0, 0, 0) and figures["pairs_one_job"] == figures["pairs"],
            )
        )

    print(
        f"\nSummary — {date.today()}, {platform.system()} {platform.machine()}, Python {platform.python_version()}{' (quick)' if quick else ''}"
    )
    width = max(len(row[0]) for row in rows)
    for name, measured, goal, met in rows:
        print(f"  {name:{width}s}  {measured:45s}  goal {goal:20s} {'ok' if met else 'MISSED'}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
