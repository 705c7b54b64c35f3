"""The spending guard's rules (jobs/spending.py), and the settings that set its limits.

The rules are pure: each test gives the limits, a quote, the images it is for, what the ledger says was
spent and the time, and reads the decision or the refusal, word for word.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from pydantic import ValidationError

from scenario_upscale_mcp.api.errors import ScenarioError
from scenario_upscale_mcp.config import Settings
from scenario_upscale_mcp.jobs.spending import (
    DAY_SECONDS,
    WEEK_SECONDS,
    SpendingLimits,
    SpendingRefused,
    check_spending,
    confirmation_question,
    spending_summary,
)
from scenario_upscale_tools.building import build_tool
from scenario_upscale_tools.inventory import ToolSpec

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC).timestamp()
HOUR = 3600.0
# 60 creative units spent in the last 24 h: 30 twenty hours ago, 20 ten hours ago, 10 an hour ago.
SPENT = [(NOW - 20 * HOUR, 30.0), (NOW - 10 * HOUR, 20.0), (NOW - HOUR, 10.0)]


def check(
    limits: SpendingLimits, quote: float, images: int = 1, spent: list[tuple[float, float]] | None = None
) -> bool:
    return check_spending(limits, quote=quote, images=images, spent=spent or [], now=NOW)


def refusal(
    limits: SpendingLimits, quote: float, images: int = 1, spent: list[tuple[float, float]] | None = None
) -> str:
    with pytest.raises(SpendingRefused) as caught:
        check(limits, quote, images, spent)
    return str(caught.value)


# --- settings ------------------------------------------------------------------------------------------


def test_the_limits_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCENARIO_MAX_CREDITS_PER_CALL", "100")
    monkeypatch.setenv("SCENARIO_MAX_CREDITS_PER_DAY", "500.5")
    monkeypatch.setenv("SCENARIO_CONFIRM_ABOVE_CREDITS", "0")
    monkeypatch.setenv("SCENARIO_MAX_BATCH_IMAGES", "37")

    settings = Settings()

    assert (settings.max_credits_per_call, settings.max_credits_per_day) == (100, 500.5)
    assert (settings.confirm_above_credits, settings.max_batch_images) == (0, 37)
    assert SpendingLimits.from_settings(settings) == SpendingLimits(
        per_call=100, per_day=500.5, confirm_above=0
    )


def test_unset_there_is_no_limit_and_a_batch_holds_100_images() -> None:
    settings = Settings()

    assert SpendingLimits.from_settings(settings) == SpendingLimits(None, None, None)
    assert not SpendingLimits.from_settings(settings).active
    assert settings.max_batch_images == 100


def test_a_variable_set_to_an_empty_string_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hosts' config forms send "" for a field left blank."""
    defaults = Settings()
    for name in (
        "MAX_CREDITS_PER_CALL",
        "MAX_CREDITS_PER_DAY",
        "CONFIRM_ABOVE_CREDITS",
        "MAX_BATCH_IMAGES",
        "MAX_PARALLEL_JOBS",
        "SANDBOX",
        "OUTPUT_DIR",
        "BASE_URL",
    ):
        monkeypatch.setenv(f"SCENARIO_{name}", "")

    settings = Settings()

    assert settings == defaults
    assert settings.max_credits_per_call is None and settings.max_batch_images == 100
    assert settings.sandbox is False and settings.base_url is None and settings.output_dir != Path.cwd()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SCENARIO_MAX_CREDITS_PER_CALL", "0"),
        ("SCENARIO_MAX_CREDITS_PER_CALL", "inf"),
        ("SCENARIO_MAX_CREDITS_PER_DAY", "-5"),
        ("SCENARIO_MAX_CREDITS_PER_DAY", "nan"),
        ("SCENARIO_CONFIRM_ABOVE_CREDITS", "-1"),
        ("SCENARIO_CONFIRM_ABOVE_CREDITS", "lots"),
        ("SCENARIO_MAX_BATCH_IMAGES", "0"),
        ("SCENARIO_MAX_BATCH_IMAGES", "1001"),
        ("SCENARIO_MAX_BATCH_IMAGES", "2.5"),
    ],
)
def test_an_out_of_range_limit_is_refused_with_its_name(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=name.removeprefix("SCENARIO_").lower()):
        Settings()


