"""The command line: --version, the serving options on either side of `serve`, help for every option,
and a taken port."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from scenario_upscale_mcp import __version__, cli


def test_version_prints_the_version_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])

    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"scenario-upscale-mcp {__version__}"


@pytest.mark.parametrize(
    "arguments",
    [
        ["serve", "--transport", "http", "--port", "0"],
        ["--transport", "http", "--port", "0", "serve"],
        ["--transport", "http", "serve", "--port", "0"],
        ["--transport", "http", "--port", "0"],
    ],
    ids=["after", "before", "both sides", "no command"],
)
def test_the_serving_options_are_accepted_before_and_after_serve(arguments: list[str]) -> None:
    args = cli.build_parser().parse_args(arguments)
    assert (args.transport, args.host, args.port) == ("http", cli.DEFAULT_HTTP_HOST, 0)


@pytest.mark.parametrize("arguments", [[], ["serve"]], ids=["no arguments", "serve"])
def test_serving_defaults_to_stdio_on_loopback_port_8000(arguments: list[str]) -> None:
    args = cli.build_parser().parse_args(arguments)
    assert (args.transport, args.host, args.port) == ("stdio", "127.0.0.1", 8000)


def test_an_option_after_serve_overrides_the_same_option_before_it() -> None:
    args = cli.build_parser().parse_args(["--port", "9000", "serve", "--port", "9001"])
    assert args.port == 9001


def test_serve_dispatches_its_options_to_the_http_server(monkeypatch: pytest.MonkeyPatch) -> None:
    from scenario_upscale_mcp.serving import http

    served: list[tuple[str, int]] = []

    def serve_http(host: str, port: int) -> int:
        served.append((host, port))
        return 0

    monkeypatch.setattr(http, "serve_http", serve_http)
    monkeypatch.setattr(cli, "configure_logging", lambda: None)

    cli.main(["serve", "--transport", "http", "--port", "0"])

    assert served == [("127.0.0.1", 0)]


def test_every_option_of_every_command_has_help() -> None:
    parser = cli.build_parser()
    [commands] = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    assert set(commands.choices) == {"serve", "demo", "check", "sandbox"}
    undocumented = [
        f"{name} {action.dest}"
        for name, command in [("", parser), *commands.choices.items()]
        for action in command._actions
        if not isinstance(action, argparse._SubParsersAction) and not action.help
    ]
    assert undocumented == []
    for name in commands.choices:  # and every command is listed with a line of its own
        assert any(choice.dest == name and choice.help for choice in commands._choices_actions), name


@pytest.mark.slow
@pytest.mark.parametrize("order", ["after serve", "before"])
def test_a_taken_port_is_one_clear_line_and_a_failing_exit_without_claiming_to_serve(
    order: str, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        options = ["--transport", "http", "--host", "127.0.0.1", "--port", str(port)]
        arguments = ["serve", *options] if order == "after serve" else [*options, "serve"]
        environment = {name: value for name, value in os.environ.items() if not name.startswith("SCENARIO_")}
        finished = subprocess.run(
            [sys.executable, "-m", "scenario_upscale_mcp", *arguments],
            env=environment | {"SCENARIO_SANDBOX": "1", "SCENARIO_STATE_DIR": str(tmp_path)},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert finished.returncode == 1, finished.stderr
    assert finished.stdout == ""
    [line] = finished.stderr.strip().splitlines()
    assert f"port {port} on 127.0.0.1 is already in use" in line
    assert "--port" in line and "0 picks a free one" in line
    assert "serving MCP" not in finished.stderr
