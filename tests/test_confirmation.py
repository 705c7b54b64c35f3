"""`confirmation.ask_to_proceed` through the MCP client, in both protocol eras: a tool that does async work,
then asks the user whether to spend, gets accept / decline / cancel, or learns the user cannot be asked.

On 2026-07-28 (`mode="auto"`) the question rides an `InputRequiredResult` and the client repeats the call
with the answer, so the tool's work before the question runs again; on the handshake era (`"legacy"`) the
question is a live request and the tool runs once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated

import anyio.lowlevel
import pytest
from mcp import Client
from mcp.client import ClientRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.types import (
    CallToolResult,
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitRequestParams,
    ElicitResult,
    InputRequiredResult,
    TextContent,
    ToolAnnotations,
)
from pydantic import BaseModel

from scenario_upscale_tools.arguments import Given, ToolContext
from scenario_upscale_tools.building import build_tool
from scenario_upscale_tools.confirmation import Answer, ask_to_proceed
from scenario_upscale_tools.inventory import ToolSpec

pytestmark = pytest.mark.anyio

SAID = {
    Answer.ACCEPT: "submitted",
    Answer.DECLINE: "declined",
    Answer.CANCEL: "cancelled",
    Answer.UNSUPPORTED: "cannot ask",
}


@dataclass
class Shop:
    """The throwaway tool's world: the quotes its dry runs return, in turn, and what it did."""

    quotes: Iterator[float]
    runs: int = 0  # how often the work before the question ran
    submitted: list[float] = field(default_factory=list)


def make_server(shop: Shop) -> MCPServer:
    server = MCPServer("confirmation-test")

    @server.tool()
    async def spend(images: int, ctx: ToolContext) -> str | InputRequiredResult:
        shop.runs += 1
        await anyio.lowlevel.checkpoint()  # the uploads and the dry run
        total = next(shop.quotes)
        question = f"This will cost {total:g} creative units for {images} images. Proceed?"
        answer = await ask_to_proceed(ctx, question, quote=total)
        if isinstance(answer, InputRequiredResult):
            return answer
        if answer is Answer.ACCEPT:
            shop.submitted.append(total)
        return f"{SAID[answer]} ({total:g})"

    return server


@dataclass
class User:
    """An elicitation callback: answers every question the same way and remembers what it was shown."""

    answer: ElicitResult
    shown: list[ElicitRequestParams] = field(default_factory=list)

    async def __call__(self, context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        self.shown.append(params)
        return self.answer

    @property
    def questions(self) -> list[str]:
        return [params.message for params in self.shown]


def text_of(result: CallToolResult) -> str:
    assert not result.is_error, result
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


def always(quote: float) -> Iterator[float]:
    while True:
        yield quote


QUESTION = "This will cost 148 creative units for 37 images. Proceed?"


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (ElicitResult(action="accept", content={"proceed": True}), "submitted (148)"),
        (ElicitResult(action="accept"), "submitted (148)"),  # the box left as it was (some send no content)
        (ElicitResult(action="accept", content={"proceed": False}), "declined (148)"),  # box unticked
        (ElicitResult(action="decline"), "declined (148)"),
        (ElicitResult(action="cancel"), "cancelled (148)"),
    ],
)
async def test_the_user_is_asked_once_and_the_answer_decides(
    mode: str, answer: ElicitResult, said: str
) -> None:
    shop = Shop(quotes=always(148))
    user = User(answer)
    async with Client(make_server(shop), mode=mode, elicitation_callback=user) as client:
        result = await client.call_tool("spend", {"images": 37})
    assert text_of(result) == said
    assert user.questions == [QUESTION]
    assert shop.submitted == ([148] if said.startswith("submitted") else [])
    # 2026-07-28: the client repeats the call with the answer, so the work before the question runs again.
    assert shop.runs == (2 if mode == "auto" else 1)


async def test_the_form_is_one_ticked_box(mode: str) -> None:
    user = User(ElicitResult(action="decline"))
    async with Client(make_server(Shop(quotes=always(148))), mode=mode, elicitation_callback=user) as client:
        await client.call_tool("spend", {"images": 37})
    [params] = user.shown
    assert isinstance(params, ElicitRequestFormParams)
    assert params.requested_schema["type"] == "object"
    assert params.requested_schema["properties"] == {
        "proceed": {"type": "boolean", "title": "Proceed", "default": True}
    }
    assert params.requested_schema.get("required", []) == []  # so "accept" alone is a yes


