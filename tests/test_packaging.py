"""The package as users install it: the wheel and sdist build and pass the metadata check, the wheel
installed in a fresh venv that cannot see this source tree runs the demo, and `uvx --from <wheel>` serves
the tools over stdio. `uv` (a dev dependency from PyPI) builds, installs and runs; the dependencies come
from the package index (and uv's cache after the first run)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters
from PIL import Image

from scenario_upscale_mcp import __version__
from tests.servers import structured

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.real_time]

ROOT = Path(__file__).parents[1]
BIN = Path(sys.executable).parent
UV = BIN / "uv"
UVX = BIN / "uvx"
EXPECTED_TOOLS = {
    "upscale_v3",
    "upscale_texture",
    "get_job",
    "wait_for_jobs",
    "download_assets",
    "upload_image",
}


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: no settings of ours, nothing pointing back at this tree."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SCENARIO_", "PYTHON", "VIRTUAL_ENV", "UV_PROJECT"))
    }
    return {**env, **extra}


def _run(*command: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env or _clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{command} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel and the sdist, built from this tree as a publisher would (`uv build`)."""
    out = tmp_path_factory.mktemp("dist")
    _run(UV, "build", "--quiet", "--out-dir", out, ROOT, cwd=out)
    return out


def _wheel(dist: Path) -> Path:
    (wheel,) = dist.glob(f"scenario_upscale_mcp-{__version__}-py3-none-any.whl")
    return wheel


def test_wheel_and_sdist_pass_the_metadata_check(dist: Path) -> None:
    (sdist,) = dist.glob(f"scenario_upscale_mcp-{__version__}.tar.gz")
    output = _run(BIN / "twine", "check", "--strict", _wheel(dist), sdist, cwd=dist)
    assert output.count("PASSED") == 2, output


def test_the_wheel_installed_in_a_fresh_venv_runs_the_demo(dist: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    _run(UV, "venv", "--quiet", "--python", sys.executable, venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    _run(UV, "pip", "install", "--quiet", "--python", python, _wheel(dist), cwd=tmp_path)

    # The installed package is the wheel's copy, not this tree's (no editable path, no PYTHONPATH).
    where = _run(python, "-c", "import scenario_upscale_mcp as p; print(p.__file__)", cwd=tmp_path).strip()
    assert Path(where).is_relative_to(venv), where
    assert not Path(where).is_relative_to(ROOT), where

    saved = tmp_path / "saved"
    env = _clean_env(SCENARIO_STATE_DIR=str(tmp_path / "state"), HOME=str(tmp_path / "home"))
    report = _run(venv / "bin" / "scenario-upscale-mcp", "demo", "--output-dir", saved, cwd=tmp_path, env=env)

    assert "nothing was billed" in report, report
    results = sorted(path.name for path in saved.iterdir())
    # Both samples, each with both models; each result twice the sample's size.
    assert len(results) == 4, results
    for sample in ("castle", "stone_tile"):
        made = [name for name in results if name.startswith(f"{sample}_")]
        assert len(made) == 2, results
        with Image.open(Path(where).parent / "samples" / f"{sample}.png") as original:
            for name in made:
                with Image.open(saved / name) as result:
                    assert result.size == (original.width * 2, original.height * 2), name


async def test_uvx_from_the_wheel_serves_the_tools_over_stdio(dist: Path, tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    castle = tmp_path / "images" / "castle.png"
    castle.write_bytes((ROOT / "server/scenario_upscale_mcp/samples/castle.png").read_bytes())
    params = StdioServerParameters(
        command=str(UVX),
        args=["--quiet", "--from", str(_wheel(dist)), "scenario-upscale-mcp"],
        cwd=str(tmp_path),
        env=_clean_env(
            SCENARIO_SANDBOX="1",
            SCENARIO_ALLOWED_DIRS=str(tmp_path / "images"),
            SCENARIO_OUTPUT_DIR=str(tmp_path / "output"),
            SCENARIO_STATE_DIR=str(tmp_path / "state"),
        ),
    )
    async with Client(params) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert tools >= EXPECTED_TOOLS, tools
        quote = structured(await client.call_tool("upscale_v3", {"image": str(castle), "dryRun": True}))
    assert quote["dryRun"] is True, quote
    assert quote["creativeUnitsCost"] > 0, quote
