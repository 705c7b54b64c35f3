"""The installed server, spawned over stdio exactly as a host app would start it."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from tests.images import png_bytes

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def installed_command() -> str:
    """The console script pip installed next to this interpreter."""
    command = shutil.which("scenario-upscale-mcp", path=str(Path(sys.executable).parent))
    assert command, "scenario-upscale-mcp is not installed in this environment (pip install -e .)"
    return command


async def test_the_installed_server_upscales_over_stdio(mode: str, tmp_path: Path) -> None:
    images, output = tmp_path / "images", tmp_path / "output"
    images.mkdir()
    (images / "sprite.png").write_bytes(png_bytes(80, 60))
    params = StdioServerParameters(
        command=installed_command(),
        env={
            "SCENARIO_SANDBOX": "1",
            "SCENARIO_ALLOWED_DIRS": str(images),
            "SCENARIO_OUTPUT_DIR": str(output),
            "SCENARIO_STATE_DIR": str(tmp_path / "state"),
            "SCENARIO_POLL_INITIAL_SECONDS": "0.2",
        },
        cwd="/",  # hosts start servers from /
    )
    reported: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        reported.append(progress)

    async with Client(params, mode=mode, read_timeout_seconds=60) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"upscale_v3", "upscale_texture", "get_job"} <= names
        result = await client.call_tool(
            "upscale_texture",
            {"image": str(images / "sprite.png"), "upscaleFactor": 2, "wait": 45},
            progress_callback=on_progress,
        )

    assert not result.is_error, result.content
    assert result.structured_content is not None
    [saved] = result.structured_content["outputs"]
    assert Path(saved["path"]).parent == output and Path(saved["path"]).is_file()
    assert (saved["width"], saved["height"]) == (160, 120)
    assert reported and reported[-1] == 1.0


async def test_python_dash_m_starts_the_same_server(tmp_path: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "scenario_upscale_mcp"],
        env={"SCENARIO_STATE_DIR": str(tmp_path), "SCENARIO_OUTPUT_DIR": str(tmp_path)},
    )
    async with Client(params, mode="legacy", read_timeout_seconds=30) as client:
        assert client.server_info is not None and client.server_info.name == "scenario-upscale-mcp"
        result = await client.call_tool("get_job", {"jobId": "job_1"})
    assert result.is_error
    assert "SCENARIO_SDK_API_KEY" in result.content[0].text  # type: ignore[union-attr]
