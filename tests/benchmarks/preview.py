"""Preview of a huge result: make_preview on an 8192×8192 PNG and JPEG, against the bare decodes of them.

The PNG is a smooth upscale (as real results are), so it compresses like one; the JPEG is the same
picture at quality 90. Each round times, one after the other on the same file: Pillow's bare decode
(`load()`), libvips' bare decode (pyvips, sequential access, every pixel into memory), libvips' own
`thumbnail` to 1568 px, and make_preview through each library (pyvips, the default where it loads;
Pillow, the fallback). The reference for the goal is the faster of the two bare decodes, which
bounds what any preview that looks at every pixel can do. Rounds interleave so that the machine's
noise falls on all of them alike; the spread (min–max) is printed beside each median, with the
process's CPU time (all threads) and the load average, and the ratio is given both of the medians and
of the best rounds (the least disturbed).

Peak memory above idle is read in a fresh process per path (VmHWM after resetting it, minus VmRSS
once the libraries are loaded), on Linux only.

    python -m tests.benchmarks.preview [--edge 8192] [--runs 5] [--no-memory]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import PIL
from PIL import Image

from scenario_upscale_mcp.image_files import load_vips, open_image, vips_library
from scenario_upscale_mcp.outputs.previews import PREVIEW_MAX_EDGE, make_preview

SAMPLE = Path(__file__).parents[2] / "server" / "scenario_upscale_mcp" / "samples" / "stone_tile.png"
GOAL_RATIO = 1.1  # the preview of the PNG, against the fastest bare decode of it

NAN = math.nan


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description="preview time and memory for a huge PNG and JPEG")
    parser.add_argument("--edge", type=int, default=8192)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory readings")
    args = parser.parse_args(argv)
    vips = load_vips()
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"previews decode with {vips_library()}; Pillow {PIL.__version__}; load average {load}")
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        png, jpeg = Path(folder) / "huge.png", Path(folder) / "huge.jpg"
        with Image.open(SAMPLE) as sample:
            picture = sample.convert("RGB").resize((args.edge, args.edge), Image.Resampling.BICUBIC)
        picture.save(png)
        picture.save(jpeg, quality=90)
        del picture
        for kind, path in (("png", png), ("jpeg", jpeg)):
            times, cpu = _timed_rounds(path, args.runs, vips)
            measured = {name: statistics.median(values) for name, values in times.items()}
            best = {name: min(values) for name, values in times.items()}
            decodes = ("pillow_decode_s", "vips_decode_s")
            fastest = min((measured.get(name, NAN) for name in decodes), key=_nan_last)
            best_decode = min((best.get(name, NAN) for name in decodes), key=_nan_last)
            memory = {} if args.no_memory else _peak_memory(path, vips is not None)
            prefix = "" if kind == "png" else "jpeg_"
            figures |= {prefix + name: value for name, value in measured.items()}
            figures |= {prefix + name: value for name, value in memory.items()}
            figures[prefix + "decode_s"] = fastest
            figures[prefix + "ratio"] = measured["preview_s"] / fastest
            figures[prefix + "best_ratio"] = best["preview_s"] / best_decode
            figures[prefix + "file_bytes"] = path.stat().st_size
            figures[prefix + "bytes"] = len(make_preview(path)[0])
            _print(kind, path, args, times, cpu, figures, prefix, memory)
    return figures


def _timed_rounds(path: Path, runs: int, vips: Any) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall and CPU seconds per round for each way of reading `path`, the rounds interleaved."""
    steps: dict[str, Callable[[], object]] = {"pillow_decode_s": lambda: _pillow_decode(path)}
    if vips is not None:
        steps["vips_decode_s"] = lambda: _vips_decode(vips, path)
        steps["vips_thumbnail_s"] = lambda: _vips_thumbnail(vips, path)
    steps["preview_s"] = lambda: make_preview(path)  # the production path: pyvips where it loads
    steps["pillow_preview_s"] = lambda: make_preview(path, library="pillow")
    times: dict[str, list[float]] = {name: [] for name in steps}
    cpu: dict[str, list[float]] = {name: [] for name in steps}
    for step in steps.values():  # once untimed: libraries loaded, the file in the page cache
        step()
    for _ in range(runs):
        for name, step in steps.items():
            started, started_cpu = time.perf_counter(), time.process_time()
            step()
            times[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - started_cpu)
    return times, cpu


def _pillow_decode(path: Path) -> None:
    with open_image(path) as image:
        image.load()


