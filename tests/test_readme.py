"""The README's tool table is generated from the server's own tool list, and must stay in step with it.

To rewrite it after changing a tool: UPDATE_README=1 pytest tests/test_readme.py
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from mcp import Client

from scenario_upscale_tools.inventory import for_the_model

pytestmark = pytest.mark.anyio

README = Path(__file__).parents[1] / "README.md"
TABLE = re.compile(r"(<!-- tools:start[^\n]*-->\n)(.*?)(<!-- tools:end -->)", re.DOTALL)


def yes_no(value: bool | None) -> str:
    return "yes" if value else "no"


async def test_the_tool_table_matches_the_server(client: Client) -> None:
    rows = ["| tool | what it does | read-only | idempotent |", "|---|---|---|---|"]
    # The model's tools: an app-only one (view_region, the viewer's) is described in prose instead.
    for tool in (await client.list_tools()).tools:
        if not for_the_model(tool.meta):
            continue
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
        assert "command" in servers["scenario-upscale"]  # what it runs: tests/test_examples.py


def test_ci_runs_the_readme_test_command() -> None:
    text = README.read_text()
    command = re.search(r"# 2\. [^\n]*\n([^\n]+)\n", text)
    assert command, "the README's second command is missing"
    ci = (Path(__file__).parents[1] / ".ci" / "run").read_text()
    assert command.group(1).strip() in ci


# --- the first five minutes: the commands the README gives must be the ones that exist ---------------

TWO_COMMANDS = re.compile(r"# (?P<number>[12])\. [^\n]*\n(?P<command>[^\n]+)\n")
SETUP = re.compile(r"python3 -m venv \.venv && \.venv/bin/pip install -q -e (?P<target>\S+) && (?P<run>.+)")


def readme_command(number: str) -> re.Match[str]:
    commands = {match["number"]: match["command"] for match in TWO_COMMANDS.finditer(README.read_text())}
    shape = SETUP.fullmatch(commands[number])
    assert shape, f"README command {number} lost its shape: {commands[number]}"
    return shape


def test_the_readme_first_command_installs_and_runs_the_demo() -> None:
    from scenario_upscale_mcp.cli import build_parser

    command = readme_command("1")
    assert command["target"] == "."
    program, *arguments = command["run"].split()
    assert program == ".venv/bin/scenario-upscale-mcp"
    args = build_parser().parse_args(arguments)
    assert args.command == "demo" and not args.real and args.images == []


def test_the_readme_second_command_installs_the_dev_tools_and_runs_pytest() -> None:
    command = readme_command("2")
    assert command["target"] == '".[dev]"' and command["run"] == ".venv/bin/pytest"


def test_the_demo_options_the_readme_names_exist() -> None:
    from scenario_upscale_mcp.cli import build_parser

    text = README.read_text()
    for option in ("--real", "--yes", "--output-dir"):
        assert f"`{option}`" in text, option
    args = build_parser().parse_args(["demo", "a.png", "--real", "--yes", "--output-dir", "out"])
    assert (args.images, args.real, args.yes, args.output_dir) == (["a.png"], True, True, "out")


def test_the_readme_http_command_is_what_the_cli_accepts() -> None:
    from scenario_upscale_mcp.cli import DEFAULT_HTTP_HOST, DEFAULT_HTTP_PORT, build_parser

    text = README.read_text()
    [line] = re.findall(r"^\.venv/bin/scenario-upscale-mcp --transport http[^\n]*$", text, re.MULTILINE)
    args = build_parser().parse_args(line.split()[1:])
    assert (args.transport, args.host, args.port) == ("http", DEFAULT_HTTP_HOST, DEFAULT_HTTP_PORT)
    assert f"http://{DEFAULT_HTTP_HOST}:{DEFAULT_HTTP_PORT}/mcp" in text


async def test_the_readme_inspector_commands_call_real_tools_with_real_arguments(client: Client) -> None:
    import shlex

    text = README.read_text()
    blocks = [
        shlex.split(command.replace("\\\n", " "))
        for command in re.findall(
            r"^npx -y @modelcontextprotocol/inspector@2 --cli (?:.+\\\n)*.+$", text, re.MULTILINE
        )
    ]
    stdio = [words for words in blocks if "--" in words]
    assert {words[words.index("--method") + 1] for words in stdio} == {"tools/list", "tools/call"}
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    for words in stdio:
        assert words[words.index("--") + 1 :] == ["$PWD/.venv/bin/scenario-upscale-mcp"]
        assert "SCENARIO_SANDBOX=1" in words  # against the simulator: nothing billed
        if "--tool-name" in words:
            tool = tools[words[words.index("--tool-name") + 1]]
            given = {words[i + 1].split("=", 1)[0] for i, word in enumerate(words) if word == "--tool-arg"}
            assert given <= set(tool.input_schema["properties"]), given
            assert "dryRun" in given
