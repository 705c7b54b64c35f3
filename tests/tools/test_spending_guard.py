"""The spending guard through the MCP client, both eras: limits refused before any paid request, the user
asked in the host (accept, decline), a host that cannot ask refused with the quote then let through with
`confirmCost`, and no extra request at all when no limit is set."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client import ClientRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, ElicitRequestParams, ElicitResult, TextContent

from scenario_upscale_mcp.app import create_server
from scenario_upscale_mcp.clock import Clock
from scenario_upscale_mcp.config import Settings
from scenario_upscale_mcp.service import Upscaler
from tests.conftest import RecordingTransport
from tests.images import png_bytes
from tests.servers import structured

pytestmark = pytest.mark.anyio

# The simulator's price of a 2x upscale_v3 of a small image (its made-up price list).
UNIT_PRICE = 3


@dataclass
class User:
    """An elicitation callback answering every question the same way, remembering the questions."""

    action: str
    questions: list[str] = field(default_factory=list)

    async def __call__(self, context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        self.questions.append(params.message)
        return ElicitResult(action=self.action)


def paid(api: RecordingTransport) -> int:
    return sum(
        r.method == "POST" and r.url.path.startswith("/v1/generate/") and "dryRun" not in r.url.params
        for r in api.requests
    )


def text(result: CallToolResult) -> str:
    return " ".join(block.text for block in result.content if isinstance(block, TextContent))


def images(folder: Path, number: int) -> list[str]:
    paths = []
    for index in range(number):
        path = folder / f"tile_{index}.png"
        path.write_bytes(png_bytes(16 + index, 16))
        paths.append(str(path))
    return paths


def guarded(settings: Settings, **limits: float) -> Settings:
    return settings.model_copy(update=limits)


@pytest.fixture
def limits() -> dict[str, float]:
    return {}


@pytest.fixture
def server(
    settings: Settings, limits: dict[str, float], api: RecordingTransport, shared_clock: Clock
) -> MCPServer[Upscaler]:
    return create_server(guarded(settings, **limits), transport=api, clock=shared_clock)


@pytest.fixture
def action() -> str | None:
    """What the user answers in the host; None: a host that cannot ask."""
    return None


@pytest.fixture
def user(action: str | None) -> User | None:
    return None if action is None else User(action)


@pytest.fixture
async def client(server: MCPServer[Upscaler], mode: str, user: User | None) -> AsyncIterator[Client]:
    async with Client(server, mode=mode, elicitation_callback=user) as connected:
        yield connected


async def batch(client: Client, paths: list[str], **arguments: Any) -> CallToolResult:
    return await client.call_tool("upscale_batch", {"model": "upscale_v3", "images": paths, **arguments})


@pytest.mark.parametrize("limits", [{"max_credits_per_call": 2 * UNIT_PRICE}])
async def test_over_the_per_call_limit_is_refused_with_its_quote_and_nothing_paid(
    client: Client, api: RecordingTransport, folders: dict[str, Path]
) -> None:
    result = await batch(client, images(folders["images"], 3))

    assert result.is_error
    said = text(result)
    assert f"{3 * UNIT_PRICE} creative units for 3 images" in said and "SCENARIO_MAX_CREDITS_PER_CALL" in said
    assert "split the batch" in said
    assert paid(api) == 0


@pytest.mark.parametrize("limits", [{"max_credits_per_day": 4 * UNIT_PRICE}])
async def test_over_the_daily_budget_is_refused_with_what_was_spent(
    client: Client, api: RecordingTransport, folders: dict[str, Path]
) -> None:
    paths = images(folders["images"], 4)
    structured(await batch(client, paths[:3]))  # 3 units' worth spent today

    result = await batch(client, [*paths[3:], str(folders["images"] / "tile_0.png")], parameters={"seed": 1})

    assert result.is_error
    said = text(result)
    assert f"already spent {3 * UNIT_PRICE}" in said and "SCENARIO_MAX_CREDITS_PER_DAY" in said
    assert "frees up at" in said
    assert paid(api) == 3


@pytest.mark.parametrize("limits", [{"confirm_above_credits": UNIT_PRICE}])
@pytest.mark.parametrize("action", ["accept"])
async def test_accepted_in_the_host_it_is_submitted(
    client: Client, api: RecordingTransport, folders: dict[str, Path], user: User
) -> None:
    answer = structured(await batch(client, images(folders["images"], 2)))

    assert user.questions == [f"This will cost {2 * UNIT_PRICE} creative units for 2 images. Proceed?"]
    assert all(item["jobId"] for item in answer["images"])
    assert paid(api) == 2


@pytest.mark.parametrize("limits", [{"confirm_above_credits": 0}])
@pytest.mark.parametrize("action", ["decline", "cancel"])
async def test_declined_or_cancelled_in_the_host_nothing_is_paid(
    client: Client, api: RecordingTransport, sample_image: Path, user: User
) -> None:
    result = await client.call_tool("upscale_v3", {"image": str(sample_image)})

    assert result.is_error
    verb = {"decline": "declined", "cancel": "cancelled"}[user.action]
    assert f"The user {verb} the cost" in text(result)
    assert len(user.questions) == 1
    assert paid(api) == 0


@pytest.mark.parametrize("limits", [{"confirm_above_credits": UNIT_PRICE}])
async def test_a_host_that_cannot_ask_is_refused_with_the_quote_then_let_through_with_confirm_cost(
    client: Client, api: RecordingTransport, folders: dict[str, Path]
) -> None:
    paths = images(folders["images"], 2)

    refused = await batch(client, paths)
    assert refused.is_error
    assert f"confirmCost={2 * UNIT_PRICE}" in text(refused)
    too_little = await batch(client, paths, confirmCost=2 * UNIT_PRICE - 1)
    assert too_little.is_error and "the quote is now" in text(too_little)
    assert paid(api) == 0

    answer = structured(await batch(client, paths, confirmCost=2 * UNIT_PRICE))
    assert all(item["jobId"] for item in answer["images"])
    assert paid(api) == 2


async def test_with_no_limit_set_no_dry_run_is_made(
    client: Client, api: RecordingTransport, sample_image: Path
) -> None:
    structured(await client.call_tool("upscale_v3", {"image": str(sample_image), "wait": 0}))

    assert paid(api) == 1
    assert not any("dryRun" in r.url.params for r in api.requests)