@pytest.mark.parametrize(
    "limits",
    [SpendingLimits(per_call=1), SpendingLimits(per_day=1), SpendingLimits(confirm_above=0)],
)
def test_any_one_limit_makes_the_guard_active(limits: SpendingLimits) -> None:
    assert limits.active


# --- the per-call limit --------------------------------------------------------------------------------


def test_a_call_exactly_at_the_per_call_limit_goes_ahead() -> None:
    assert check(SpendingLimits(per_call=100), 100, images=25) is False
    assert check(SpendingLimits(per_call=0.3), 0.1 + 0.2, images=2) is False  # 0.30000000000000004


def test_a_batch_over_the_per_call_limit_is_refused_with_how_to_split_it() -> None:
    assert refusal(SpendingLimits(per_call=100), 148, images=37) == REFUSAL


def test_one_image_over_the_per_call_limit_is_refused_without_split_advice() -> None:
    assert refusal(SpendingLimits(per_call=3), 4) == (
        "This upscale would cost 4 creative units, more than SCENARIO_MAX_CREDITS_PER_CALL (3). "
        "Nothing was submitted. Raise the limit in the host config."
    )


def test_a_batch_whose_every_image_is_over_the_limit_is_told_only_to_raise_it() -> None:
    assert refusal(SpendingLimits(per_call=5), 30, images=3) == (
        "This call would cost 30 creative units for 3 images, more than SCENARIO_MAX_CREDITS_PER_CALL (5). "
        "Nothing was submitted. Raise the limit in the host config: even one image costs more than that "
        "(about 10 creative units each)."
    )
    assert refusal(SpendingLimits(per_call=12.5), 30, images=3).endswith(
        "split the batch into calls of at most 1 image."
    )


@settings(max_examples=200, deadline=None)
@given(
    per_call=st.floats(min_value=0.5, max_value=10_000),
    per_image=st.floats(min_value=0.01, max_value=500),
    images=st.integers(min_value=2, max_value=1000),
)
def test_the_advised_split_is_the_largest_that_fits_at_the_average_cost(
    per_call: float, per_image: float, images: int
) -> None:
    quote = per_image * images
    if quote <= per_call * (1 + 1e-6):
        return
    text = refusal(SpendingLimits(per_call=per_call), quote, images=images)
    split = re.search(r"calls of at most (\d+) images?\.$", text)
    if split is None:
        assert "even one image costs more" in text
        assert quote / images > per_call * (1 - 1e-9)
        return
    fitting = int(split.group(1))
    assert 1 <= fitting < images
    assert fitting * (quote / images) <= per_call * (1 + 1e-9)
    assert (fitting + 1) * (quote / images) > per_call * (1 - 1e-9)


def test_the_per_call_limit_is_checked_before_the_daily_one() -> None:
    text = refusal(SpendingLimits(per_call=10, per_day=10), 50, spent=SPENT)
    assert "SCENARIO_MAX_CREDITS_PER_CALL" in text and "PER_DAY" not in text


# --- the daily budget ----------------------------------------------------------------------------------


def test_a_call_that_brings_the_last_24_h_exactly_to_the_budget_goes_ahead() -> None:
    assert check(SpendingLimits(per_day=100), 40, spent=SPENT) is False
    tenths = [(NOW - HOUR, 0.1), (NOW - HOUR, 0.2)]
    assert check(SpendingLimits(per_day=1.0), 0.7, spent=tenths) is False


def test_a_call_over_the_daily_budget_is_refused_with_when_room_frees_up() -> None:
    assert refusal(SpendingLimits(per_day=100), 50, spent=SPENT) == (
        "This server's jobs have already spent 60 creative units in the last 24 h; "
        "SCENARIO_MAX_CREDITS_PER_DAY is 100, so this upscale (50 creative units) would go over. Nothing was "
        "submitted. Room for it frees up at 2025-03-01T16:00Z as earlier jobs leave the 24 h window."
    )


