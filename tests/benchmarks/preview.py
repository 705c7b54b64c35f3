"""Preview of a huge result: make_preview on an 8192×8192 PNG, against Pillow's bare decode of it.

The PNG is a smooth upscale (as real results are), so it compresses like one. The reference is the
time Pillow takes just to decode the same file, which bounds what any Pillow-based preview can do.

    python -m tests.benchmarks.preview [--edge 8192] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from PIL import Image

from scenario_upscale_mcp.image_files import open_image
from scenario_upscale_mcp.outputs.previews import PREVIEW_MAX_EDGE, make_preview

SAMPLE = Path(__file__).parents[2] / "server" / "scenario_upscale_mcp" / "samples" / "stone_tile.png"


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description="preview time for a huge PNG")
    parser.add_argument("--edge", type=int, default=8192)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "huge.png"
        with Image.open(SAMPLE) as sample:
            sample.convert("RGB").resize((args.edge, args.edge), Image.Resampling.BICUBIC).save(path)
        previews: list[float] = []
        decodes: list[float] = []
        for _ in range(args.runs):
            started = time.perf_counter()
            with open_image(path) as image:
                image.load()
            decodes.append(time.perf_counter() - started)
            started = time.perf_counter()
            data, _mime_type = make_preview(path)
            previews.append(time.perf_counter() - started)
        size = path.stat().st_size
    figures = {
        "preview_s": statistics.median(previews),
        "decode_s": statistics.median(decodes),
        "bytes": len(data),
    }
    print(f"preview of a {args.edge}×{args.edge} PNG ({size / 1e6:.1f} MB), median of {args.runs}")
    print(
        f"  make_preview {figures['preview_s']:.2f} s (goal ≤ 1 s) → {len(data) / 1000:.0f} KB, long edge {PREVIEW_MAX_EDGE}"
    )
    print(f"  of which Pillow's bare decode of the PNG: {figures['decode_s']:.2f} s")
    return figures


if __name__ == "__main__":
    main()
