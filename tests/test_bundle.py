"""The MCP Bundle for Claude Desktop (manifest.json, .mcpbignore, icon.png): the official `mcpb` CLI
validates the manifest and packs the bundle, and the unpacked bundle, started exactly as its manifest
tells a host to start it, serves the tools and upscales over stdio.

The bundle is built as the README says: npx -y @anthropic-ai/mcpb@2 pack . scenario-upscale.mcpb
After a change to the tools: UPDATE_MANIFEST=1 pytest tests/test_bundle.py (rewrites the manifest's list).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.types import Tool

from scenario_upscale_mcp import __version__
from scenario_upscale_mcp.config import Settings
from scenario_upscale_tools.inventory import for_the_model
from tests.images import png_bytes
from tests.servers import structured

ROOT = Path(__file__).resolve().parents[1]
MCPB = "@anthropic-ai/mcpb@2"  # the CLI's major version is pinned: its schema for manifest 0.4 is the one checked
NPX = shutil.which("npx")
needs_npx = pytest.mark.skipif(
    NPX is None, reason="npx (Node.js) is not on PATH: the official mcpb CLI runs through it (CI has it)"
)
MANIFEST = ROOT / "manifest.json"
BUNDLE_TOP_LEVEL = {"manifest.json", "icon.png", "pyproject.toml", "README.md", "server", "tools"}


def manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(MANIFEST.read_text(encoding="utf-8"))
    return loaded


def mcpb(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    assert NPX is not None
    return subprocess.run(
        [NPX, "-y", MCPB, *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


# How a host turns the manifest's `mcp_config` into a command: the reference implementation is
# `getMcpConfigForManifest` in @anthropic-ai/mcpb (src/shared/config.ts), the code Claude Desktop uses.

PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")
WHOLE_USER_CONFIG = re.compile(r"\$\{(user_config\.[^}]+)\}")
Value = str | list[str]


def host_variables(bundle: dict[str, Any], bundle_dir: Path, answers: dict[str, Any]) -> dict[str, Value]:
    """The form's answers over the manifest's defaults (a default is used as written: hosts do not
    expand `${HOME}` in it), booleans as "true"/"false", lists kept as lists; and the host's own."""
    values = {key: option["default"] for key, option in bundle["user_config"].items() if "default" in option}
    values.update(answers)
    home = Path.home()
    variables: dict[str, Value] = {
        "__dirname": str(bundle_dir),
        "pathSeparator": os.sep,
        "/": os.sep,
        "HOME": str(home),
        "DESKTOP": str(home / "Desktop"),
        "DOCUMENTS": str(home / "Documents"),
        "DOWNLOADS": str(home / "Downloads"),
    }
    for key, value in values.items():
        if isinstance(value, list):
            variables[f"user_config.{key}"] = [str(item) for item in value]
        elif isinstance(value, bool):
            variables[f"user_config.{key}"] = "true" if value else "false"
        else:
            variables[f"user_config.{key}"] = str(value)
    return variables


