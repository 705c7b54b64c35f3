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
from scenario_upscale_mcp.sandbox.app import Sandbox
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
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def record_calls(client: Client) -> list[tuple[str, dict[str, Any]]]:
    """The tool calls `client` makes from now on, each with its arguments."""
    calls: list[tuple[str, dict[str, Any]]] = []
    call_tool = client.call_tool

    async def recording_call_tool(name: str, arguments: dict[str, Any], **options: Any) -> Any:
        calls.append((name, arguments))
        return await call_tool(name, arguments, **options)

    client.call_tool = recording_call_tool  # type: ignore[method-assign,assignment]
    return calls


def tiles(folder: Path, count: int) -> None:
    for index in range(count):
        (folder / f"tile{index}.png").write_bytes(png_bytes(32 + index, 32, (index * 40, 90, 30)))


@pytest.mark.anyio
async def test_upscale_folder_submits_one_batch_then_waits_for_it_by_its_id(
    client: Client, folders: dict[str, Path]
) -> None:
    example = load_upscale_folder()
    tiles(folders["images"], 5)
    (folders["images"] / "notes.txt").write_text("not an image: skipped, and said so")
    calls = record_calls(client)
    args = example.parse_args([str(folders["images"]), "--model", "upscale_texture", "--pattern", "tile*"])
    arguments = example.batch_arguments(args, folders["images"], None)
    console = Console(file=io.StringIO(), width=200)

    batch, jobs = await example.upscale_folder(client, arguments, seconds=30, console=console)

    [submission] = [arguments for name, arguments in calls if name == "upscale_batch"]
    assert submission["folder"] == str(folders["images"]) and submission["pattern"] == "tile*"
    assert submission["parameters"] == {"upscaleFactor": 2}
    waits = [arguments for name, arguments in calls if name == "wait_for_jobs"]
    assert waits and all(arguments.keys() == {"batchId", "timeout"} for arguments in waits)
    assert {arguments["batchId"] for arguments in waits} == {batch["batchId"]}
    assert [image["image"] for image in batch["images"]] == [f"tile{index}.png" for index in range(5)]
    assert batch["skipped"] == [{"path": "notes.txt", "reason": "does not match tile*"}]
    for index, image in enumerate(batch["images"]):
        [output] = jobs[image["jobId"]]["outputs"]
        saved = Path(output["path"])
        assert saved.parent == folders["output"] / batch["batchId"]  # one folder, named for the batch
        with Image.open(saved) as upscaled:
            assert upscaled.size == (2 * (32 + index), 64)
    assert example.print_results(batch, jobs, console) == 0
    printed = console.file.getvalue()  # type: ignore[attr-defined]
    assert "skipped notes.txt: does not match tile*" in printed
    assert f"Saved in: {folders['output'] / batch['batchId']}" in printed


@pytest.mark.anyio
async def test_upscale_folder_submits_the_rest_of_a_batch_beyond_the_plans_parallel_limit(
    client: Client, sandbox: Sandbox, folders: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    example = load_upscale_folder()
    # Two jobs at once, and calls too short for a job (0.3 s) to end within: the first upscale_batch
    # call cannot submit every image, so the example waits, then sends the same batch again.
    sandbox.faults.plan_limit = 2
    monkeypatch.setattr(example, "WAIT_STEP_SECONDS", 0.1)
    tiles(folders["images"], 5)
    calls = record_calls(client)
    arguments = {"model": "upscale_v3", "folder": str(folders["images"]), "parameters": {"upscaleFactor": 2}}

    batch, jobs = await example.upscale_folder(
        client, arguments, seconds=30, console=Console(file=io.StringIO())
    )

    submissions = [arguments for name, arguments in calls if name == "upscale_batch"]
    assert len(submissions) > 1
    assert all({**submission, "wait": 0} == {**arguments, "wait": 0} for submission in submissions)
    assert batch["notSubmitted"] == 0
    assert [jobs[image["jobId"]]["status"] for image in batch["images"]] == ["success"] * 5
    assert len(sandbox.jobs) == 5  # each image billed once, however often the batch was sent
    assert len(list((folders["output"] / batch["batchId"]).iterdir())) == 5


@pytest.mark.anyio
async def test_upscale_folder_reports_a_failed_job_and_fails(
    client: Client, sandbox: Sandbox, folders: dict[str, Path]
) -> None:
    example = load_upscale_folder()
    sandbox.faults.fail_next_jobs = 1
    tiles(folders["images"], 2)
    arguments = {"model": "upscale_v3", "folder": str(folders["images"])}
    console = Console(file=io.StringIO(), width=200)

    batch, jobs = await example.upscale_folder(client, arguments, seconds=30, console=console)

    assert example.print_results(batch, jobs, console) == 1
    printed = console.file.getvalue()  # type: ignore[attr-defined]
    assert re.search(r"tile\d\.png +│ failed: job \S+ ended failure", printed), printed
    assert "1 of 2 images failed." in printed
    assert len(list((folders["output"] / batch["batchId"]).iterdir())) == 1  # the other one was saved


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
    (images / "more").mkdir(parents=True)
    (images / "a.png").write_bytes(png_bytes(40, 30))
    (images / "b.png").write_bytes(png_bytes(20, 20))
    (images / "more" / "c.png").write_bytes(png_bytes(24, 24))
    (images / "notes.txt").write_text("not an image, and not picked up")
    done = run_upscale_folder(
        str(images),
        "--sandbox",
        *("--model", "upscale_v3", "--factor", "2", "--pattern", "*.png", "--recursive"),
        *("--output-dir", str(output)),
        SCENARIO_POLL_INITIAL_SECONDS="0.3",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    saved = sorted(path.name for path in output.iterdir())
    assert [name.split("_upscale-v3_x2_")[0] for name in saved] == ["a", "b", "c"]  # --output-dir, as is
    assert "skipped notes.txt: does not match *.png" in done.stdout
    assert re.search(r"more/c\.png +│ c_upscale-v3_x2_", done.stdout), done.stdout
    assert f"Saved in: {output}" in done.stdout
    assert re.search(r"upscaling\s+━+ 3 of 3 jobs finished", done.stdout), done.stdout  # the bar, at its end
    for name in saved:
        assert name in done.stdout


@pytest.mark.slow
def test_upscale_folder_dry_run_prints_each_cost_and_the_total_and_submits_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(png_bytes(40, 30))
    (tmp_path / "b.png").write_bytes(png_bytes(20, 20))
    done = run_upscale_folder(
        str(tmp_path), "--sandbox", "--dry-run", SCENARIO_OUTPUT_DIR=str(tmp_path / "output")
    )
    assert done.returncode == 0, done.stdout + done.stderr
    costs = [int(cost) for cost in re.findall(r"[ab]\.png +│ +(\d+) CU", done.stdout)]
    assert len(costs) == 2, done.stdout
    assert f"2 images with upscale_v3: {sum(costs)} creative units. Nothing was submitted." in done.stdout
    assert not (tmp_path / "output").exists()


@pytest.mark.slow
def test_upscale_folder_without_images_says_what_it_skipped_and_fails(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("no pictures here")
    done = run_upscale_folder(str(tmp_path), "--sandbox")
    assert done.returncode == 1
    assert re.search(r"folder: no image in .* notes\.txt: not an image", done.stdout), done.stdout
