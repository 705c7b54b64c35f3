"""Asking the user (not the model) whether to go on, from the middle of a tool call, in both protocol eras.

A tool learns what to ask only after async work of its own (uploads, a dry run for the quote), so the
SDK's `Resolve(...)` + `Elicit` does not fit: resolvers run before the tool body (mcp/server/mcpserver/
tools/base.py, `Tool.run`), so the quoting would have to move out of the tool into a resolver, and a
resolver whose client cannot be asked fails the call with a JSON-RPC error (-32021), where the tool
wants to refuse with the quote instead. So a handler asks itself, once per call:

    question = f"This will cost {total:g} creative units for {count} images. Proceed?"
    answer = await ask_to_proceed(ctx, question, quote=total)
    if isinstance(answer, InputRequiredResult):
        return answer  # 2026-07-28: the client asks the user, then calls the tool again
    if answer is not Answer.ACCEPT:
        ...  # submit nothing, and say why (declined, cancelled, or cannot ask)

- Handshake era (up to 2025-11-25): the question is a live `elicitation/create` request; the handler
  waits for the answer and goes on.
- 2026-07-28: the server cannot send requests. The handler returns an `InputRequiredResult` carrying the
  question; the client asks the user and repeats the call with the answer, so the handler runs again from
  the start, recomputes the quote and reaches this function again, which now finds the answer. The answer
  counts only for the question and quote it was given to (kept in `request_state`, which the SDK seals and
  binds to this tool and these arguments); if the price changed in between, the user is asked again.
- A client that declared no form elicitation, or a connection with no way to ask: `Answer.UNSUPPORTED`,
  never an error, so the tool can refuse with the quote and its own way to proceed. (A client that
  declared it but fails to ask, its callback answering an error, fails the call in both eras, as the
  SDK's own elicitation does.)

A tool that uses this must not also use `Resolve(...)` parameters: a call has one input channel, and the
SDK refuses the combination (tools/base.py, `Tool.from_function` and `Tool.run`).
"""

from __future__ import annotations

import logging
from enum import Enum

from mcp.server.elicitation import render_elicitation_schema
from mcp.types import ElicitRequest, ElicitRequestFormParams, ElicitResult, InputRequiredResult
from mcp.types.version import is_version_at_least
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scenario_upscale_tools.arguments import ToolContext

logger = logging.getLogger(__name__)


class Answer(Enum):
    ACCEPT = "accept"
    """The user said yes: go on."""
    DECLINE = "decline"
    """The user said no."""
    CANCEL = "cancel"
    """The user dismissed the question without answering."""
    UNSUPPORTED = "unsupported"
    """The user cannot be asked: the client declared no form elicitation, or the connection has no way."""


# The form shown under the question: one box, ticked. A form with no field would be the plain yes/no,
# but some clients refuse to show a form that asks for nothing; with the box ticked by default, "accept"
# alone is a yes (also when a client sends no content), and unticking it then accepting is a no.
# (No docstring: it would become the form's description, shown to the user.)
class Confirm(BaseModel):
    model_config = ConfigDict(strict=True, title="Confirm")

    proceed: bool = Field(default=True, title="Proceed")


_SCHEMA = render_elicitation_schema(Confirm)  # the SDK's renderer: flat primitives only, as the spec asks
_KEY = "confirm"  # this question's key in `input_requests` / `input_responses`
_FIRST_ASKING_VERSION = "2026-07-28"  # from this revision on, a question rides an InputRequiredResult


class _Asked(BaseModel):
    """What the user was shown, kept in `request_state` until the call comes back with the answer."""

    question: str
    quote: float


async def ask_to_proceed(ctx: ToolContext, question: str, *, quote: float) -> Answer | InputRequiredResult:
    """Ask the user `question` (a yes/no about spending `quote`) and return the answer, or, on 2026-07-28,
    the `InputRequiredResult` the handler must return as is to have it asked.

    `quote` is what the answer is bound to: on 2026-07-28 an answer given for another quote (or another
    wording) does not count, and the question is asked again.
    """
    if not _client_can_answer(ctx):
        return Answer.UNSUPPORTED

    if not _asks_by_result(ctx):
        # Handshake era: ask now, over the back channel, and wait. A stateless connection has none.
        if not ctx.session.can_send_request:
            return Answer.UNSUPPORTED
        return _read(await ctx.session.elicit_form(question, _SCHEMA, related_request_id=ctx.request_id))

    # 2026-07-28: this is either the first run (ask) or the run the client repeated with the answer.
    asked = _Asked(question=question, quote=quote)
    answer = (ctx.input_responses or {}).get(_KEY)
    if answer is not None:
        if _asked_before(ctx) == asked:
            return _read(answer)
        # The user answered another question (the price or its wording changed since): ask this one.
        logger.info("the confirmation was answered for another quote or question; asking again")
    question_request = ElicitRequest(
        params=ElicitRequestFormParams(message=question, requested_schema=_SCHEMA)
    )
    return InputRequiredResult(input_requests={_KEY: question_request}, request_state=asked.model_dump_json())


def _client_can_answer(ctx: ToolContext) -> bool:
    """Whether the client declared form elicitation. A bare `elicitation: {}` (from before modes) counts
    as form; url-only does not (the SDK's own check: mcp/server/mcpserver/resolve.py, `_require_capability`).
    """
    capabilities = ctx.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


def _asks_by_result(ctx: ToolContext) -> bool:
    """True on 2026-07-28 and later, where the server cannot send requests and returns the question."""
    version = ctx.protocol_version
    return version is not None and is_version_at_least(version, _FIRST_ASKING_VERSION)


def _asked_before(ctx: ToolContext) -> _Asked | None:
    """The question this call asked last round. The SDK seals `request_state` and binds it to this tool
    and these arguments (mcp/server/request_state.py), so it is what this function wrote."""
    if not ctx.request_state:
        return None
    try:
        return _Asked.model_validate_json(ctx.request_state)
    except ValidationError:
        return None


def _read(response: object) -> Answer:
    """The user's answer. Anything other than an accept with the box ticked (or left as it was) is not
    a yes; an answer that is not an answer to this form counts as no answer (cancel)."""
    if not isinstance(response, ElicitResult):
        return Answer.CANCEL
    if response.action == "decline":
        return Answer.DECLINE
    if response.action == "cancel":
        return Answer.CANCEL
    try:
        confirmed = Confirm.model_validate(response.content or {})
    except ValidationError:
        return Answer.CANCEL
    return Answer.ACCEPT if confirmed.proceed else Answer.DECLINE