def _vips_decode(vips: Any, path: Path) -> bytes:
    """Every pixel into memory, as Pillow's load() leaves them, read in one sequential pass."""
    data: bytes = vips.Image.new_from_file(str(path), access="sequential").write_to_memory()
    return data


def _vips_thumbnail(vips: Any, path: Path) -> bytes:
    """libvips' own thumbnail (shrink-on-load where the format has it), to the preview's size."""
    thumbnail = vips.Image.thumbnail(
        str(path), PREVIEW_MAX_EDGE, height=PREVIEW_MAX_EDGE, size="down", no_rotate=True
    )
    data: bytes = thumbnail.write_to_memory()
    return data


def _nan_last(value: float) -> float:
    return math.inf if math.isnan(value) else value


MEMORY_SCRIPT = """
import sys
from pathlib import Path
import PIL
from PIL import Image
from scenario_upscale_mcp.image_files import load_vips, open_image
from scenario_upscale_mcp.outputs import previews

what, path = sys.argv[1], Path(sys.argv[2])
vips = load_vips()
warm = Path(sys.argv[3])
Image.new("RGB", (2000, 1000), (1, 2, 3)).save(warm)  # load every library and codec first
previews.make_preview(warm)
previews.make_preview(warm, library="pillow")
with open_image(warm) as image:
    image.load()

def status(key):
    text = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in text.splitlines() if line.startswith(key + ":"))) * 1024

idle = status("VmRSS")
Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
if what == "pillow_decode":
    with open_image(path) as image:
        image.load()
elif what == "vips_decode":
    vips.Image.new_from_file(str(path), access="sequential").write_to_memory()
elif what == "preview":
    previews.make_preview(path)
else:
    previews.make_preview(path, library="pillow")
print(status("VmHWM") - idle)
"""


def _peak_memory(path: Path, with_vips: bool) -> dict[str, float]:
    """Peak resident memory above idle (bytes), each reading in a fresh process; {} off Linux."""
    if not Path("/proc/self/clear_refs").exists():
        return {}
    whats = ["pillow_decode", *(["vips_decode"] if with_vips else []), "preview", "pillow_preview"]
    script = textwrap.dedent(MEMORY_SCRIPT)
    peaks: dict[str, float] = {}
    for what in whats:
        warm = path.with_name("warm.png")
        done = subprocess.run(
            [sys.executable, "-c", script, what, str(path), str(warm)],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        peaks[f"{what}_peak_bytes"] = float(done.stdout.split()[-1])
    return peaks


def _print(
    kind: str,
    path: Path,
    args: argparse.Namespace,
    times: dict[str, list[float]],
    cpu: dict[str, list[float]],
    figures: dict[str, float],
    prefix: str,
    memory: dict[str, float],
) -> None:
    labels = {
        "pillow_decode_s": "Pillow's bare decode",
        "vips_decode_s": "libvips' bare decode (sequential)",
        "vips_thumbnail_s": f"libvips' own thumbnail to {PREVIEW_MAX_EDGE}",
        "preview_s": "make_preview (default library)",
        "pillow_preview_s": "make_preview with Pillow (fallback)",
    }
    memory_keys = {
        "pillow_decode_s": "pillow_decode_peak_bytes",
        "vips_decode_s": "vips_decode_peak_bytes",
        "preview_s": "preview_peak_bytes",
        "pillow_preview_s": "pillow_preview_peak_bytes",
    }
    size = path.stat().st_size
    print(
        f"\npreview of a {args.edge}×{args.edge} {kind.upper()} ({size / 1e6:.1f} MB), "
        f"median of {args.runs} (min–max), CPU time, peak memory above idle"
    )
    for name, values in times.items():
        peak = memory.get(memory_keys.get(name, ""))
        peak_text = "" if peak is None else f"  {peak / 2**20:6.0f} MiB"
        print(
            f"  {labels[name]:38s} {statistics.median(values):6.3f} s"
            f"  ({min(values):.3f}–{max(values):.3f})  cpu {statistics.median(cpu[name]):.3f} s{peak_text}"
        )
    goal = f" (goal ≤ ×{GOAL_RATIO})" if kind == "png" else ""
    print(
        f"  make_preview / fastest bare decode ({figures[prefix + 'decode_s']:.3f} s): "
        f"×{figures[prefix + 'ratio']:.2f} of the medians, ×{figures[prefix + 'best_ratio']:.2f} of the best{goal}"
    )


if __name__ == "__main__":
    main()
