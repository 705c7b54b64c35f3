"""examples/: the host configurations the README shows, and the folder-upscaling script."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from mcp import Client
from PIL import Image
from pydantic import AliasChoices
from rich.console import Console

from scenario_upscale_mcp.cli import DEFAULT_HTTP_HOST, DEFAULT_HTTP_PORT
from scenario_upscale_mcp.config import Settings
from tests.images import png_bytes

ROOT = Path(__file__).parents[1]
EXAMPLES = ROOT / "examples"
README = ROOT / "README.md"
HOST_CONFIGS = sorted(path for path in EXAMPLES.iterdir() if path.suffix in (".json", ".sh"))
# A snippet in the README, labelled with the file that holds it: a fenced block on the next line,
# or inline code right after the label (in a table cell).
SNIPPET = re.compile(
    r"<!-- example: (?P<path>\S+) -->\s*(?:```[a-z]*\n(?P<block>.*?)```|`(?P<inline>[^`\n]+)`)", re.DOTALL
)
HTTP_URL = f"http://{DEFAULT_HTTP_HOST}:{DEFAULT_HTTP_PORT}/mcp"


def console_script() -> str:
    scripts: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    [(name, target)] = scripts.items()
    assert target == "scenario_upscale_mcp.cli:main"
    return name


def variables_the_server_reads() -> set[str]:
    names = {"SCENARIO_LOG_LEVEL"}
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names |= {choice for choice in alias.choices if isinstance(choice, str)}
        else:
            names.add(f"SCENARIO_{name.upper()}")
    return names


def readme_snippets() -> dict[str, str]:
    snippets: dict[str, str] = {}
    for match in SNIPPET.finditer(README.read_text()):
        assert match["path"] not in snippets, f"{match['path']} is shown twice in the README"
        snippets[match["path"]] = match["block"] if match["block"] is not None else match["inline"]
    return snippets


def shell_words(path: Path) -> list[str]:
    """The command's words, as a POSIX shell splits them (a backslash-newline joins lines)."""
    text = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
    return shlex.split(text.replace("\\\n", " "))


# --- host configurations ---------------------------------------------------------------------------


def test_there_is_a_config_for_every_host() -> None:
    names = {path.name for path in HOST_CONFIGS}
    assert {"claude_desktop_config.json", "claude_code.sh", "cursor_mcp.json", "vscode_mcp.json"} <= names


@pytest.mark.parametrize("path", HOST_CONFIGS, ids=lambda path: path.name)
def test_the_readme_shows_each_config_file_as_it_is(path: Path) -> None:
    snippets = readme_snippets()
    key = f"examples/{path.name}"
    assert key in snippets, f"the README shows no snippet labelled <!-- example: {key} -->"
    if path.suffix == ".json":
        assert json.loads(snippets[key]) == json.loads(path.read_text())
    else:
        assert snippets[key].strip() == path.read_text().strip()


def test_every_labelled_readme_snippet_has_its_file() -> None:
    for key in readme_snippets():
        assert (ROOT / key).is_file(), key


@pytest.mark.parametrize("path", [p for p in HOST_CONFIGS if p.suffix == ".json"], ids=lambda path: path.name)
def test_each_json_config_starts_the_installed_server_or_points_at_its_url(path: Path) -> None:
    config: dict[str, Any] = json.loads(path.read_text())
    servers = config.get("mcpServers") or config["servers"]
    assert list(servers) == ["scenario-upscale"]
    server = servers["scenario-upscale"]
    if "url" in server:
        assert server["url"] == HTTP_URL
        assert server.get("type", "http") == "http"
        return
    if server["command"] == "uvx":  # uv makes the environment: from a clone today, from PyPI once published
        assert server["args"][-1] == console_script()
        assert server["args"][:-1] in ([], ["--from", "/path/to/scenario-upscale-mcp"])
    else:
        assert server["command"].endswith(f"/.venv/bin/{console_script()}")
    env: dict[str, str] = server["env"]
    assert {"SCENARIO_SDK_API_KEY", "SCENARIO_SDK_API_SECRET"} <= set(env)
    assert set(env) <= variables_the_server_reads()
    inputs = {item["id"]: item for item in config.get("inputs", [])}
    for value in env.values():
        if value.startswith("${input:"):
            referenced = inputs[value.removeprefix("${input:").removesuffix("}")]
            assert referenced["type"] == "promptString" and referenced["password"] is True


