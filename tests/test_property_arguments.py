"""Property: any argument set for a model tool is either refused by field with no request, or accepted.

Argument sets are generated from the committed input schemas (tools/scenario_upscale_tools/schemas/),
so every property, bound, enum and list limit the hosts see is exercised, and a property added later
is picked up. Each set starts valid (`image` a real asset id or the sample file, `dryRun: true`) and
has zero to two of its parts broken on purpose: a value out of range, of the wrong type, non-finite,
off the enum, a list over its limit, an unusable `outputDir`, an unknown key, a missing `image`, or
`loras` and `lorasScale` of different lengths. So the test knows, independently of the server, which
sets are valid and which argument makes each invalid one so, and checks:

- a valid set is accepted: a dry-run quote, and only dry-run requests (nothing billed);
- an invalid set is an error whose text names a broken argument (never the bare "Error executing
  tool <name>"), and the API receives no request at all.

Hypothesis with pytest-anyio: an `async def` test decorated with `@given` is run by anyio's plugin,
each example in the same runner (event loop) as the async fixtures. So one `client` (with its
server, sandbox and recording transport) serves every example of a test; what must not leak from one
example to the next is reset in the body (`api.requests`). Hypothesis's health check against
function-scoped fixtures is switched off for that reason, deliberately. NaN and Infinity cannot go
through the in-process client (its JSON serializer writes them as null, which is a valid `seed`), so
a set holding one is sent the way a stdio host sends it instead: Python's json writes `NaN`, and the
server's parser reads it back as a float (`tests.test_validation.call_over_the_wire`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.server.mcpserver import MCPServer

from scenario_upscale_mcp.sandbox.app import Sandbox
from scenario_upscale_mcp.service import Upscaler
from scenario_upscale_tools.inventory import SCHEMAS
from tests.conftest import RecordingTransport
from tests.images import png_bytes
from tests.test_validation import call_over_the_wire

pytestmark = pytest.mark.anyio

MODEL_TOOLS = ("upscale_v3", "upscale_texture")
SCHEMA = {name: json.loads((SCHEMAS / f"{name}.json").read_text())["inputSchema"] for name in MODEL_TOOLS}
ASSET, SAMPLE = "<asset id>", "<sample image path>"  # replaced by the real ones in the test body
EXTRA_ITEMS = 3  # how far past maxItems an over-long list goes


@dataclass(frozen=True)
class Case:
    arguments: dict[str, Any]
    broken: frozenset[str]  # the arguments that make the set invalid; empty for a valid set


# --- what a schema property allows ------------------------------------------------------------------


def _arms(prop: dict[str, Any]) -> list[dict[str, Any]]:
    arms: list[dict[str, Any]] = prop.get("anyOf", [prop])
    return arms


def _nullable(prop: dict[str, Any]) -> bool:
    return any(arm.get("type") == "null" for arm in _arms(prop))


def _main(prop: dict[str, Any]) -> dict[str, Any]:
    """The non-null arm (pydantic writes `X | None` as anyOf [X, null]); description etc. from the top."""
    [arm] = [arm for arm in _arms(prop) if arm.get("type") != "null"]
    return {**prop, **arm}


def _as_text(value: float) -> str:
    """A number as JSON-number text, which the server reads as that number."""
    return json.dumps(value)


def _image_items() -> st.SearchStrategy[str]:
    return st.sampled_from([ASSET, SAMPLE])


def valid_value(name: str, prop: dict[str, Any]) -> st.SearchStrategy[Any]:
    main = _main(prop)
    kind = main.get("type")
    options: list[st.SearchStrategy[Any]] = []
    if name == "dryRun":
        return st.just(True)  # the one valid value here: nothing may be billed
    if name == "outputDir":
        options.append(st.sampled_from(["props", "props/x2", "out"]))
    elif "enum" in main:
        options.append(st.sampled_from(main["enum"]))
    elif kind == "boolean":
        options.append(st.booleans())
    elif kind == "string":
        options.append(st.text(max_size=40))
    elif kind in ("number", "integer"):
        low, high = main.get("minimum", -1e6), main.get("maximum", 1e6)
        if kind == "integer":
            whole = st.integers(math.ceil(low), math.floor(high))
            options += [whole, whole.map(float), whole.map(str), whole.map(lambda n: _as_text(float(n)))]
        else:
            real = st.floats(low, high, allow_nan=False, allow_infinity=False)
            options += [real, st.integers(math.ceil(low), math.floor(high)), real.map(_as_text)]
    elif kind == "array":
        items = main["items"]
        limit = main.get("maxItems", 4)
        if name in ("styleImages", "imagePrompt"):
            item: st.SearchStrategy[Any] = _image_items()
        elif items.get("type") == "number":
            number = st.floats(-10, 10, allow_nan=False)
            item = st.one_of(number, number.map(_as_text))
        else:
            item = st.from_regex(r"model_[a-z0-9]{1,8}", fullmatch=True)
        listed = st.lists(item, max_size=limit)
        options += [listed, listed.map(json.dumps)]  # a list may come as JSON text (pre_parse_json)
    else:
        raise AssertionError(f"no generator for {name}: {prop}")
    if _nullable(prop):
        options.append(st.none())
    return st.one_of(options)


# Text that is not exactly a JSON number: the first ones are what pydantic's lax mode would have read
# as numbers. (Within each list of options below, what a lax validator would accept comes first: the
# first examples Hypothesis tries, and what it shrinks a failure to, are the first options.)
NOT_NUMBERS = st.sampled_from([" 1", "+1", "1_0", "1 ", "NaN", "Infinity", "1e999", "abc", "4px", "0x1", ""])
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])
WRONG_SHAPES = st.sampled_from([[1], {"a": 1}])


def invalid_value(name: str, prop: dict[str, Any]) -> st.SearchStrategy[Any]:
    main = _main(prop)
    kind = main.get("type")
    options: list[st.SearchStrategy[Any]] = []
    if name == "dryRun" or kind == "boolean":
        options.append(st.sampled_from(["true", "false", 0, 1, 1.0, 0.0, "True", "yes", "0", "1"]))
    elif name == "outputDir":
        options += [
            st.sampled_from(["a\x00b", "~nosuchuser-scenario-test/x", "a" * 300, "/etc/not-allowed"]),
            st.integers(),
            st.booleans(),
        ]
    elif "enum" in main:
        options += [
            st.sampled_from([value.upper() for value in main["enum"] if value.upper() != value] or ["X"]),
            st.text(max_size=12).filter(lambda text: text not in main["enum"]),
            st.integers(),
        ]
    elif kind == "string":
        options += [st.integers(), st.floats(allow_nan=False), st.booleans()]
    elif kind in ("number", "integer"):
        low, high = main.get("minimum"), main.get("maximum")
        options += [st.booleans(), NOT_NUMBERS, NON_FINITE]
        if kind == "integer":
            options.append(
                st.floats(low or 0, high or 100, allow_nan=False).filter(lambda x: not x.is_integer())
            )
        if low is not None:
            options.append(st.floats(max_value=low, exclude_max=True, allow_nan=False, allow_infinity=False))
        if high is not None:
            options.append(st.floats(min_value=high, exclude_min=True, allow_nan=False, allow_infinity=False))
    elif kind == "array":
        items = main["items"]
        if name in ("styleImages", "imagePrompt"):
            valid_item: st.SearchStrategy[Any] = _image_items()
            bad_item: st.SearchStrategy[Any] = st.sampled_from([42, True, "", None])
        elif items.get("type") == "number":
            valid_item = st.floats(-10, 10, allow_nan=False)
            bad_item = st.one_of(NON_FINITE, st.booleans(), NOT_NUMBERS, st.none())
        else:
            valid_item = st.just("model_a")
            bad_item = st.sampled_from([3, False, "", None])
        options.append(
            st.tuples(st.lists(valid_item, max_size=2), bad_item, st.lists(valid_item, max_size=2)).map(
                lambda parts: [*parts[0], parts[1], *parts[2]]
            )
        )
        if "maxItems" in main:
            limit = main["maxItems"]
            options.append(st.lists(valid_item, min_size=limit + 1, max_size=limit + EXTRA_ITEMS))
        options += [st.integers(), st.booleans(), st.just("not a list")]
    else:
        raise AssertionError(f"no invalid generator for {name}: {prop}")
    if not _nullable(prop):
        options.append(st.none())
    # A list where a list of numbers is wanted is the right shape ([1] is a valid lorasScale).
    options.append(WRONG_SHAPES if kind != "array" else st.just({"a": 1}))
    return st.one_of(options)


# --- whole argument sets ----------------------------------------------------------------------------

UNKNOWN_KEYS = st.one_of(
    st.sampled_from(["upscale_factor", "given", "targetWidth", "dry_run", "Image"]),
    st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,15}", fullmatch=True),
)


@st.composite
def argument_sets(draw: st.DrawFn, tool: str) -> Case:
    schema = SCHEMA[tool]
    props: dict[str, dict[str, Any]] = schema["properties"]
    paired = ("loras", "lorasScale") if "lorasScale" in props else ()
    breakable = [*sorted(set(props) - {"image"}), "<unknown key>", "<no image>"]
    if paired:
        breakable.append("<lengths differ>")
    to_break = draw(st.lists(st.sampled_from(breakable), unique=True, max_size=2))

    arguments: dict[str, Any] = {"image": draw(_image_items()), "dryRun": True}
    broken: set[str] = set()
    for name, prop in props.items():
        if name in ("image", *paired):
            continue
        if name in to_break:
            arguments[name] = draw(invalid_value(name, prop))
            broken.add(name)
        elif name != "dryRun" and draw(st.booleans()):
            arguments[name] = draw(valid_value(name, prop))

    if paired:
        count = draw(st.integers(0, 3))
        loras = draw(
            st.lists(st.from_regex(r"model_[a-z0-9]{1,8}", fullmatch=True), min_size=count, max_size=count)
        )
        scales = draw(st.lists(st.floats(-5, 5, allow_nan=False), min_size=count, max_size=count))
        if "<lengths differ>" in to_break:
            scales = [*scales, 0.5] if draw(st.booleans()) or not scales else scales[:-1]
            broken |= {"loras", "lorasScale"}
        if count or draw(st.booleans()) or "<lengths differ>" in to_break:
            arguments["loras"], arguments["lorasScale"] = loras, scales
        for name in paired:
            if name in to_break:
                arguments[name] = draw(invalid_value(name, props[name]))
                broken.add(name)

    if "<unknown key>" in to_break:
        key = draw(UNKNOWN_KEYS.filter(lambda key: key not in props))
        arguments[key] = draw(st.one_of(st.integers(), st.text(max_size=5), st.booleans()))
        broken.add(key)
    if "<no image>" in to_break:
        del arguments["image"]
        broken.add("image")
    return Case(arguments, frozenset(broken))


def _non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    return isinstance(value, list) and any(_non_finite(item) for item in value)


def names_an_argument(text: str, names: frozenset[str]) -> bool:
    """Pydantic puts an argument's location on its own line (`lorasScale.0`); the server's own
    refusals start with `name: `."""
    return any(re.search(rf"(^|\n|: ){re.escape(name)}(\.\d+)?(\n|: )", text) for name in names)


# --- the property -----------------------------------------------------------------------------------


@pytest.fixture
def asset_id(sandbox: Sandbox) -> str:
    return sandbox.add_asset(png_bytes(), "castle.png")


def _fill(value: Any, asset_id: str, sample: str) -> Any:
    if value == ASSET:
        return asset_id
    if value == SAMPLE:
        return sample
    if isinstance(value, list):
        return [_fill(item, asset_id, sample) for item in value]
    if isinstance(value, str) and (ASSET in value or SAMPLE in value):  # a list as JSON text
        return value.replace(ASSET, asset_id).replace(SAMPLE, sample)
    return value


async def check(
    client: Client,
    server: MCPServer[Upscaler],
    api: RecordingTransport,
    tool: str,
    case: Case,
    asset_id: str,
    sample: str,
) -> None:
    arguments = {key: _fill(value, asset_id, sample) for key, value in case.arguments.items()}
    event("valid" if not case.broken else f"invalid: {len(case.broken)} argument(s) broken")
    api.requests.clear()
    if any(_non_finite(value) for value in arguments.values()):
        # The in-process client would send NaN as null (a valid `seed`): send it as a stdio host does.
        event("sent as a stdio host sends NaN and Infinity")
        assert case.broken
        text = await call_over_the_wire(server, tool, arguments)
        assert names_an_argument(text, case.broken), f"{sorted(case.broken)} not named in: {text}"
        assert api.requests == [], f"requests made for invalid arguments {arguments!r}"
        return
    result = await client.call_tool(tool, arguments)
    text = "".join(getattr(block, "text", "") for block in result.content)

    assert text != f"Error executing tool {tool}", f"a bare error for {arguments!r}"
    if case.broken:
        assert result.is_error, f"accepted invalid arguments {arguments!r}: {text}"
        assert names_an_argument(text, case.broken), f"{sorted(case.broken)} not named in: {text}"
        assert api.requests == [], f"requests made for invalid arguments {arguments!r}"
    else:
        assert not result.is_error, f"refused valid arguments {arguments!r}: {text}"
        assert result.structured_content is not None
        assert result.structured_content["dryRun"] is True
        generate = [r for r in api.requests if "/generate/" in r.url.path]
        assert generate and all(r.url.params.get("dryRun") == "true" for r in generate)


PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@PROPERTY_SETTINGS
@given(case=argument_sets("upscale_v3"))
async def test_upscale_v3_arguments_are_refused_by_field_or_accepted(
    client: Client,
    server: MCPServer[Upscaler],
    api: RecordingTransport,
    asset_id: str,
    sample_image: Path,
    case: Case,
) -> None:
    await check(client, server, api, "upscale_v3", case, asset_id, str(sample_image))


@PROPERTY_SETTINGS
@given(case=argument_sets("upscale_texture"))
async def test_upscale_texture_arguments_are_refused_by_field_or_accepted(
    client: Client,
    server: MCPServer[Upscaler],
    api: RecordingTransport,
    asset_id: str,
    sample_image: Path,
    case: Case,
) -> None:
    await check(client, server, api, "upscale_texture", case, asset_id, str(sample_image))


@pytest.mark.parametrize("tool", MODEL_TOOLS)
def test_the_generators_cover_every_schema_property(tool: str) -> None:
    """Each property has a valid and an invalid generator (a new property must get one: either raises
    for a kind it has no branch for)."""
    for name, prop in SCHEMA[tool]["properties"].items():
        if name != "image":
            assert not valid_value(name, prop).is_empty, f"no valid values for {tool}.{name}"
            assert not invalid_value(name, prop).is_empty, f"no invalid values for {tool}.{name}"
