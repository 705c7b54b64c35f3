"""Regenerate the demo's sample images in server/scenario_upscale_mcp/samples/ (they are committed; this shows how they were made).

Run: python examples/make_sample_images.py
"""

from __future__ import annotations

import math
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

HERE = Path(__file__).parents[1] / "server" / "scenario_upscale_mcp" / "samples"


def castle(width: int = 384, height: int = 256) -> Image.Image:
    """A small flat illustration: sky gradient, hills, a castle, a sun."""
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(height):
        t = y / height
        draw.line([(0, y), (width, y)], fill=(int(90 + 120 * t), int(150 + 70 * t), int(235 - 40 * t)))
    draw.ellipse([300, 24, 348, 72], fill=(255, 214, 102))
    draw.polygon(
        [(0, 200), (90, 150), (200, 190), (290, 140), (384, 185), (384, 256), (0, 256)], fill=(76, 140, 74)
    )
    stone, dark = (168, 160, 150), (110, 104, 98)
    draw.rectangle([140, 110, 250, 200], fill=stone)
    for x in (128, 238):
        draw.rectangle([x, 80, x + 26, 200], fill=stone)
        draw.polygon([(x - 4, 80), (x + 13, 52), (x + 30, 80)], fill=(180, 60, 60))
    for x in range(140, 250, 14):
        draw.rectangle([x, 100, x + 8, 110], fill=stone)
    draw.rectangle([182, 160, 208, 200], fill=dark)
    draw.pieslice([182, 147, 208, 173], 180, 360, fill=dark)
    for x in (155, 225):
        draw.rectangle([x, 130, x + 10, 145], fill=dark)
    return image.filter(ImageFilter.SMOOTH)


def stone_tile(size: int = 256, seed: int = 7) -> Image.Image:
    """A seamless cobblestone-like texture: Voronoi cells on a torus, so the edges wrap."""
    rng = random.Random(seed)
    points = [(rng.uniform(0, size), rng.uniform(0, size)) for _ in range(28)]
    tones = [rng.randint(95, 165) for _ in points]
    image = Image.new("RGB", (size, size))
    pixels = image.load()
    assert pixels is not None
    for y in range(size):
        for x in range(size):
            best, second, index = math.inf, math.inf, 0
            for i, (px, py) in enumerate(points):
                dx = min(abs(x - px), size - abs(x - px))
                dy = min(abs(y - py), size - abs(y - py))
                d = dx * dx + dy * dy
                if d < best:
                    best, second, index = d, best, i
                elif d < second:
                    second = d
            edge = math.sqrt(second) - math.sqrt(best)
            shade = tones[index] if edge > 3 else 60
            pixels[x, y] = (shade, int(shade * 0.95), int(shade * 0.88))
    return image.filter(ImageFilter.GaussianBlur(0.8))


if __name__ == "__main__":
    HERE.mkdir(exist_ok=True)
    castle().save(HERE / "castle.png", optimize=True)
    stone_tile().save(HERE / "stone_tile.png", optimize=True)
