"""wait_for_jobs on many jobs at once: API requests per job, and how late the answer comes.

32 jobs of 10 s each are submitted to the simulator on loopback, then one wait_for_jobs call waits
for all of them through the real server over stdio, with the default poll intervals (1 s growing to
5 s). Prints: job-status requests per job, requests per job per second of waiting (goal ≤ 1), and
the delay from the last job finishing to the answer (goal ≤ one poll interval, 5 s).

    python -m tests.benchmarks.wait_for_jobs [--jobs 32] [--job-seconds 10]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

import anyio

from tests.benchmarks.support import server_over_stdio, simulator
from tests.images import png_bytes


async def run(jobs: int, job_seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder, simulator(job_seconds) as (sandbox, base_url):
        assets = [sandbox.add_asset(png_bytes(32 + index, 32), f"{index}.png") for index in range(jobs)]
        async with server_over_stdio(base_url, Path(folder)) as server:
            job_ids = []
            for asset in assets:
                result = await server.client.call_tool("upscale_v3", {"image": asset, "wait": 0})
                assert result.structured_content is not None, result.content
                job_ids.append(result.structured_content["jobId"])
            polls_before = Counter(path for method, path in sandbox.requests if method == "GET")
            waiting_since = time.time()
            result = await server.client.call_tool(
                "wait_for_jobs", {"jobIds": job_ids, "timeout": job_seconds * 6}
            )
            answered_at = time.time()
    assert result.structured_content is not None and result.structured_content["finished"] == jobs, (
        result.content
    )
    polls = Counter(path for method, path in sandbox.requests if method == "GET") - polls_before
    per_job = [polls[f"/v1/jobs/{job_id}"] for job_id in job_ids]
    # When the simulator's timeline says each job finished (its "success" entry in statusHistory).
    last_finish = max(
        date.timestamp()
        for job_id in job_ids
        for status, date in sandbox.jobs[job_id].history
        if status == "success"
    )
    waited = answered_at - waiting_since
    return {
        "jobs": jobs,
        "requests_per_job": sum(per_job) / jobs,
        "max_requests_per_job": max(per_job),
        "requests_per_job_per_second": sum(per_job) / jobs / waited,
        "waited_s": waited,
        "delay_after_last_finish_s": answered_at - last_finish,
    }


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description="wait_for_jobs: requests per job and answer delay")
    parser.add_argument("--jobs", type=int, default=32)
    parser.add_argument("--job-seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    figures = anyio.run(run, args.jobs, args.job_seconds)
    print(f"wait_for_jobs on {figures['jobs']:.0f} jobs of {args.job_seconds:g} s (poll 1 s → 5 s)")
    print(
        f"  job-status requests per job   {figures['requests_per_job']:.1f} (max {figures['max_requests_per_job']:.0f})"
    )
    print(f"  per job per second of waiting {figures['requests_per_job_per_second']:.2f} (goal ≤ 1)")
    print(f"  waited                        {figures['waited_s']:.1f} s")
    print(
        f"  last job done → answer        {figures['delay_after_last_finish_s']:.2f} s (goal ≤ one poll interval, 5 s)"
    )
    return figures


if __name__ == "__main__":
    main()
