"""The spending guard's rules: a call's quote against the limits the user set in the host config.

Pure: given the limits, the quote (a free dry run's total), the number of images and what the ledger
says was spent, it decides; the caller does the dry run, reads `Ledger.spending_since`, and asks the
user. With all three limits unset (`SpendingLimits.active` false) the caller skips the guard
altogether, so no extra dry run is made.

- SCENARIO_MAX_CREDITS_PER_CALL: a call quoted above it is refused; exactly at it passes.
- SCENARIO_MAX_CREDITS_PER_DAY: a rolling 24 h budget. What this server's jobs cost in the last 24 h
  (any status: Scenario bills a job when it is submitted) plus the quote must not go above it. The
  refusal says when enough earlier spending leaves the window for the call to fit, or that it never
  can when the quote alone is above the budget.
- SCENARIO_CONFIRM_ABOVE_CREDITS: a call quoted above it needs the user's confirmation (0: any call
  that costs anything).

Amounts are compared with a tolerance of a billionth, so that costs that add up to a limit in decimal
(0.1 + 0.2 against 0.3) are at it, not above it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypedDict

from scenario_upscale_mcp.api.errors import ScenarioError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from scenario_upscale_mcp.config import Settings

DAY_SECONDS = 24 * 3600.0
WEEK_SECONDS = 7 * DAY_SECONDS
_TOLERANCE = 1e-9


class SpendingRefused(ScenarioError):
    """The spending guard refused a call before anything was submitted; the message gives the quote, the
    limit, and how to proceed. A ScenarioError, so the tool answers with exactly this message."""


@dataclass(frozen=True)
class SpendingLimits:
    """The limits set in the host config, in creative units; None: not set."""

    per_call: float | None = None  # SCENARIO_MAX_CREDITS_PER_CALL
    per_day: float | None = None  # SCENARIO_MAX_CREDITS_PER_DAY
    confirm_above: float | None = None  # SCENARIO_CONFIRM_ABOVE_CREDITS

    @classmethod
    def from_settings(cls, settings: Settings) -> SpendingLimits:
        return cls(
            per_call=settings.max_credits_per_call,
            per_day=settings.max_credits_per_day,
            confirm_above=settings.confirm_above_credits,
        )

    @property
    def active(self) -> bool:
        """Any limit set: the call must be quoted (a dry run) before it is submitted."""
        return self.per_call is not None or self.per_day is not None or self.confirm_above is not None


class SpendingSummary(TypedDict):
    last24Hours: float
    last7Days: float
    jobsLast24Hours: int
    jobsLast7Days: int


def check_spending(
    limits: SpendingLimits,
    *,
    quote: float,
    images: int,
    spent: Sequence[tuple[float, float]],
    now: float,
) -> bool:
    """Whether a call quoted `quote` creative units for `images` images may be submitted.

    Raises SpendingRefused if it is over the per-call limit, or would take the last 24 h's spending over
    the daily one. Returns True if the user must confirm it first (the quote is above the
    confirmation threshold), False if it may go ahead as it is. `spent` is (created_at, cost) of the
    jobs since at least `now` - 24 h (`Ledger.spending_since`); `now` is wall-clock seconds.
    """
    if images < 1:
        raise ValueError(f"a call quotes at least one image, not {images}")
    if limits.per_call is not None and _above(quote, limits.per_call):
        raise SpendingRefused(_over_per_call(quote, images, limits.per_call))
    if limits.per_day is not None:
        _check_day(limits.per_day, quote=quote, images=images, spent=spent, now=now)
    return limits.confirm_above is not None and _above(quote, limits.confirm_above)


def confirmation_question(quote: float, images: int) -> str:
    """What the user is asked before a call quoted above SCENARIO_CONFIRM_ABOVE_CREDITS is submitted."""
    if images == 1:
        return f"This upscale will cost {_units(quote)}. Proceed?"
    return f"This will cost {_units(quote)} for {images} images. Proceed?"


def spending_summary(spent_7d: Sequence[tuple[float, float]], now: float) -> SpendingSummary:
    """Creative units spent, and jobs that spent them, in the last 24 h and the last 7 days.

    `spent_7d` is `Ledger.spending_since(now - WEEK_SECONDS)`; a job is in a window while less than its
    length has passed since it was recorded (as the daily budget counts it).
    """
    day = [cost for created_at, cost in spent_7d if created_at > now - DAY_SECONDS]
    week = [cost for created_at, cost in spent_7d if created_at > now - WEEK_SECONDS]
    return SpendingSummary(
        last24Hours=_total(day),
        last7Days=_total(week),
        jobsLast24Hours=len(day),
        jobsLast7Days=len(week),
    )


def amount_text(value: float) -> str:
    """A number of creative units as said to the assistant: `148`, `2.5`."""
    return f"{value:.10g}"


# --- the rules, one at a time ----------------------------------------------------------------------


def _over_per_call(quote: float, images: int, limit: float) -> str:
    what = _this_call(quote, images, verb="would cost")
    text = (
        f"{what}, more than SCENARIO_MAX_CREDITS_PER_CALL ({amount_text(limit)}). Nothing was submitted. "
        "Raise the limit in the host config"
    )
    return text + _split_advice(quote, images, limit)


def _check_day(
    limit: float, *, quote: float, images: int, spent: Sequence[tuple[float, float]], now: float
) -> None:
    recent = sorted((created_at, cost) for created_at, cost in spent if created_at > now - DAY_SECONDS)
    already = _total([cost for _, cost in recent])
    if not _above(already + quote, limit):
        return
    if _above(quote, limit):
        what = _this_call(quote, images, verb="would cost")
        raise SpendingRefused(
            f"{what}, more than SCENARIO_MAX_CREDITS_PER_DAY ({amount_text(limit)}) on its own, so it can "
            "never fit in the 24 h budget. Nothing was submitted. Raise the limit in the host config"
            + _split_advice(quote, images, limit)
        )
    # The earliest instant at which enough of the oldest spending has left the window for the quote to
    # fit; the jobs leave it one by one, oldest first, each DAY_SECONDS after it was recorded.
    excess = already + quote - limit
    freed = 0.0
    frees_at = recent[-1][0] + DAY_SECONDS if recent else now
    for created_at, cost in recent:
        freed += cost
        if not _above(excess, freed):
            frees_at = created_at + DAY_SECONDS
            break
    this_call = (
        f"this upscale ({_units(quote)})"
        if images == 1
        else f"this call ({_units(quote)} for {images} images)"
    )
    text = (
        f"This server's jobs have already spent {_units(already)} in the last 24 h; "
        f"SCENARIO_MAX_CREDITS_PER_DAY is {amount_text(limit)}, so {this_call} would go over. Nothing was "
        f"submitted. Room for it frees up at {_minute_after(frees_at)} as earlier jobs leave the 24 h window."
    )
    fitting_now = _images_fitting(max(limit - already, 0.0), quote, images)
    if images > 1 and fitting_now >= 1:
        text += f" A call of at most {fitting_now} of these images would fit now."
    raise SpendingRefused(text)


def _this_call(quote: float, images: int, *, verb: str) -> str:
    if images == 1:
        return f"This upscale {verb} {_units(quote)}"
    return f"This call {verb} {_units(quote)} for {images} images"


def _split_advice(quote: float, images: int, limit: float) -> str:
    """The end of a refusal's sentence: how to split the batch so that each call fits `limit`."""
    if images == 1:
        return "."
    fitting = _images_fitting(limit, quote, images)
    if fitting < 1:
        return f": even one image costs more than that (about {_units(quote / images)} each)."
    return f", or split the batch into calls of at most {_count(fitting, 'image')}."


def _images_fitting(budget: float, quote: float, images: int) -> int:
    """How many images of this call fit in `budget`, at the call's average cost per image."""
    if quote <= 0:
        return images
    return min(images, math.floor(budget * images / quote + _TOLERANCE))


def _above(amount: float, limit: float) -> bool:
    return amount > limit and not math.isclose(amount, limit, rel_tol=_TOLERANCE, abs_tol=_TOLERANCE)


def _total(costs: Sequence[float]) -> float:
    # Rounded past any real cost's precision, so 0.1 + 0.2 is said as 0.3.
    return round(math.fsum(costs), 6)


def _units(value: float) -> str:
    return f"{amount_text(value)} creative unit{'' if value == 1 else 's'}"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _minute_after(timestamp: float) -> str:
    """The instant in UTC, ISO 8601 to the minute, rounded up (by then it has surely passed)."""
    minute = math.ceil(timestamp / 60) * 60
    return datetime.fromtimestamp(minute, tz=UTC).strftime("%Y-%m-%dT%H:%MZ")
