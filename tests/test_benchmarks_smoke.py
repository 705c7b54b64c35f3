"""Each benchmark runs once at a tiny size, so the scripts cannot rot. The figures are not judged here."""

from __future__ import annotations

import pytest

from tests.benchmarks import cold_start, wait_for_jobs

pytestmark = pytest.mark.slow


def test_cold_start_benchmark_runs() -> None:
    figures = cold_start.main(["--runs", "1"])
    assert figures["bare_ms"] > 0 and figures["ours_ms"] > 0


def test_wait_for_jobs_benchmark_runs() -> None:
    figures = wait_for_jobs.main(["--jobs", "2", "--job-seconds", "0.5"])
    assert figures["jobs"] == 2 and figures["requests_per_job"] >= 1