async def test_a_client_without_elicitation_cannot_be_asked_and_that_is_no_error(mode: str) -> None:
    shop = Shop(quotes=always(148))
    async with Client(make_server(shop), mode=mode) as client:
        result = await client.call_tool("spend", {"images": 37})
    assert text_of(result) == "cannot ask (148)"
    assert shop.submitted == []
    assert shop.runs == 1


async def test_an_answer_to_an_older_price_does_not_count_the_user_is_asked_again() -> None:
    """2026-07-28 only: between the question and the repeated call, the quote went from 148 to 152."""
    shop = Shop(quotes=iter([148, 152, 152]))
    user = User(ElicitResult(action="accept", content={"proceed": True}))
    async with Client(make_server(shop), elicitation_callback=user) as client:
        result = await client.call_tool("spend", {"images": 37})
    assert user.questions == [QUESTION, QUESTION.replace("148", "152")]
    assert text_of(result) == "submitted (152)"
    assert shop.submitted == [152]
    assert shop.runs == 3  # asked at 148, asked again at 152, submitted at 152


async def test_what_a_2026_client_is_sent_is_the_question_and_a_sealed_state() -> None:
    """Driving the rounds by hand shows the wire: the question under the key "confirm", and a
    `request_state` the SDK sealed (the client cannot read or change the quote kept in it)."""
    shop = Shop(quotes=always(148))
    user = User(ElicitResult(action="accept"))
    async with Client(make_server(shop), elicitation_callback=user) as client:
        first = await client.session.call_tool("spend", {"images": 37}, allow_input_required=True)
        assert isinstance(first, InputRequiredResult)
        assert first.input_requests is not None
        [(key, request)] = first.input_requests.items()
        assert key == "confirm"
        assert isinstance(request, ElicitRequest)
        assert request.params.message == QUESTION
        assert first.request_state is not None
        assert "148" not in first.request_state  # sealed, not our plain JSON

        # An answer without the state it belongs to is not taken: the question comes back.
        accepted = {"confirm": ElicitResult(action="accept")}
        again = await client.session.call_tool(
            "spend", {"images": 37}, input_responses=dict(accepted), allow_input_required=True
        )
        assert isinstance(again, InputRequiredResult)
        assert shop.submitted == []

        final = await client.session.call_tool(
            "spend",
            {"images": 37},
            input_responses=dict(accepted),
            request_state=again.request_state,
            allow_input_required=True,
        )
        assert isinstance(final, CallToolResult)
        assert text_of(final) == "submitted (148)"
        assert shop.submitted == [148]


# --- through the project's own tool wrapper (`app.build_tool`) --------------------------------------


class Spent(BaseModel):
    said: str


SPENT: list[str] = []


async def spend_like_a_model_tool(
    ctx: ToolContext, given: Given, images: int, wait: float = 0
) -> Annotated[CallToolResult, Spent] | InputRequiredResult:
    """Spend, as the model tools are built: strict arguments, `Given`, a structured result."""
    await anyio.lowlevel.checkpoint()
    answer = await ask_to_proceed(
        ctx, f"This will cost {4 * images} creative units. Proceed?", quote=4 * images
    )
    if isinstance(answer, InputRequiredResult):
        return answer
    SPENT.append(SAID[answer])
    said = f"{SAID[answer]}; given {sorted(given)}"
    return CallToolResult(content=[TextContent(text=said)], structured_content=Spent(said=said).model_dump())


async def test_the_project_tool_wrapper_lets_the_question_through(mode: str) -> None:
    """`build_tool` (strict arguments, `Given`, API errors as tool errors) needs no change: the SDK passes an
    `InputRequiredResult` through before validating the output, and the published output schema is the
    structured result's alone."""
    SPENT.clear()
    tool = build_tool(ToolSpec(spend_like_a_model_tool, "Spend", ToolAnnotations()))
    server = MCPServer("confirmation-test", tools=[tool])
    user = User(ElicitResult(action="accept"))
    async with Client(server, mode=mode, elicitation_callback=user) as client:
        [listed] = (await client.list_tools()).tools
        result = await client.call_tool("spend_like_a_model_tool", {"images": 37})
    assert listed.output_schema == Spent.model_json_schema()
    assert set(listed.input_schema["properties"]) == {"images", "wait"}
    assert result.structured_content == {"said": "submitted; given ['images']"}
    assert SPENT == ["submitted"]
    assert user.questions == ["This will cost 148 creative units. Proceed?"]