def test_the_claude_code_command_adds_the_installed_server() -> None:
    words = shell_words(EXAMPLES / "claude_code.sh")
    assert words[:3] == ["claude", "mcp", "add"]
    separator = words.index("--")
    options, name = words[3 : separator - 1], words[separator - 1]
    assert name == "scenario-upscale"
    assert all(word.startswith("-") or options[i - 1].startswith("-") for i, word in enumerate(options)), (
        "every option must come before the server's name"
    )
    assert options[options.index("--transport") + 1] == "stdio"
    env = dict(options[i + 1].split("=", 1) for i, word in enumerate(options) if word in ("--env", "-e"))
    assert {"SCENARIO_SDK_API_KEY", "SCENARIO_SDK_API_SECRET"} <= set(env) <= variables_the_server_reads()
    [command] = words[separator + 1 :]
    assert command.endswith(f"/.venv/bin/{console_script()}")


def test_the_claude_code_http_command_points_at_the_default_endpoint() -> None:
    words = shell_words(EXAMPLES / "claude_code_http.sh")
    assert words[:3] == ["claude", "mcp", "add"]
    assert words[words.index("--transport") + 1] == "http"
    assert words[-2:] == ["scenario-upscale", HTTP_URL]


# --- examples/upscale_folder.py --------------------------------------------------------------------


def load_upscale_folder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("upscale_folder", EXAMPLES / "upscale_folder.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


@pytest.mark.anyio
async def test_upscale_folder_submits_with_wait_0_then_waits_with_bounded_concurrency(
    client: Client, folders: dict[str, Path]
) -> None:
    example = load_upscale_folder()
    for index in range(5):
        (folders["images"] / f"tile{index}.png").write_bytes(png_bytes(32 + index, 32, (index * 40, 90, 30)))
    calls: list[tuple[str, dict[str, Any]]] = []
    in_flight = 0
    most_in_flight = 0
    call_tool = client.call_tool

    async def recording_call_tool(name: str, arguments: dict[str, Any], **options: Any) -> Any:
        nonlocal in_flight, most_in_flight
        calls.append((name, arguments))
        in_flight += 1
        most_in_flight = max(most_in_flight, in_flight)
        try:
            return await call_tool(name, arguments, **options)
        finally:
            in_flight -= 1

    client.call_tool = recording_call_tool  # type: ignore[method-assign,assignment]
    items = [example.Item(image) for image in example.images_in(folders["images"])]
    await example.upscale_folder(
        client,
        items,
        model="upscale_texture",
        arguments={"upscaleFactor": 2},
        concurrency=2,
        seconds=30,
        console=Console(file=io.StringIO()),
    )

    assert [item.error for item in items] == [None] * 5
    submissions = [arguments for name, arguments in calls if name == "upscale_texture"]
    assert len(submissions) == 5 and all(arguments["wait"] == 0 for arguments in submissions)
    waited = {
        job_id for name, arguments in calls if name == "wait_for_jobs" for job_id in arguments["jobIds"]
    }
    assert waited == {item.job_id for item in items}
    assert 1 < most_in_flight <= 2  # concurrent, never beyond the bound
    for index, item in enumerate(items):  # images_in lists them by name: tile0 … tile4
        [output] = item.job["outputs"]
        saved = Path(output["path"])
        assert saved.parent == folders["output"]
        with Image.open(saved) as image:
            assert image.size == (2 * (32 + index), 64)


def run_upscale_folder(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """examples/upscale_folder.py run from the command line, without the developer's SCENARIO_* variables."""
    environment = {name: value for name, value in os.environ.items() if not name.startswith("SCENARIO_")}
    return subprocess.run(
        [sys.executable, str(EXAMPLES / "upscale_folder.py"), *args],
        env=environment | {"COLUMNS": "200"} | env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_upscale_folder_runs_from_the_command_line_against_the_simulator(tmp_path: Path) -> None:
    images, output = tmp_path / "images", tmp_path / "output"
    images.mkdir()
    (images / "a.png").write_bytes(png_bytes(40, 30))
    (images / "b.png").write_bytes(png_bytes(20, 20))
    (images / "notes.txt").write_text("not an image, and not picked up")
    done = run_upscale_folder(
        str(images),
        "--sandbox",
        *("--model", "upscale_v3", "--factor", "2", "--output-dir", str(output)),
        SCENARIO_POLL_INITIAL_SECONDS="0.3",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    saved = sorted(path.name for path in output.iterdir())
    assert [name.split("_upscale-v3_x2_")[0] for name in saved] == ["a", "b"]
    assert f"Saved in: {output}" in done.stdout
    for name in saved:
        assert name in done.stdout


@pytest.mark.slow
def test_upscale_folder_dry_run_prints_the_total_and_submits_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(png_bytes(40, 30))
    done = run_upscale_folder(
        str(tmp_path), "--sandbox", "--dry-run", SCENARIO_OUTPUT_DIR=str(tmp_path / "output")
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"1 images with upscale_v3: \d+ creative units\. Nothing was submitted\.", done.stdout)
    assert not (tmp_path / "output").exists()
