"""Configuration from the environment, and a server that starts without credentials."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mcp import Client

from scenario_upscale_mcp.app import create_server
from scenario_upscale_mcp.config import DEFAULT_BASE_URL, Settings
from tests.conftest import RecordingTransport
from tests.fake_clock import FakeClock

pytestmark = pytest.mark.anyio


def test_every_documented_variable_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SCENARIO_SDK_API_KEY", "k1")
    monkeypatch.setenv("SCENARIO_SDK_API_SECRET", "s1")
    monkeypatch.setenv("SCENARIO_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("SCENARIO_PROJECT_ID", "proj_1")
    monkeypatch.setenv("SCENARIO_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("SCENARIO_ALLOWED_DIRS", os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "b")]))
    monkeypatch.setenv("SCENARIO_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("SCENARIO_SANDBOX", "1")
    settings = Settings()

    assert settings.credentials() == ("k1", "s1")
    assert settings.base_url == "http://127.0.0.1:9/v1"
    assert settings.project_id == "proj_1"
    assert settings.output_dir == (tmp_path / "out").resolve()
    assert settings.allowed_dirs == [(tmp_path / "a").resolve(), (tmp_path / "b").resolve()]
    assert settings.state_dir == (tmp_path / "state").resolve()
    assert settings.sandbox is True


def test_the_short_credential_names_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCENARIO_API_KEY", "k2")
    monkeypatch.setenv("SCENARIO_API_SECRET", "s2")
    assert Settings().credentials() == ("k2", "s2")


def test_defaults_point_at_the_real_api_and_per_user_folders() -> None:
    settings = Settings()
    assert settings.base_url is None and settings.credentials() is None
    assert settings.allowed_dirs == [Path.home().resolve()]
    assert settings.output_dir.is_absolute() and settings.output_dir != Path.cwd()
    assert "scenario-upscale-mcp" in str(settings.state_dir)


def test_secrets_never_show_in_reprs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCENARIO_SDK_API_KEY", "visible-key")
    monkeypatch.setenv("SCENARIO_SDK_API_SECRET", "hidden-secret-value")
    settings = Settings()
    assert "hidden-secret-value" not in repr(settings) and "hidden-secret-value" not in str(
        settings.model_dump()
    )


async def test_without_credentials_tools_list_and_api_tools_say_what_to_set(
    mode: str, api: RecordingTransport, tmp_path: Path, clock: FakeClock
) -> None:
    settings = Settings(output_dir=tmp_path, allowed_dirs=[tmp_path], state_dir=tmp_path)
    server = create_server(settings, transport=api, clock=clock)
    async with Client(server, mode=mode) as client:
        tools = (await client.list_tools()).tools
        assert len(tools) >= 3
        for name, arguments in [("upscale_v3", {"image": "asset_1"}), ("upscale_texture", {"image": "asset_1"}),
                                ("get_job", {"jobId": "job_1"})]:  # fmt: skip
            result = await client.call_tool(name, arguments)
            assert result.is_error
            text = result.content[0].text  # type: ignore[union-attr]
            assert "SCENARIO_SDK_API_KEY" in text and "SCENARIO_SDK_API_SECRET" in text
    assert api.requests == []
    assert DEFAULT_BASE_URL.startswith("https://api.cloud.scenario.com")