def test_a_batch_over_the_daily_budget_is_told_how_many_of_its_images_fit_now() -> None:
    assert refusal(SpendingLimits(per_day=100), 50, images=10, spent=SPENT) == (
        "This server's jobs have already spent 60 creative units in the last 24 h; "
        "SCENARIO_MAX_CREDITS_PER_DAY is 100, so this call (50 creative units for 10 images) would go over. "
        "Nothing was submitted. Room for it frees up at 2025-03-01T16:00Z as earlier jobs leave the 24 h "
        "window. A call of at most 8 of these images would fit now."
    )


@pytest.mark.parametrize(
    ("quote", "frees_at"),
    [
        (41, "2025-03-01T16:00Z"),  # the oldest job (30) leaving is enough
        (70, "2025-03-01T16:00Z"),  # exactly enough
        (71, "2025-03-02T02:00Z"),  # the two oldest (30 + 20) must leave
        (100, "2025-03-02T11:00Z"),  # all three
    ],
)
def test_room_frees_up_when_enough_of_the_oldest_spending_has_left_the_window(
    quote: float, frees_at: str
) -> None:
    assert f"Room for it frees up at {frees_at} as" in refusal(
        SpendingLimits(per_day=100), quote, spent=SPENT
    )


def test_the_time_room_frees_up_is_rounded_up_to_the_minute() -> None:
    spent = [(NOW - 20 * HOUR + 1, 90.0)]  # leaves the window at 16:00:01
    assert "frees up at 2025-03-01T16:01Z as" in refusal(SpendingLimits(per_day=100), 20, spent=spent)


def test_only_the_last_24_h_count() -> None:
    spent = [(NOW - DAY_SECONDS, 1000.0), (NOW - DAY_SECONDS + 1, 1.0), (NOW + 5, 2.0)]
    assert check(SpendingLimits(per_day=100), 97, spent=spent) is False
    assert "already spent 3 creative units" in refusal(SpendingLimits(per_day=100), 98, spent=spent)


def test_a_call_over_the_daily_budget_on_its_own_can_never_fit() -> None:
    assert refusal(SpendingLimits(per_day=100), 120) == (
        "This upscale would cost 120 creative units, more than SCENARIO_MAX_CREDITS_PER_DAY (100) on its own, "
        "so it can never fit in the 24 h budget. Nothing was submitted. Raise the limit in the host config."
    )
    assert refusal(SpendingLimits(per_day=100), 120, images=6, spent=SPENT) == (
        "This call would cost 120 creative units for 6 images, more than SCENARIO_MAX_CREDITS_PER_DAY (100) on "
        "its own, so it can never fit in the 24 h budget. Nothing was submitted. Raise the limit in the host "
        "config, or split the batch into calls of at most 5 images."
    )


def _minute(text: str) -> float:
    found = re.search(r"frees up at (\S+) as", text)
    assert found is not None, text
    return datetime.strptime(found.group(1), "%Y-%m-%dT%H:%MZ").replace(tzinfo=UTC).timestamp()


@settings(max_examples=200, deadline=None)
@given(
    spent=st.lists(
        st.tuples(st.floats(min_value=1, max_value=DAY_SECONDS - 1), st.integers(min_value=0, max_value=50)),
        max_size=12,
    ),
    per_day=st.integers(min_value=1, max_value=300),
    quote=st.integers(min_value=0, max_value=300),
)
def test_the_call_fits_at_the_minute_said_and_not_a_minute_before(
    spent: list[tuple[float, int]], per_day: int, quote: int
) -> None:
    recorded = [(NOW - age, float(cost)) for age, cost in spent]
    limits = SpendingLimits(per_day=per_day)
    if quote > per_day:
        assert "can never fit" in refusal(limits, quote, spent=recorded)
        return
    if sum(cost for _, cost in spent) + quote <= per_day:
        assert check(limits, quote, spent=recorded) is False
        return
    fits_at = _minute(refusal(limits, quote, spent=recorded))
    assert fits_at > NOW
    assert check_spending(limits, quote=quote, images=1, spent=recorded, now=fits_at) is False
    with pytest.raises(SpendingRefused):
        check_spending(limits, quote=quote, images=1, spent=recorded, now=fits_at - 60)


