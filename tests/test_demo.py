"""`scenario-upscale-mcp demo`, run as a user runs it: a process, its output, its exit code.

"Scenario's API" in the `--real` tests is a simulator on loopback standing in for it: nothing here
reaches the real API or any other machine.
"""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from scenario_upscale_mcp.demo import SAMPLES
from scenario_upscale_mcp.sandbox.app import Sandbox
from scenario_upscale_mcp.sandbox.serving import serve_in_thread
from tests.images import png_bytes

pytestmark = pytest.mark.slow

CREDENTIALS = {"SCENARIO_SDK_API_KEY": "key-from-the-environment", "SCENARIO_SDK_API_SECRET": "its-secret"}


def run_demo(
    *args: str, env: dict[str, str] | None = None, stdin: int | None = subprocess.DEVNULL
) -> subprocess.CompletedProcess[str]:
    environment = {name: value for name, value in os.environ.items() if not name.startswith("SCENARIO_")}
    environment |= {"COLUMNS": "200"} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "scenario_upscale_mcp", "demo", "--job-seconds", "0.5", *args],
        env=environment,
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def scenario_api() -> Iterator[tuple[Sandbox, str]]:
    """A stand-in for Scenario's API, on loopback; the demo reaches it only through SCENARIO_BASE_URL."""
    api = Sandbox(job_seconds=0.3)
    with serve_in_thread(api) as base_url:
        yield api, base_url


def run_real_demo(
    base_url: str,
    tmp_path: Path,
    *flags: str,
    images: tuple[Path, ...] = (SAMPLES / "castle.png",),
    env: dict[str, str] | None = None,
    stdin: int | None = subprocess.DEVNULL,
) -> subprocess.CompletedProcess[str]:
    """`demo --real` on the castle sample (or `images`) with credentials in the environment, "Scenario's
    API" at `base_url`; results go to tmp_path/out, the ledger to tmp_path/state."""
    return run_demo(
        *map(str, images),
        "--real",
        *flags,
        "--output-dir",
        str(tmp_path / "out"),
        env=CREDENTIALS
        | {"SCENARIO_BASE_URL": base_url, "SCENARIO_STATE_DIR": str(tmp_path / "state")}
        | (env or {}),
        stdin=stdin,
    )


def saved_files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def test_the_demo_upscales_the_samples_with_both_models(tmp_path: Path) -> None:
    done = run_demo("--output-dir", str(tmp_path))

    assert done.returncode == 0, done.stdout + done.stderr
    samples = sorted(SAMPLES.glob("*.png"))
    assert len(samples) == 2
    files = saved_files(tmp_path)
    for sample in samples:
        for tag in ("upscale-v3", "texture"):
            [name] = [name for name in files if name.startswith(f"{sample.stem}_{tag}_x2_")]
            with Image.open(tmp_path / name) as upscaled, Image.open(sample) as source:
                assert upscaled.size == (source.width * 2, source.height * 2)
                dimensions = f"{source.width}×{source.height} → {upscaled.width}×{upscaled.height}"
            assert re.search(rf"{re.escape(name)}\s+│ {dimensions} │ .*kB │ +\d+ CU", done.stdout), name
        for tool in ("upscale_v3", "upscale_texture"):  # the progress bars, at their end
            assert re.search(rf"{sample.name} · {tool}\s+━+ 100% saved", done.stdout)
    assert len(files) == 4
    assert f"Saved in: {tmp_path}" in done.stdout
    assert "nothing was billed" in done.stdout


def test_a_file_that_is_not_an_image_fails_the_demo_with_the_servers_reason(tmp_path: Path) -> None:
    notes = tmp_path / "notes.png"
    notes.write_text("meeting notes, not a picture")
    good = tmp_path / "good.png"
    good.write_bytes(png_bytes(30, 20))

    done = run_demo(str(notes), str(good), "--output-dir", str(tmp_path / "out"))

    assert done.returncode == 1
    for tool in ("upscale_v3", "upscale_texture"):
        assert re.search(rf"✗ notes\.png · {tool}: image: .*notes\.png .*image", done.stderr), done.stderr
    assert "2 of 4 upscales failed." in done.stderr
    assert [name.split("_x2_")[0] for name in saved_files(tmp_path / "out")] == [
        "good_texture",
        "good_upscale-v3",
    ]  # the good image was still upscaled, and shown
    assert "good_upscale-v3_x2_" in done.stdout


def test_a_missing_image_stops_the_demo_before_anything_starts(tmp_path: Path) -> None:
    done = run_demo(str(tmp_path / "nowhere.png"))

    assert done.returncode == 2
    assert f"demo failed: {tmp_path / 'nowhere.png'} does not exist." in done.stderr
    assert "Simulator" not in done.stdout


def test_credentials_in_the_environment_are_not_used_without_real(
    scenario_api: tuple[Sandbox, str], tmp_path: Path
) -> None:
    api, base_url = scenario_api
    done = run_demo(
        str(SAMPLES / "castle.png"),
        "--output-dir",
        str(tmp_path),
        env=CREDENTIALS | {"SCENARIO_BASE_URL": base_url},
    )

    assert done.returncode == 0, done.stderr
    assert "Your SCENARIO_SDK_API_KEY is set but not used: pass --real" in done.stdout
    assert api.requests == []  # "Scenario's API" never heard of it
    assert len(saved_files(tmp_path)) == 2


