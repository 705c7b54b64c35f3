"""The spending guard as a tool applies it: limits checked on the quote, then the user asked, before any
paid request (the rules themselves are `jobs.spending`'s).

With no limit set (SCENARIO_MAX_CREDITS_PER_CALL, _PER_DAY, SCENARIO_CONFIRM_ABOVE_CREDITS), the tools
never call this: no extra dry run, no extra latency.
"""

from __future__ import annotations

from typing import Annotated

from mcp.types import InputRequiredResult
from pydantic import Field

from scenario_upscale_mcp.jobs.spending import (
    DAY_SECONDS,
    SpendingRefused,
    amount_text,
    check_spending,
    confirmation_question,
)
from scenario_upscale_tools.arguments import ToolContext, upscaler_of
from scenario_upscale_tools.confirmation import Answer, ask_to_proceed

ConfirmCost = Annotated[
    float | None,
    Field(ge=0, description="Total the user approved, if the host cannot ask."),
]


async def guard_spending(
    ctx: ToolContext, *, quote: float | None, images: int, confirm_cost: float | None
) -> InputRequiredResult | None:
    """None when the call may spend `quote`; raises `SpendingRefused` (nothing submitted) otherwise.

    Above SCENARIO_CONFIRM_ABOVE_CREDITS the user is asked, in the host, when it can ask; an
    `InputRequiredResult` returned here is that question (2026-07-28), for the tool to return. A host
    that cannot ask gets a refusal with the quote; the same call with `confirmCost` at least the quote
    (the total the user approved) goes through. A host that can ask always asks: `confirmCost` does not let the model answer for the user.
    """
    upscaler = upscaler_of(ctx)
    limits = upscaler.spending_limits
    if quote is None:
        raise SpendingRefused(
            "The API did not quote a price for this call, so the spending limits cannot be checked; nothing "
            "was submitted. Try again later, or unset the SCENARIO_MAX_CREDITS_* / "
            "SCENARIO_CONFIRM_ABOVE_CREDITS limits."
        )
    since = upscaler.clock.wall() - DAY_SECONDS
    spent = await upscaler.ledger(lambda db: db.spending_since(since)) if limits.per_day is not None else []
    if not check_spending(limits, quote=quote, images=images, spent=spent, now=upscaler.clock.wall()):
        return None
    question = confirmation_question(quote, images)
    answer = await ask_to_proceed(ctx, question, quote=quote)
    if isinstance(answer, InputRequiredResult):
        return answer
    if answer is Answer.ACCEPT:
        return None
    if answer is not Answer.UNSUPPORTED:
        verb = "declined" if answer is Answer.DECLINE else "cancelled"
        raise SpendingRefused(
            f"The user {verb} the cost ({amount_text(quote)} creative units): nothing was submitted or billed."
        )
    # What the user approved is a ceiling: a batch sent again after part of it was submitted is quoted
    # for the rest only, and goes through with the same confirmCost.
    if confirm_cost is not None and quote <= confirm_cost:
        return None
    mismatch = (
        f" (confirmCost was {amount_text(confirm_cost)}, but the quote is now {amount_text(quote)})"
        if confirm_cost is not None
        else ""
    )
    raise SpendingRefused(
        f"This call would cost {amount_text(quote)} creative units, above SCENARIO_CONFIRM_ABOVE_CREDITS "
        f"({amount_text(limits.confirm_above or 0)}), and this host cannot ask the user to confirm{mismatch}. "
        f"Nothing was submitted. Ask the user; if they agree, call again with the same arguments and "
        f"confirmCost={amount_text(quote)}."
    )
