"""The README's tool table is generated from the server's own tool list, and must stay in step with it.

To rewrite it after changing a tool: UPDATE_README=1 pytest tests/test_readme.py
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from mcp import Client

pytestmark = pytest.mark.anyio

README = Path(__file__).parents[1] / "README.md"
TABLE = re.compile(r"(<!-- tools:start[^\n]*-->\n)(.*?)(<!-- tools:end -->)", re.DOTALL)


def yes_no(value: bool | None) -> str:
    return "yes" if value else "no"


async def test_the_tool_table_matches_the_server(client: Client) -> None:
    rows = ["| tool | what it does | read-only | idempotent |", "|---|---|---|---|"]
    for tool in (await client.list_tools()).tools:
        summary = " ".join((tool.description or "").split("\n\n")[0].split())
        annotations = tool.annotations
        assert annotations is not None
        rows.append(
            f"| `{tool.name}` | {summary} | {yes_no(annotations.read_only_hint)} | {yes_no(annotations.idempotent_hint)} |"
        )
    expected = "\n".join(rows) + "\n"
    text = README.read_text()
    match = TABLE.search(text)
    assert match, "the README lost its tools:start/tools:end markers"
    if os.environ.get("UPDATE_README") == "1":
        README.write_text(text[: match.start(2)] + expected + text[match.end(2) :])
        return
    assert match.group(2) == expected, (
        "README tool table is stale: run UPDATE_README=1 pytest tests/test_readme.py"
    )


def test_the_readme_documents_every_setting() -> None:
    from scenario_upscale_mcp.config import Settings

    text = README.read_text()
    for name in Settings.model_fields:
        if name in ("api_key", "api_secret"):
            continue
        assert f"SCENARIO_{name.upper()}" in text, name
    for name in ("SCENARIO_SDK_API_KEY", "SCENARIO_SDK_API_SECRET", "SCENARIO_API_KEY", "SCENARIO_LOG_LEVEL"):
        assert name in text


def test_the_readme_json_snippets_parse() -> None:
    import json

    blocks = re.findall(r"```json\n(.*?)```", README.read_text(), re.DOTALL)
    assert len(blocks) >= 2
    for block in blocks:
        config = json.loads(block)
        servers = config.get("mcpServers") or config.get("servers")
        assert servers["scenario-upscale"]["command"].endswith("/.venv/bin/scenario-upscale-mcp")


def test_ci_runs_the_readme_test_command() -> None:
    text = README.read_text()
    command = re.search(r"# 2\. [^\n]*\n([^\n]+)\n", text)
    assert command, "the README's second command is missing"
    ci = (Path(__file__).parents[1] / ".ci" / "run").read_text()
    assert command.group(1).strip() in ci