def test_real_without_yes_and_without_a_terminal_quotes_the_cost_and_submits_nothing(
    scenario_api: tuple[Sandbox, str], tmp_path: Path
) -> None:
    api, base_url = scenario_api
    done = run_real_demo(base_url, tmp_path)

    assert done.returncode == 2
    assert re.search(r"castle\.png\s+│ upscale_v3\s+│\s+\d+ CU", done.stdout)
    assert re.search(r"Total: \d+ creative units, to be billed", done.stdout)
    assert "nothing was submitted: confirm the cost by running again with --yes." in done.stderr
    assert [path for method, path in api.requests if "generate" in path]  # the dry runs
    assert api.jobs == {}
    assert saved_files(tmp_path / "out") == []


def test_real_quotes_every_image_with_each_model_and_the_total(
    scenario_api: tuple[Sandbox, str], tmp_path: Path
) -> None:
    api, base_url = scenario_api
    samples = tuple(sorted(SAMPLES.glob("*.png")))
    done = run_real_demo(base_url, tmp_path, images=samples)

    assert done.returncode == 2  # no --yes, no terminal: nothing submitted
    costs = []
    for sample in samples:
        for tool in ("upscale_v3", "upscale_texture"):
            [cost] = re.findall(rf"{re.escape(sample.name)}\s+│ {tool}\s+│\s+(\d+) CU", done.stdout)
            costs.append(int(cost))
    assert f"Total: {sum(costs)} creative units, to be billed" in done.stdout
    assert api.jobs == {}


def run_real_demo_with_a_broken_image(
    base_url: str, tmp_path: Path
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    broken = tmp_path / "broken.png"
    broken.write_bytes(png_bytes(30, 20)[:40])  # a PNG's start, cut off
    return broken, run_real_demo(base_url, tmp_path, "--yes", images=(SAMPLES / "castle.png", broken))


def test_real_with_an_image_the_server_refuses_submits_nothing(
    scenario_api: tuple[Sandbox, str], tmp_path: Path
) -> None:
    api, base_url = scenario_api
    _, done = run_real_demo_with_a_broken_image(base_url, tmp_path)

    assert done.returncode == 1
    for tool in ("upscale_v3", "upscale_texture"):  # each model's dry-run batch is refused as a whole
        assert re.search(rf"all images\s+│ {tool}\s+│ refused", done.stdout), done.stdout
        assert f"✗ {tool}: " in done.stderr
    assert "nothing was submitted: fix the refused upscales first." in done.stderr
    assert api.jobs == {}


def test_real_with_an_image_the_server_refuses_gives_the_servers_reason_naming_it(
    scenario_api: tuple[Sandbox, str], tmp_path: Path
) -> None:
    _, base_url = scenario_api
    broken, done = run_real_demo_with_a_broken_image(base_url, tmp_path)

    for tool in ("upscale_v3", "upscale_texture"):
        assert re.search(rf"✗ {tool}: {re.escape(str(broken))}: image: .*decode", done.stderr), done.stderr


def test_real_passes_the_approved_cost_to_a_server_that_asks_before_spending(
    scenario_api: tuple[Sandbox, str], tmp_path: Path
) -> None:
    api, base_url = scenario_api
    # The server must confirm any cost above 1 CU, and the demo's client cannot ask the user: the
    # demo asked (here: --yes), and passes each upscale's approved quote as its confirmCost.
    done = run_real_demo(base_url, tmp_path, "--yes", env={"SCENARIO_CONFIRM_ABOVE_CREDITS": "1"})

    assert done.returncode == 0, done.stdout + done.stderr
    assert len(api.jobs) == 2
    assert len(saved_files(tmp_path / "out")) == 2


def test_real_asks_before_submitting_and_a_no_submits_nothing(
    scenario_api: tuple[Sandbox, str], tmp_path: Path
) -> None:
    api, base_url = scenario_api
    terminal, keyboard = pty.openpty()
    try:
        os.write(terminal, b"n\n")  # typed ahead: read when the question is asked
        done = run_real_demo(base_url, tmp_path, stdin=keyboard)
    finally:
        os.close(terminal)
        os.close(keyboard)

    assert done.returncode == 1
    assert "Submit 2 upscale jobs for" in done.stdout
    assert "cancelled: nothing was submitted or billed." in done.stderr
    assert api.jobs == {}


def test_real_with_yes_submits_after_showing_the_cost(
    scenario_api: tuple[Sandbox, str], tmp_path: Path
) -> None:
    api, base_url = scenario_api
    done = run_real_demo(base_url, tmp_path, "--yes")

    assert done.returncode == 0, done.stderr
    assert done.stdout.index("Cost estimate") < done.stdout.index("Results")
    assert len(api.jobs) == 2
    assert len(saved_files(tmp_path / "out")) == 2
    assert "billed to your Scenario account" in done.stdout


def test_real_without_credentials_says_which_variables_to_set() -> None:
    done = run_demo("--real")

    assert done.returncode == 2
    assert "--real needs your Scenario API key and secret in SCENARIO_SDK_API_KEY" in done.stderr