def substitute(value: Any, variables: dict[str, Value]) -> Any:
    """`${…}` replaced as the host does. In a string, a list value is not substituted (the placeholder
    stays, with a warning): a list goes only in `args`, where an argument that is exactly
    `${user_config.KEY}` expands into one argument per item. There, a missing or empty value leaves the
    argument as written (JavaScript's truthiness: "" is false, [] is true)."""
    if isinstance(value, str):
        return PLACEHOLDER.sub(
            lambda m: found if isinstance(found := variables.get(m[1]), str) else m[0], value
        )
    if isinstance(value, dict):
        return {key: substitute(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        expanded: list[Any] = []
        for item in value:
            whole = WHOLE_USER_CONFIG.fullmatch(item) if isinstance(item, str) else None
            if whole is None:
                expanded.append(substitute(item, variables))
                continue
            found = variables.get(whole[1])
            if isinstance(found, list):
                expanded.extend(found)
            else:
                expanded.append(found or item)
        return expanded
    return value


def host_config(bundle: dict[str, Any], bundle_dir: Path, answers: dict[str, Any]) -> dict[str, Any]:
    """The command, arguments and environment a host runs for this form's answers."""
    config: dict[str, Any] = substitute(
        bundle["server"]["mcp_config"], host_variables(bundle, bundle_dir, answers)
    )
    return config


def test_the_manifest_has_the_package_version() -> None:
    assert manifest()["version"] == __version__


def listed(tools: list[Tool]) -> list[dict[str, str]]:
    """The manifest's `tools`: each tool the model calls with the first paragraph of its description (an
    app-only tool, view_region, only serves the viewer: not one a user installs the bundle for)."""
    return [
        {"name": tool.name, "description": (tool.description or "").split("\n\n")[0]}
        for tool in tools
        if for_the_model(tool.meta)
    ]


@pytest.mark.anyio
async def test_the_manifest_lists_the_servers_tools(client: Client) -> None:
    expected = listed((await client.list_tools()).tools)
    if os.environ.get("UPDATE_MANIFEST") == "1":
        MANIFEST.write_text(
            json.dumps({**manifest(), "tools": expected}, indent=2, ensure_ascii=False) + "\n"
        )
    assert manifest()["tools"] == expected, (
        "manifest.json's tools are stale: UPDATE_MANIFEST=1 pytest tests/test_bundle.py"
    )


FORM_LEFT_AS_IS: dict[str, Any] = {}
FORM_FILLED_IN = {
    "api_key": "key",
    "api_secret": "secret",
    "sandbox": False,
    "allowed_dirs": ["/art", "/game textures"],
    "output_dir": "/upscaled",
}


@pytest.mark.parametrize(
    "answers", [FORM_LEFT_AS_IS, FORM_FILLED_IN], ids=["form-left-as-is", "form-filled-in"]
)
def test_a_host_substitutes_every_placeholder_whatever_the_form_holds(answers: dict[str, Any]) -> None:
    """A placeholder a host cannot substitute reaches the server as written (`${user_config.output_dir}`
    would be taken for a folder's name): every setting needs a default, and the folder list goes in
    `args`, one argument per folder, never inside an env value."""
    config = host_config(manifest(), Path("/bundle"), answers)
    assert "${" not in json.dumps(config), config
    args = config["args"]
    assert args[args.index("--allowed-dirs") :] == ["--allowed-dirs", *answers.get("allowed_dirs", [])]


def test_settings_the_form_leaves_empty_are_the_servers_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """A host substitutes an empty answer as "": the server must take an empty variable for an unset one
    (an empty output folder would otherwise be the server's working folder, inside the bundle)."""
    for name, value in host_config(manifest(), Path("/bundle"), FORM_LEFT_AS_IS)["env"].items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.credentials() == ("sandbox", "sandbox")  # the simulator, on by default, needs none
    assert settings.output_dir == Settings.model_fields["output_dir"].get_default(call_default_factory=True)


@pytest.mark.slow
@needs_npx
def test_the_official_cli_validates_the_manifest() -> None:
    result = mcpb("validate", "manifest.json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Manifest schema validation passes" in result.stdout


@pytest.fixture(scope="module")
def bundle_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundle, built from the repository by the documented command."""
    if NPX is None:
        pytest.skip("npx (Node.js) is not on PATH: the official mcpb CLI runs through it (CI has it)")
    built = tmp_path_factory.mktemp("bundle") / "scenario-upscale.mcpb"
    result = mcpb("pack", ".", str(built))
    assert result.returncode == 0, result.stdout + result.stderr
    return built


@pytest.mark.slow
def test_the_bundle_holds_only_what_the_uv_type_needs(bundle_file: Path) -> None:
    with zipfile.ZipFile(bundle_file) as archive:
        names = archive.namelist()
    assert {name.split("/")[0] for name in names} == BUNDLE_TOP_LEVEL
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]
    assert "server/scenario_upscale_mcp/__main__.py" in names  # the manifest's entry_point
    assert bundle_file.stat().st_size < 1_000_000


def uv_command() -> str:
    """The `uv` a host runs (Claude Desktop ships its own): here, the one installed beside this Python."""
    command = shutil.which("uv", path=str(Path(sys.executable).parent))
    assert command, "uv is not installed in this environment (pip install -e '.[dev]')"
    return command


def host_environment() -> dict[str, str]:
    """The host's own environment, which the server inherits (certificates, proxies, uv's cache), without
    what would point uv at this repository's virtual environment."""
    return {
        name: value
        for name, value in os.environ.items()
        if name not in {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTHONPATH"}
    }


@pytest.fixture
def installed_bundle(bundle_file: Path, tmp_path: Path) -> Path:
    """The bundle unpacked as a host installs it, with the environment the host's uv makes for it on the
    first start: Python and the dependencies from the bundle's pyproject.toml, in the bundle's own .venv,
    where the package imported is the bundle's code (never this repository's)."""
    unpacked = tmp_path / "installed-bundle"
    with zipfile.ZipFile(bundle_file) as archive:
        archive.extractall(unpacked)
    where = "import scenario_upscale_mcp; print(scenario_upscale_mcp.__file__)"
    installed = subprocess.run(
        [uv_command(), "run", "--directory", str(unpacked), "python", "-c", where],
        env=host_environment(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    assert Path(installed.stdout.strip()).is_relative_to(unpacked), installed.stdout
    return unpacked


@pytest.mark.slow
@pytest.mark.anyio
async def test_the_installed_bundle_started_as_its_manifest_says_upscales_over_stdio(
    installed_bundle: Path, tmp_path: Path
) -> None:
    bundle = json.loads((installed_bundle / "manifest.json").read_text(encoding="utf-8"))
    art, textures, output = tmp_path / "art", tmp_path / "textures", tmp_path / "output"
    art.mkdir()
    textures.mkdir()
    (textures / "tile.png").write_bytes(png_bytes(64, 48))
    # The form as a user fills it in: two folders (the image is in the second), an output folder; the
    # simulator left on, no key or secret.
    answers = {"allowed_dirs": [str(art), str(textures)], "output_dir": str(output)}
    config = host_config(bundle, installed_bundle, answers)
    assert config["command"] == "uv"
    params = StdioServerParameters(
        command=uv_command(),
        args=config["args"],
        env={
            **host_environment(),
            **config["env"],
            # The test's own: its ledger in tmp_path, and quicker polling.
            "SCENARIO_STATE_DIR": str(tmp_path / "state"),
            "SCENARIO_POLL_INITIAL_SECONDS": "0.2",
        },
        cwd=Path(tmp_path.anchor),  # hosts start servers from /
    )
    # Claude Desktop speaks the initialize handshake (legacy mode).
    async with Client(params, mode="legacy", read_timeout_seconds=60) as client:
        tools = (await client.list_tools()).tools
        result = await client.call_tool(
            "upscale_v3", {"image": str(textures / "tile.png"), "upscaleFactor": 2, "wait": 45}
        )

    # The server the bundle runs lists the tools the manifest names.
    assert listed(tools) == bundle["tools"]
    [saved] = structured(result)["outputs"]
    path = Path(saved["path"])
    assert path.parent == output and path.is_file()
    assert (saved["width"], saved["height"]) == (128, 96)