# --- confirmation ----------------------------------------------------------------------------------------


def test_a_call_above_the_confirmation_threshold_needs_the_user() -> None:
    limits = SpendingLimits(confirm_above=50)
    assert check(limits, 50.5) is True
    assert check(limits, 50) is False  # exactly at it: no question
    assert check(limits, 10) is False


def test_a_threshold_of_0_asks_for_any_call_that_costs_something() -> None:
    limits = SpendingLimits(confirm_above=0)
    assert check(limits, 0.5) is True
    assert check(limits, 0) is False


def test_without_limits_nothing_is_refused_or_asked() -> None:
    assert check(SpendingLimits(), 1e9, images=1000, spent=SPENT) is False


def test_a_call_within_the_limits_but_above_the_threshold_is_asked_about() -> None:
    limits = SpendingLimits(per_call=200, per_day=300, confirm_above=100)
    assert check(limits, 148, images=37, spent=SPENT) is True
    with pytest.raises(SpendingRefused):  # a refusal comes first: the user is not asked about it
        check(limits, 250, images=37, spent=SPENT)


def test_the_confirmation_question() -> None:
    assert confirmation_question(148, 37) == "This will cost 148 creative units for 37 images. Proceed?"
    assert confirmation_question(4, 1) == "This upscale will cost 4 creative units. Proceed?"
    assert confirmation_question(1, 1) == "This upscale will cost 1 creative unit. Proceed?"
    assert confirmation_question(2.5, 2) == "This will cost 2.5 creative units for 2 images. Proceed?"


def test_a_call_is_for_at_least_one_image() -> None:
    with pytest.raises(ValueError, match="at least one image"):
        check(SpendingLimits(per_call=1), 0, images=0)


# --- what was spent ------------------------------------------------------------------------------------


def test_the_spending_summary_over_24_h_and_7_days() -> None:
    spent = [
        (NOW - WEEK_SECONDS, 1000.0),  # exactly 7 days ago: out
        (NOW - 6 * DAY_SECONDS, 7.5),
        (NOW - DAY_SECONDS, 100.0),  # exactly 24 h ago: out of the last 24 h
        (NOW - HOUR, 0.1),
        (NOW, 0.2),
    ]
    assert spending_summary(spent, NOW) == {
        "last24Hours": 0.3,
        "last7Days": 107.8,
        "jobsLast24Hours": 2,
        "jobsLast7Days": 4,
    }
    assert spending_summary([], NOW) == {
        "last24Hours": 0,
        "last7Days": 0,
        "jobsLast24Hours": 0,
        "jobsLast7Days": 0,
    }


# --- how a refusal reaches the assistant ---------------------------------------------------------------

REFUSAL = (
    "This call would cost 148 creative units for 37 images, more than SCENARIO_MAX_CREDITS_PER_CALL (100). "
    "Nothing was submitted. Raise the limit in the host config, or split the batch into calls of at most 25 "
    "images."
)


async def refuse_to_spend() -> str:
    """A tool that the spending guard stops."""
    check_spending(SpendingLimits(per_call=100), quote=148, images=37, spent=[], now=NOW)
    return "submitted"


@pytest.mark.anyio
async def test_a_refusal_reaches_the_assistant_as_a_tool_error_word_for_word(mode: str) -> None:
    """A ScenarioError, so `build_tool` makes it a tool error with its text (the SDK puts every tool error
    after "Error executing tool <name>: "); any other exception would reach the assistant as the bare prefix."""
    assert issubclass(SpendingRefused, ScenarioError)
    tool = build_tool(ToolSpec(refuse_to_spend, "Refuse", ToolAnnotations()))
    async with Client(MCPServer("spending-test", tools=[tool]), mode=mode) as client:
        result = await client.call_tool("refuse_to_spend", {})
    assert result.is_error
    assert result.content[0].text == f"Error executing tool refuse_to_spend: {REFUSAL}"  # type: ignore[union-attr]
