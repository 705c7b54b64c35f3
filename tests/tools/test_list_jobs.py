"""list_jobs through the MCP client: the local ledger, newest first, no network."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from mcp import Client

from scenario_upscale_mcp.app import create_server
from scenario_upscale_mcp.config import Settings
from scenario_upscale_mcp.jobs.ledger import Ledger
from scenario_upscale_mcp.sandbox.app import Sandbox
from tests.conftest import RecordingTransport
from tests.fake_clock import FakeClock
from tests.images import png_bytes

pytestmark = pytest.mark.anyio


async def test_lists_submitted_jobs_newest_first_with_a_status_filter(
    client: Client, sandbox: Sandbox, api: RecordingTransport
) -> None:
    ids = []
    for seed in (1, 2, 3):
        asset = sandbox.add_asset(png_bytes(), f"{seed}.png")
        result = await client.call_tool("upscale_texture", {"image": asset, "seed": seed, "wait": 0})
        assert result.structured_content is not None
        ids.append(result.structured_content["jobId"])
    await client.call_tool("wait_for_jobs", {"jobIds": ids[:1], "timeout": 20})
    requests_before = len(api.requests)

    everything = await client.call_tool("list_jobs", {})
    done = await client.call_tool("list_jobs", {"status": "success", "limit": 5})

    assert everything.structured_content is not None and done.structured_content is not None
    listed = everything.structured_content["jobs"]
    assert [job["jobId"] for job in listed] == ids[::-1]
    assert all(job["model"] == "model_sc-upscale-flux-texture" for job in listed)
    [finished] = done.structured_content["jobs"]
    assert finished["jobId"] == ids[0] and finished["outputs"][0]["path"]
    assert everything.content[0].text.startswith("The 3 most recent jobs (")  # type: ignore[union-attr]
    assert done.content[0].text.startswith("The most recent job (statuses as last seen")  # type: ignore[union-attr]
    assert len(api.requests) == requests_before  # the ledger alone answers


async def test_works_without_credentials(
    mode: str, tmp_path: Path, api: RecordingTransport, clock: FakeClock
) -> None:
    settings = Settings(output_dir=tmp_path, allowed_dirs=[tmp_path], state_dir=tmp_path)
    async with Client(create_server(settings, transport=api, clock=clock), mode=mode) as client:
        result = await client.call_tool("list_jobs", {"limit": 3})
    assert not result.is_error
    assert result.structured_content == {"jobs": [], "spending": NOTHING_SPENT}
    assert result.content[0].text == "No jobs recorded yet. Nothing spent in the last 7 days."  # type: ignore[union-attr]
    assert api.requests == []


# --- what was spent -------------------------------------------------------------------------------------

NOTHING_SPENT = {
    "last24Hours": 0,
    "last7Days": 0,
    "jobsLast24Hours": 0,
    "jobsLast7Days": 0,
    "maxCreditsPerCall": None,
    "maxCreditsPerDay": None,
    "leftLast24Hours": None,
    "confirmAboveCredits": None,
}
HOUR = 3600.0
DAY = 24 * HOUR


def record_jobs_elsewhere(state_dir: Path, now: float) -> None:
    """Jobs another server process recorded in the same ledger over the last 8 days: (id, cost, age, status)."""
    jobs = [
        ("job_8_days", 1000.0, 8 * DAY, "success"),  # too old for either window
        ("job_6_days", 7.5, 6 * DAY, "success"),
        ("job_25_hours", 20.0, 25 * HOUR, "success"),
        ("job_23_hours", 8.0, 23 * HOUR, "success"),
        ("job_failed", 2.0, HOUR, "failure"),  # billed at submission all the same
        ("job_running", 4.0, 0.5 * HOUR, "in-progress"),
        ("job_no_cost", None, 0.5 * HOUR, "queued"),  # a lost answer's job: its cost never stated
    ]
    for job_id, cost, age, status in jobs:
        with Ledger.in_folder(state_dir, clock=functools.partial(float, now - age)) as ledger:
            ledger.record_submission(
                job_id=job_id,
                model="model_upscale-v3",
                parameters={},
                inputs={},
                request_key=f"key-{job_id}",
                source_stem=None,
                upscale_factor=2.0,
                status=status,
                progress=0.0,
                cost=cost,
            )
    with Ledger.in_folder(state_dir, clock=lambda: now - HOUR) as ledger:
        # A job only looked up by its id (submitted elsewhere): not this server's spending.
        ledger.observe_job("job_looked_up", status="success", progress=1.0, cost=500.0)


async def test_spending_over_the_last_24_h_and_7_days(
    client: Client, sandbox: Sandbox, settings: Settings, clock: FakeClock, api: RecordingTransport
) -> None:
    record_jobs_elsewhere(settings.state_dir, clock.wall())
    asset = sandbox.add_asset(png_bytes(), "tile.png")
    submitted = await client.call_tool("upscale_texture", {"image": asset, "wait": 0})
    assert submitted.structured_content is not None
    cost = submitted.structured_content["creativeUnitsCost"]
    assert cost > 0
    requests_before = len(api.requests)

    now = await client.call_tool("list_jobs", {"limit": 1, "status": "success"})
    clock.advance(2 * HOUR)  # job_23_hours leaves the last 24 h
    later = await client.call_tool("list_jobs", {"limit": 1})

    assert now.structured_content is not None and later.structured_content is not None
    assert len(now.structured_content["jobs"]) == 1  # `limit` and `status` do not narrow the spending
    assert now.structured_content["spending"] == {
        **NOTHING_SPENT,
        "last24Hours": 8 + 2 + 4 + cost,
        "last7Days": 7.5 + 20 + 8 + 2 + 4 + cost,
        "jobsLast24Hours": 4,
        "jobsLast7Days": 6,
    }
    assert later.structured_content["spending"] == {
        **NOTHING_SPENT,
        "last24Hours": 2 + 4 + cost,
        "last7Days": 7.5 + 20 + 8 + 2 + 4 + cost,
        "jobsLast24Hours": 3,
        "jobsLast7Days": 6,
    }
    assert now.content[0].text.endswith(  # type: ignore[union-attr]
        f"Spent in the last 24 h: {14 + cost:g} creative units (4 jobs); in the last 7 days: "
        f"{41.5 + cost:g} (6 jobs)."
    )
    assert len(api.requests) == requests_before  # the ledger alone answers


async def test_the_limits_in_force_are_shown_with_what_the_day_leaves(
    mode: str, settings: Settings, api: RecordingTransport, clock: FakeClock
) -> None:
    record_jobs_elsewhere(settings.state_dir, clock.wall())
    limited = settings.model_copy(
        update={"max_credits_per_call": 100.0, "max_credits_per_day": 20.0, "confirm_above_credits": 0.0}
    )
    async with Client(create_server(limited, transport=api, clock=clock), mode=mode) as client:
        result = await client.call_tool("list_jobs", {"status": "canceled"})

    assert result.structured_content is not None
    assert result.structured_content["jobs"] == []
    assert result.structured_content["spending"] == {
        "last24Hours": 14,
        "last7Days": 41.5,
        "jobsLast24Hours": 3,
        "jobsLast7Days": 5,
        "maxCreditsPerCall": 100,
        "maxCreditsPerDay": 20,
        "leftLast24Hours": 6,
        "confirmAboveCredits": 0,
    }
    assert result.content[0].text == (  # type: ignore[union-attr]
        "No job was last seen as canceled. Spent in the last 24 h: 14 creative units (3 jobs); in the last "
        "7 days: 41.5 (5 jobs). Limits: 100 per call; 20 per 24 h (6 left now); the user confirms calls "
        "above 0."
    )
