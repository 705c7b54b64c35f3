"""Each benchmark runs once at a tiny size, so the scripts cannot rot. The figures are not judged here."""

from __future__ import annotations

import pytest

from tests.benchmarks import cold_start, download, load, preview, rejection, upload, wait_for_jobs

pytestmark = pytest.mark.slow


def test_cold_start_benchmark_runs() -> None:
    figures = cold_start.main(["--runs", "1"])
    assert figures["bare_ms"] > 0 and figures["ours_ms"] > 0
    assert figures["first_call_ms"] > 0 and figures["second_call_ms"] > 0


def test_rejection_benchmark_runs_and_makes_no_request() -> None:
    figures = rejection.main(["--calls", "3"])
    assert figures["requests"] == 0
    assert len(figures["per_kind"]) == len(rejection.BAD_CALLS)


def test_download_benchmark_runs() -> None:
    figures = download.main(["--megabytes", "6", "--runs", "1"])
    assert figures["ours_mb_s"] > 0 and figures["curl_mb_s"] > 0


def test_upload_benchmark_runs() -> None:
    figures = upload.main(["--megabytes", "7", "--runs", "1"])
    assert figures["ours_mb_s"] > 0 and figures["curl_mb_s"] > 0
    assert figures["check_s"] > 0 and figures["transfer_s"] > 0


def test_wait_for_jobs_benchmark_runs() -> None:
    figures = wait_for_jobs.main(["--jobs", "2", "--job-seconds", "0.5"])
    assert figures["jobs"] == 2 and figures["requests_per_job"] >= 1


def test_preview_benchmark_runs() -> None:
    figures = preview.main(["--edge", "512", "--runs", "1"])
    assert figures["preview_s"] > 0


def test_load_benchmark_runs_and_loses_nothing_bills_nothing_twice() -> None:
    """Both phases: one server process, then two sharing a ledger with a pair sending identical requests."""
    results = load.main(["--sessions", "4", "--seconds", "5", "--job-seconds", "0.5", "--pairs", "1"])
    assert len(results) == 2
    for figures in results.values():
        assert figures["jobs_submitted"] > 0 and figures["calls"] > 0, figures
        assert figures["billed_jobs"] == figures["distinct_requests"], figures
        billed_twice = (figures["billed_twice"], figures["duplicate_keys"], figures["unrecorded_jobs"])
        assert billed_twice == (0, 0, 0), figures
        assert (figures["lost"], figures["failed_calls"]) == (0, 0), figures["failures"]
    paired = results["2 servers"]
    assert paired["pairs"] > 0 and paired["pairs_one_job"] == paired["pairs"], paired
