"""Inputs the operating system or the ledger cannot take: each refused by name, before any request.

Paths with a NUL byte, a `~user` that does not exist, an output folder that is a symlink loop or
whose name is too long, and ledger rows edited by hand used to end in a bare "Error executing tool
<name>" (an unexpected exception, masked by the SDK). Each must instead say what was wrong, with
which argument (or which ledger row), and send nothing.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from scenario_upscale_mcp.config import Settings
from scenario_upscale_mcp.jobs.ledger import FILE_NAME, Ledger, LedgerError
from tests.conftest import RecordingTransport

pytestmark = pytest.mark.anyio

NO_SUCH_USER = "~nosuchuser-scenario-test"


async def refusal(client: Client, tool: str, arguments: dict[str, Any]) -> str:
    result = await client.call_tool(tool, arguments)
    assert result.is_error, result.content
    text: str = result.content[0].text  # type: ignore[union-attr]
    assert text != f"Error executing tool {tool}", "a bare error: the message says nothing"
    return text


# --- image references -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "field", "expected"),
    [
        ({"image": "/tmp/a\x00b.png"}, "image", "NUL"),
        ({"image": "file:///tmp/a%00b.png"}, "image", "NUL"),
        ({"image": "asset_a", "styleImages": ["asset_b", "/x/\x00.png"]}, "styleImages[1]", "NUL"),
        ({"image": f"{NO_SUCH_USER}/x.png"}, "image", "no user"),
        ({"image": "https://exa\x00mple.com/a.png"}, "image", "control character"),
        ({"image": "https://example.com/a\x07.png"}, "image", "control character"),
    ],
    ids=["nul-path", "nul-file-uri", "nul-style-image", "unknown-user", "nul-url", "bell-url"],
)
async def test_an_unusable_image_reference_is_refused_by_field(
    client: Client, api: RecordingTransport, arguments: dict[str, Any], field: str, expected: str
) -> None:
    text = await refusal(client, "upscale_v3", arguments)

    assert f"{field}: " in text and expected in text, text
    assert api.requests == []


async def test_an_unknown_user_is_refused_by_upload_image_too(
    client: Client, api: RecordingTransport
) -> None:
    text = await refusal(client, "upload_image", {"image": f"{NO_SUCH_USER}/x.png"})

    assert f"image: cannot expand '{NO_SUCH_USER}'" in text, text
    assert api.requests == []


# --- output folders -------------------------------------------------------------------------------


@pytest.fixture
def loops(folders: dict[str, Path]) -> Path:
    """`loop` points at itself; `ping` and `pong` at each other."""
    output = folders["output"]
    (output / "loop").symlink_to("loop")
    (output / "ping").symlink_to("pong")
    (output / "pong").symlink_to("ping")
    return output


LONG_NAME = "a" * 300  # over NAME_MAX (255 bytes on Linux and macOS)
LONG_PATH = "/".join(["b" * 200] * 25)  # each name fine, the whole over PATH_MAX (4096)


@pytest.mark.parametrize(
    ("output_dir", "expected"),
    [
        ("props\x00x2", "NUL"),
        (f"{NO_SUCH_USER}/out", "no user"),
        ("loop", "symbolic link loop"),
        ("loop/x2", "symbolic link loop"),
        ("ping/x2", "symbolic link loop"),
        (LONG_NAME, "300 bytes long"),
        (f"props/{LONG_NAME}/x2", "300 bytes long"),
        (LONG_PATH, "bytes long"),
    ],
    ids=[
        "nul",
        "unknown-user",
        "self-loop",
        "inside-loop",
        "two-link-loop",
        "long-name",
        "long-inner-name",
        "long-path",
    ],
)
@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("upscale_v3", {"image": "asset_a"}),
        ("upscale_texture", {"image": "asset_a", "dryRun": True}),
        ("wait_for_jobs", {"jobIds": ["job_a"]}),
        ("download_assets", {"assetIds": ["asset_a"]}),
    ],
    ids=["upscale_v3", "upscale_texture", "wait_for_jobs", "download_assets"],
)
async def test_an_unusable_output_dir_is_refused_by_field_before_any_request(
    client: Client,
    api: RecordingTransport,
    loops: Path,
    tool: str,
    arguments: dict[str, Any],
    output_dir: str,
    expected: str,
) -> None:
    text = await refusal(client, tool, {**arguments, "outputDir": output_dir})

    assert "outputDir: " in text and expected in text, text
    assert api.requests == []


async def test_a_long_but_legal_output_dir_still_works(
    client: Client, sample_image: Path, folders: dict[str, Path]
) -> None:
    name = "c" * 255  # exactly NAME_MAX
    result = await client.call_tool("upscale_v3", {"image": str(sample_image), "outputDir": name, "wait": 20})

    assert not result.is_error, result.content
    assert result.structured_content is not None
    assert Path(result.structured_content["outputs"][0]["path"]).parent == folders["output"] / name


# --- ledger rows edited by hand -------------------------------------------------------------------

# (column, value written by hand, what the error names)
DAMAGE: list[tuple[str, Any, str]] = [
    ("parameters", "{not json", "parameters is not JSON"),
    ("inputs", "[1, 2]", "inputs should hold a JSON object"),
    ("outputs", '{"assetId": "asset_a"}', "outputs should hold a JSON array"),
    ("outputs", '[{"assetId": 5}]', "outputs entry 0"),
    ("outputs", '[{"assetId": "asset_a", "colour": "red"}]', "outputs entry 0"),
    ("outputs", "[[1]]", "outputs entry 0"),
    ("status", "", "status"),
    ("status", "Done!", "status"),
    ("status", 42, "status"),
    ("progress", "half", "progress"),
    ("cost", "lots", "cost"),
    ("created_at", "yesterday", "created_at"),
    ("upscale_factor", "big", "upscale_factor"),
    ("model", b"\x00\x01", "model"),
    ("error", b"\xff", "error"),  # a BLOB: a number in a TEXT column would become text
]
DAMAGE_IDS = [f"{column}-{value!r}"[:40] for column, value, _ in DAMAGE]


def damage(path: Path, job_id: str, column: str, value: Any) -> None:
    """Edit one row the way a user with the sqlite3 shell might."""
    with closing(sqlite3.connect(path)) as db, db:
        db.execute(f"UPDATE jobs SET {column} = ? WHERE job_id = ?", (value, job_id))


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger.in_folder(tmp_path / "state") as opened:
        yield opened


def add_job(ledger: Ledger, job_id: str, *, key: str | None = None) -> None:
    ledger.record_submission(
        job_id=job_id,
        model="model_upscale-v3",
        parameters={"image": "castle.png"},
        inputs={"image": "asset_castle"},
        request_key=key,
        source_stem="castle",
        upscale_factor=2.0,
        status="in-progress",
        progress=0.5,
        cost=None,
    )


@pytest.mark.parametrize(("column", "value", "named"), DAMAGE, ids=DAMAGE_IDS)
def test_a_damaged_job_row_is_named_when_read_and_left_out_of_lists(
    ledger: Ledger, caplog: pytest.LogCaptureFixture, column: str, value: Any, named: str
) -> None:
    for job_id in ("job_before", "job_damaged", "job_after"):
        add_job(ledger, job_id, key="key-damaged" if job_id == "job_damaged" else None)
    damage(ledger.path, "job_damaged", column, value)

    with pytest.raises(LedgerError) as raised:
        ledger.get_job("job_damaged")
    message = str(raised.value)
    assert "'job_damaged'" in message and named in message, message
    assert "edited by hand" in message and "SCENARIO_STATE_DIR" in message
    with pytest.raises(LedgerError):
        ledger.find_reusable("key-damaged")  # never silently treated as "no earlier job": money is at stake

    with caplog.at_level(logging.WARNING, logger="scenario_upscale_mcp.jobs.ledger"):
        listed = [r.job_id for r in ledger.list_jobs()]
        in_flight = [r.job_id for r in ledger.jobs_in_flight()]
    assert set(listed) == {"job_before", "job_after"}
    assert set(in_flight) == {"job_before", "job_after"}
    assert ledger.get_job("job_before") is not None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and all("'job_damaged'" in w and named in w for w in warnings), warnings


def test_a_status_the_server_does_not_know_is_kept_and_treated_as_running(
    ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    """Well-formed but unknown: the API may add statuses (answers.Job treats one as running), so the
    row stays usable, with a warning once."""
    add_job(ledger, "job_new_status")
    damage(ledger.path, "job_new_status", "status", "moderating")

    with caplog.at_level(logging.WARNING, logger="scenario_upscale_mcp.jobs.ledger"):
        records = ledger.list_jobs() + ledger.list_jobs()
    assert [r.status for r in records] == ["moderating", "moderating"]
    assert not records[0].is_terminal
    warnings = [r.getMessage() for r in caplog.records if "moderating" in r.getMessage()]
    assert len(warnings) == 1 and "'job_new_status'" in warnings[0]


@pytest.mark.parametrize(
    ("column", "value", "named"),
    [
        ("inputs", "{oops", "inputs is not JSON"),
        ("sent_at", "soon", "sent_at"),
        ("outcome", "maybe", "outcome"),
    ],
)
def test_a_damaged_attempt_row_is_named_when_read(
    ledger: Ledger, column: str, value: Any, named: str
) -> None:
    attempt = ledger.begin_attempt(request_key="key-a", model="model_upscale-v3", inputs={"image": "asset_a"})
    with closing(sqlite3.connect(ledger.path)) as db, db:
        db.execute("PRAGMA ignore_check_constraints = ON")  # the outcome column's CHECK, bypassed by hand
        db.execute(f"UPDATE attempts SET {column} = ? WHERE attempt_id = ?", (value, attempt.attempt_id))

    with pytest.raises(LedgerError) as raised:
        ledger.get_attempt(attempt.attempt_id)
    message = str(raised.value)
    assert f"attempt {attempt.attempt_id}" in message and named in message, message


async def test_list_jobs_and_get_job_keep_working_around_a_damaged_row(
    client: Client,
    api: RecordingTransport,
    sample_image: Path,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    submitted = await client.call_tool("upscale_v3", {"image": str(sample_image), "wait": 0})
    assert not submitted.is_error, submitted.content
    assert submitted.structured_content is not None
    good = submitted.structured_content["jobId"]
    path = settings.state_dir / FILE_NAME
    with Ledger(path) as other:  # the hand-edited row, as another server (or a user) left it
        add_job(other, "job_hand_edited")
    damage(path, "job_hand_edited", "outputs", "[oops")

    with caplog.at_level(logging.WARNING, logger="scenario_upscale_mcp.jobs.ledger"):
        listed = await client.call_tool("list_jobs", {})
    assert not listed.is_error, listed.content
    assert listed.structured_content is not None
    assert [job["jobId"] for job in listed.structured_content["jobs"]] == [good]
    assert any("'job_hand_edited'" in r.getMessage() for r in caplog.records)

    fresh = await client.call_tool("get_job", {"jobId": good})
    assert not fresh.is_error, fresh.content
    assert fresh.structured_content is not None and fresh.structured_content["jobId"] == good
