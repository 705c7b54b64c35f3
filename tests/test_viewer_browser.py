"""The viewer (ui://scenario-upscale/viewer.html) in a real browser, embedded the way a host embeds it.

Debian's Chromium, driven by Playwright (never Playwright's own browsers), opens a test host page
(tests/viewer_host/) that runs the official MCP Apps host side: `AppBridge` from the pinned npm package
`@modelcontextprotocol/ext-apps`, bundled once with esbuild (cached under .pytest_cache). The page
puts the viewer, as the server serves it, in a sandboxed iframe and relays its tool calls to the real
server through the MCP client of this test, against the simulator. What is asserted is what a person
sees: the pixels of the viewer's canvases, its text, and the tool calls it made.

Nothing goes over a network: the page is served by Playwright's request interception, every other
request is refused and recorded (and must not happen), the browser talks to Playwright over a pipe,
and the server runs in-process. Screenshots are kept in tests/artifacts/viewer/ (git-ignored).

Skipped when Chromium (`/usr/bin/chromium`), the `playwright` package, or Node and npm are missing;
.ci/run installs Chromium, and the dev extras install Playwright, so CI runs it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import CallToolResult, ImageContent
from PIL import Image

from scenario_upscale_mcp.demo import SAMPLES
from scenario_upscale_mcp.sandbox.app import Sandbox
from tests.images import noise_png

playwright_api = pytest.importorskip(
    "playwright.async_api", reason="the browser test needs Playwright for Python (pip install playwright)"
)
from playwright.async_api import Browser, ConsoleMessage, Frame, Page, Route, async_playwright  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
HOST_SOURCES = Path(__file__).parent / "viewer_host"
ARTIFACTS = Path(__file__).parent / "artifacts" / "viewer"
HOST_ORIGIN = "http://viewer-host.test"  # never resolved: Playwright answers every request itself
VIEWER_URI = "ui://scenario-upscale/viewer.html"
TEXTURE_MODEL = "model_sc-upscale-flux-texture"

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.is_file(),
        reason=f"the browser test needs Debian's Chromium at {CHROMIUM} (apt-get install chromium)",
    ),
]

RGB = tuple[int, int, int]


@pytest.fixture
def mode() -> str:
    """One era is enough here (the viewer never sees it): the handshake era, which today's hosts speak."""
    return "legacy"


# ------------------------------------------------------------------------------------------------
# The host page: the official AppBridge, bundled once per version of its sources.
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def host_bundle(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("the browser test bundles the official AppBridge with Node and npm, which are missing")
    cache = getattr(pytestconfig, "cache", None)  # None when the cache plugin is off (-p no:cacheprovider)
    root = cache.mkdir("viewer-host") if cache is not None else tmp_path_factory.mktemp("viewer-host")
    return build_host_bundle(Path(root), node, npm)


def build_host_bundle(root: Path, node: str, npm: str) -> Path:
    """tests/viewer_host/host.js bundled with its pinned dependencies (npm ci, then esbuild) into one
    script for the page; built once per content of the sources, in a folder named after their hash."""
    sources = [HOST_SOURCES / name for name in ("package.json", "package-lock.json", "host.js")]
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in sources)).hexdigest()[:16]
    built = root / f"host-{digest}"
    bundle = built / "host.bundle.js"
    if bundle.is_file():
        return bundle
    work = Path(tempfile.mkdtemp(dir=root, prefix="building-"))
    for path in sources:
        shutil.copy(path, work / path.name)
    # --ignore-scripts: nothing from the registry runs at install; esbuild's launcher works without it.
    installed = _run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], work)
    if installed.returncode != 0:
        pytest.fail(f"npm ci for the test host page failed:\n{installed.stdout}\n{installed.stderr}")
    esbuild = [node, "node_modules/esbuild/bin/esbuild", "host.js", "--bundle", "--format=iife"]
    bundled = _run([*esbuild, "--log-level=warning", "--outfile=host.bundle.js"], work)
    if bundled.returncode != 0:
        pytest.fail(f"esbuild could not bundle the test host page:\n{bundled.stderr}")
    try:
        work.rename(built)  # another worker may have built it meanwhile: then theirs is kept
    except OSError:
        shutil.rmtree(work, ignore_errors=True)
    return bundle


def _run(command: list[str], folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=300, check=False)


# ------------------------------------------------------------------------------------------------
# A browser with the host page, relaying the viewer's tool calls to the server.
# ------------------------------------------------------------------------------------------------


@dataclass
class ToolCall:
    name: str
    arguments: dict[str, Any]
    result: CallToolResult


@dataclass
class ViewerHost:
    """The test host page and the viewer in it, with what they did."""

    page: Page
    client: Client
    calls: list[ToolCall] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # console errors, page errors, network requests
    _frame: Frame | None = None

    @property
    def frame(self) -> Frame:
        assert self._frame is not None, "mount() first"
        return self._frame

    async def mount(
        self,
        tool: str,
        arguments: dict[str, Any],
        result: CallToolResult,
        context: dict[str, Any] | None = None,
    ) -> None:
        """Renders the viewer as a host does after calling `tool`: reads the resource the tool is bound
        to, loads it in an iframe, answers its ui/initialize with the host context, then sends the tool
        input and the tool result."""
        tools = {t.name: t for t in (await self.client.list_tools()).tools}
        meta = tools[tool].meta or {}
        assert meta["ui"]["resourceUri"] == VIEWER_URI
        resource = await self.client.read_resource(VIEWER_URI)
        page = resource.contents[0]
        assert page.mime_type == "text/html;profile=mcp-app"
        html = getattr(page, "text", "")
        host_context = {
            "theme": "light",
            "displayMode": "inline",
            "availableDisplayModes": ["inline"],
            "platform": "web",
            "toolInfo": {"tool": tools[tool].model_dump(mode="json", by_alias=True, exclude_none=True)},
            **(context or {}),
        }
        connected = await self.page.evaluate(
            "(options) => viewerHost.mount(options)", {"html": html, "hostContext": host_context}
        )
        assert connected["appVersion"]["name"] == "scenario-upscale-viewer"
        handle = await self.page.query_selector("iframe")
        assert handle is not None
        self._frame = await handle.content_frame()
        await self.page.evaluate("(args) => viewerHost.sendToolInput(args)", arguments)
        await self.page.evaluate("(result) => viewerHost.sendToolResult(result)", wire(result))

    async def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        return path

    def regions(self, **matching: Any) -> list[ToolCall]:
        """The view_region calls made so far whose arguments include `matching`."""
        return [
            call
            for call in self.calls
            if call.name == "view_region" and all(call.arguments.get(k) == v for k, v in matching.items())
        ]

    async def pixels(self, canvas: str, points: Sequence[tuple[int, int]]) -> list[RGB]:
        """The colours of a canvas of the viewer at `points` (canvas pixels), as a person sees them."""
        values = await self.frame.evaluate(
            """([id, points]) => {
                const canvas = document.getElementById(id);
                const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
                return points.map(([x, y]) => Array.from(data.slice((y * canvas.width + x) * 4, (y * canvas.width + x) * 4 + 3)));
            }""",
            [canvas, list(points)],
        )
        return [(v[0], v[1], v[2]) for v in values]

    async def canvas_size(self, canvas: str) -> tuple[int, int]:
        size = await self.frame.evaluate(
            "(id) => [document.getElementById(id).width, document.getElementById(id).height]", canvas
        )
        return size[0], size[1]

    async def text(self, selector: str) -> str:
        return (await self.frame.locator(selector).inner_text()).strip()


def wire(result: CallToolResult) -> dict[str, Any]:
    """A tool result as JSON on the wire (camelCase), as a host passes it to the view."""
    dumped: dict[str, Any] = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped


@pytest.fixture
async def viewer_host(client: Client, host_bundle: Path) -> AsyncIterator[ViewerHost]:
    async with async_playwright() as playwright:
        browser: Browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 760, "height": 1000}, device_scale_factor=1)
            page.set_default_timeout(20_000)
            host = ViewerHost(page, client)
            await serve_host_page(page, host, host_bundle)

            async def call_server_tool(source: dict[str, Any], name: str, arguments: dict[str, Any]) -> Any:
                # Only the host page may call: the viewer's calls must go through the host (AppBridge).
                if source["frame"] != page.main_frame:
                    host.problems.append(f"a frame other than the host called {name}")
                    raise RuntimeError("only the host page calls tools")
                result = await client.call_tool(name, arguments)
                host.calls.append(ToolCall(name, arguments, result))
                return wire(result)

            await page.expose_binding("callServerTool", call_server_tool)

            def console(message: ConsoleMessage) -> None:
                if message.type == "error":
                    host.problems.append(f"console error: {message.text}")

            page.on("console", console)
            page.on("pageerror", lambda error: host.problems.append(f"page error: {error}"))
            await page.goto(f"{HOST_ORIGIN}/host.html")
            yield host
            assert host.problems == []
        finally:
            await browser.close()


async def serve_host_page(page: Page, host: ViewerHost, bundle: Path) -> None:
    """The host page and its script, answered by Playwright; any other request is refused and noted."""
    files = {
        f"{HOST_ORIGIN}/host.html": (HOST_SOURCES / "host.html", "text/html"),
        f"{HOST_ORIGIN}/host.bundle.js": (bundle, "text/javascript"),
    }

    async def answer(route: Route) -> None:
        url = route.request.url
        if url in files:
            path, content_type = files[url]
            await route.fulfill(body=path.read_bytes(), content_type=content_type)
        else:
            host.problems.append(f"network request: {url}")
            await route.abort()

    await page.route("**/*", answer)


# ------------------------------------------------------------------------------------------------
# Upscales against the simulator, and images.
# ------------------------------------------------------------------------------------------------


def write_noise(folder: Path, name: str, size: tuple[int, int]) -> Path:
    """Random pixels: the original and its upscale then differ clearly at almost every pixel."""
    path = folder / name
    path.write_bytes(noise_png(size))
    return path


def write_sample(folder: Path, name: str) -> Path:
    """One of the sample images the package ships (a picture; what the screenshots show best)."""
    path = folder / name
    path.write_bytes((SAMPLES / name).read_bytes())
    return path


async def upscale_texture(
    client: Client, image: Path, **arguments: Any
) -> tuple[dict[str, Any], CallToolResult]:
    args: dict[str, Any] = {"image": str(image), **arguments}
    result = await client.call_tool("upscale_texture", args)
    assert not result.is_error, result.content
    return args, result


def decoded(call: ToolCall) -> Image.Image:
    """The image a view_region call answered with, as the viewer received it."""
    block = next(b for b in call.result.content if isinstance(b, ImageContent))
    return Image.open(io.BytesIO(base64.b64decode(block.data))).convert("RGB")


def rgb(image: Image.Image, x: int, y: int) -> RGB:
    r, g, b = image.getpixel((x, y))[:3]  # type: ignore[index]
    return r, g, b


def distance(a: RGB, b: RGB) -> int:
    return sum(abs(p - q) for p, q in zip(a, b, strict=True))


def sampled(canvas_coordinate: int, canvas_size: int, image_size: int) -> int | None:
    """The image pixel a nearest-neighbour draw shows at a canvas pixel, or None when the canvas pixel
    lies too near the border of two image pixels for the answer to be certain."""
    position = (canvas_coordinate + 0.5) * image_size / canvas_size
    if not 0.15 < position % 1 < 0.85:
        return None
    return int(position)


@dataclass
class Probe:
    """A canvas pixel where the original and the result, as drawn, clearly differ."""

    x: int
    y: int
    original: RGB
    result: RGB


def probes(
    canvas: tuple[int, int], original: Image.Image, result: Image.Image, step: int = 23
) -> list[Probe]:
    width, height = canvas
    found = []
    for y in range(step // 2, height, step):
        for x in range(step // 2, width, step):
            points = [
                (sampled(x, width, image.width), sampled(y, height, image.height))
                for image in (original, result)
            ]
            if any(p is None for point in points for p in point):
                continue
            (ox, oy), (rx, ry) = points
            assert ox is not None and oy is not None and rx is not None and ry is not None
            expected_original, expected_result = rgb(original, ox, oy), rgb(result, rx, ry)
            if distance(expected_original, expected_result) > 90:
                found.append(Probe(x, y, expected_original, expected_result))
    return found


def shows(seen: RGB, expected: RGB, other: RGB) -> bool:
    """`seen` is `expected` (within what decoding JPEG in two libraries may change), not `other`."""
    return distance(seen, expected) <= 24 and distance(seen, expected) < distance(seen, other)


async def wait_for_overviews(host: ViewerHost) -> tuple[Image.Image, Image.Image]:
    await host.frame.wait_for_selector('#frame[aria-busy="false"]')
    original = host.regions(which="original", x=0, y=0)
    result = host.regions(which="result", x=0, y=0)
    assert len(original) == 1 and len(result) == 1
    return decoded(original[0]), decoded(result[0])


def announce(path: Path) -> None:
    print(f"viewer screenshot: {path}")  # where the artifact is (shown with -s)


# ------------------------------------------------------------------------------------------------
# The tests.
# ------------------------------------------------------------------------------------------------


async def test_shows_original_and_result_either_side_of_a_divider_that_moves(
    client: Client, viewer_host: ViewerHost, folders: dict[str, Path]
) -> None:
    image = write_noise(folders["images"], "noise.png", (200, 150))
    arguments, result = await upscale_texture(client, image, upscaleFactor=4)
    job = result.structured_content
    assert job is not None and job["status"] == "success"
    output = job["outputs"][0]
    assert (output["width"], output["height"]) == (800, 600)

    await viewer_host.mount("upscale_texture", arguments, result)
    original, upscaled = await wait_for_overviews(viewer_host)
    canvas = await viewer_host.canvas_size("compare")

    # The overviews were cut to the frame by the server: the original whole, the result scaled down.
    [result_overview] = viewer_host.regions(which="result", x=0, y=0)
    assert result_overview.arguments["maxEdge"] == max(canvas)
    assert result_overview.result.structured_content is not None
    assert result_overview.result.structured_content["scale"] < 1
    assert upscaled.size == (canvas[0], round(600 * canvas[0] / 800))
    assert original.size == (200, 150)

    points = probes(canvas, original, upscaled)
    assert len(points) > 100
    split = canvas[0] // 2
    left = [p for p in points if p.x < split - 1]
    right = [p for p in points if p.x > split + 1]
    seen_left = await viewer_host.pixels("compare", [(p.x, p.y) for p in left])
    seen_right = await viewer_host.pixels("compare", [(p.x, p.y) for p in right])
    assert all(shows(s, p.original, p.result) for s, p in zip(seen_left, left, strict=True))
    assert all(shows(s, p.result, p.original) for s, p in zip(seen_right, right, strict=True))
    announce(await viewer_host.screenshot("divider-at-half"))

    # Dragged to a quarter with the pointer: what lay between a quarter and a half is now the result.
    grip = await viewer_host.frame.locator("#divider .grip").bounding_box()
    frame_box = await viewer_host.frame.locator("#frame").bounding_box()
    assert grip is not None and frame_box is not None
    mouse = viewer_host.page.mouse
    await mouse.move(grip["x"] + grip["width"] / 2, grip["y"] + grip["height"] / 2)
    await mouse.down()
    await mouse.move(frame_box["x"] + frame_box["width"] / 4, grip["y"] + grip["height"] / 2, steps=5)
    await mouse.up()
    assert await viewer_host.frame.locator("#divider").get_attribute("aria-valuenow") == "25"
    moved = [p for p in points if canvas[0] // 4 + 1 < p.x < split - 1]
    assert moved
    seen = await viewer_host.pixels("compare", [(p.x, p.y) for p in moved])
    assert all(shows(s, p.result, p.original) for s, p in zip(seen, moved, strict=True))

    # And with the keyboard: End shows the original everywhere, Home the result.
    divider = viewer_host.frame.locator("#divider")
    await divider.press("End")
    seen = await viewer_host.pixels("compare", [(p.x, p.y) for p in points])
    assert all(shows(s, p.original, p.result) for s, p in zip(seen, points, strict=True))
    await divider.press("Home")
    seen = await viewer_host.pixels("compare", [(p.x, p.y) for p in points])
    assert all(shows(s, p.result, p.original) for s, p in zip(seen, points, strict=True))

    # What it is, said in words: sizes, factor, model, preset, cost, where the result was saved.
    facts = await viewer_host.text("#facts")
    assert "200 × 150 → 800 × 600 px" in facts
    assert "×4" in facts
    assert TEXTURE_MODEL in facts
    assert "balanced (default)" in facts
    assert f"{job['creativeUnitsCost']:g} creative units" in facts
    assert output["path"] in facts
    assert await viewer_host.text("#status") == "success"


async def test_the_loupe_shows_the_same_spot_of_both_at_full_size(
    client: Client, viewer_host: ViewerHost, folders: dict[str, Path]
) -> None:
    image = write_sample(folders["images"], "castle.png")
    source = Image.open(image).convert("RGB")
    arguments, result = await upscale_texture(client, image, upscaleFactor=4)
    assert result.structured_content is not None
    output = result.structured_content["outputs"][0]
    saved = Image.open(output["path"]).convert("RGB")
    assert saved.size == (source.width * 4, source.height * 4)
    await viewer_host.mount("upscale_texture", arguments, result)
    await wait_for_overviews(viewer_host)

    await viewer_host.frame.locator("#loupe-toggle").click()
    frame_box = await viewer_host.frame.locator("#frame").bounding_box()
    assert frame_box is not None
    await viewer_host.page.mouse.click(
        frame_box["x"] + frame_box["width"] * 0.3, frame_box["y"] + frame_box["height"] * 0.6
    )
    await viewer_host.frame.wait_for_function(
        "() => document.getElementById('loupe').getAttribute('aria-busy') === 'false'"
        " && document.getElementById('loupe-status').textContent === ''"
    )

    # The crop asked for is the loupe's size, answered at 1:1: bounded, never the whole file.
    crop = viewer_host.regions(which="result")[-1]
    side = crop.arguments["width"]
    assert crop.arguments["height"] == side and 96 <= side <= 640
    assert crop.arguments["maxEdge"] >= side
    region = crop.result.structured_content
    assert region is not None
    assert region["scale"] == 1 and (region["width"], region["height"]) == (side, side)
    assert (region["imageWidth"], region["imageHeight"]) == saved.size
    x, y = region["x"], region["y"]
    assert abs(x + side / 2 - saved.width * 0.3) <= 2 and abs(y + side / 2 - saved.height * 0.6) <= 2
    assert await viewer_host.canvas_size("loupe-result") == (side, side)
    exact = region["mimeType"] == "image/png"

    # The loupe's right half is the saved result's own pixels there; its left half the original's,
    # each original pixel drawn as a 4 × 4 block at the same spot.
    points = [(i, j) for j in range(1, side, 7) for i in range(2, side, 7)]
    seen = await viewer_host.pixels("loupe-result", points)
    for (i, j), colour in zip(points, seen, strict=True):
        assert distance(colour, rgb(saved, x + i, y + j)) <= (0 if exact else 24)
    originals = await viewer_host.pixels("loupe-original", points)
    for (i, j), colour in zip(points, originals, strict=True):
        assert distance(colour, rgb(source, (x + i) // 4, (y + j) // 4)) <= 24
    original_crop = viewer_host.regions(which="original")[-1]
    assert (original_crop.arguments["x"], original_crop.arguments["y"]) == (x // 4, y // 4)
    assert original_crop.arguments["width"] == (x + side + 3) // 4 - x // 4
    caption = await viewer_host.text("#loupe-result-caption")
    assert caption.startswith("Upscaled, 100%")
    announce(await viewer_host.screenshot("loupe"))


async def test_a_texture_tiles_two_by_two(
    client: Client, viewer_host: ViewerHost, folders: dict[str, Path]
) -> None:
    image = write_sample(folders["images"], "stone_tile.png")
    arguments, result = await upscale_texture(client, image, upscaleFactor=2)
    await viewer_host.mount("upscale_texture", arguments, result)
    _, upscaled = await wait_for_overviews(viewer_host)
    await viewer_host.frame.locator("#divider").press("Home")  # the result across the whole frame
    width, height = await viewer_host.canvas_size("compare")
    tile_width, tile_height = width // 2, height // 2
    corner = [(i, j) for j in range(3, tile_height - 3, 11) for i in range(3, tile_width - 3, 11)]

    def copies(points: list[tuple[int, int]], dx: int, dy: int) -> list[tuple[int, int]]:
        return [(i + dx, j + dy) for i, j in points]

    # Untiled, the four quarters of the texture are not alike.
    quarters = [
        await viewer_host.pixels("compare", copies(corner, dx, dy))
        for dx, dy in _quarters(tile_width, tile_height)
    ]
    alike = sum(a == b for a, b in zip(quarters[0], quarters[3], strict=True))
    assert alike < len(corner) / 10

    toggle = viewer_host.frame.locator("#tile-toggle")
    assert await toggle.is_visible()
    await toggle.click()
    assert await toggle.get_attribute("aria-pressed") == "true"
    quarters = [
        await viewer_host.pixels("compare", copies(corner, dx, dy))
        for dx, dy in _quarters(tile_width, tile_height)
    ]
    assert quarters[0] == quarters[1] == quarters[2] == quarters[3]
    # Each copy is the whole result, shrunk to a quarter of the frame.
    for (i, j), colour in zip(corner, quarters[0], strict=True):
        ux, uy = sampled(i, tile_width, upscaled.width), sampled(j, tile_height, upscaled.height)
        if ux is not None and uy is not None:
            assert distance(colour, rgb(upscaled, ux, uy)) <= 24
    announce(await viewer_host.screenshot("tiled"))


def _quarters(tile_width: int, tile_height: int) -> list[tuple[int, int]]:
    return [(0, 0), (tile_width, 0), (0, tile_height), (tile_width, tile_height)]


async def test_jobs_still_running_show_their_progress_in_a_strip(
    client: Client, viewer_host: ViewerHost, folders: dict[str, Path]
) -> None:
    ids = []
    for name in ("a.png", "b.png"):
        _, submitted = await upscale_texture(client, write_noise(folders["images"], name, (64, 64)), wait=0)
        assert submitted.structured_content is not None
        ids.append(submitted.structured_content["jobId"])
    arguments = {"jobIds": ids, "timeout": 0.15}
    result = await client.call_tool("wait_for_jobs", arguments)
    assert result.structured_content is not None
    jobs = result.structured_content["jobs"]
    assert all(job["status"] not in ("success", "failure") for job in jobs)

    await viewer_host.mount("wait_for_jobs", arguments, result)
    strip = viewer_host.frame.locator("#strip button")
    await strip.first.wait_for()
    assert await strip.count() == 2
    for index, job in enumerate(jobs):
        await strip.nth(index).click()
        assert await strip.nth(index).get_attribute("aria-pressed") == "true"
        bar = viewer_host.frame.locator("#progress .bar")
        assert await bar.is_visible()
        assert await bar.get_attribute("aria-valuenow") == str(round(job["progress"] * 100))
        assert job["status"] in await viewer_host.text("#progress-text")
    assert await viewer_host.frame.locator("#viewer").is_hidden()
    assert viewer_host.regions() == []  # nothing to look at yet, so nothing fetched
    announce(await viewer_host.screenshot("running"))


async def test_a_failed_job_shows_its_error_and_hint(
    client: Client, viewer_host: ViewerHost, folders: dict[str, Path], sandbox: Sandbox
) -> None:
    sandbox.faults.fail_next_jobs = 1
    arguments, result = await upscale_texture(client, write_noise(folders["images"], "noise.png", (64, 64)))
    job = result.structured_content
    assert job is not None and job["status"] == "failure" and job["error"] and job["hint"]

    await viewer_host.mount("upscale_texture", arguments, result)
    failure = viewer_host.frame.locator("#failure")
    await failure.wait_for()
    assert await viewer_host.text("#failure-error") == job["error"]
    assert await viewer_host.text("#failure-hint") == f"Hint: {job['hint']}"
    assert await viewer_host.text("#status") == "failure"
    assert await viewer_host.frame.locator("#viewer").is_hidden()
    announce(await viewer_host.screenshot("failed"))


async def test_follows_the_hosts_theme_and_fonts(
    client: Client, viewer_host: ViewerHost, folders: dict[str, Path]
) -> None:
    arguments, result = await upscale_texture(client, write_noise(folders["images"], "noise.png", (64, 64)))
    dark = {
        "theme": "dark",
        "styles": {
            "variables": {"--color-background-primary": "rgb(20, 22, 30)", "--font-sans": "Georgia, serif"}
        },
    }
    await viewer_host.mount("upscale_texture", arguments, result, context=dark)
    await wait_for_overviews(viewer_host)
    style = "() => [document.documentElement.dataset.theme, getComputedStyle(document.body).backgroundColor, getComputedStyle(document.body).fontFamily]"
    assert await viewer_host.frame.evaluate(style) == ["dark", "rgb(20, 22, 30)", "Georgia, serif"]
    announce(await viewer_host.screenshot("dark"))

    light = {"theme": "light", "styles": {"variables": {"--color-background-primary": "rgb(250, 248, 240)"}}}
    await viewer_host.page.evaluate("(context) => viewerHost.setHostContext(context)", {**dark, **light})
    await viewer_host.frame.wait_for_function("() => document.documentElement.dataset.theme === 'light'")
    theme, background, _ = await viewer_host.frame.evaluate(style)
    assert (theme, background) == ("light", "rgb(250, 248, 240)")


async def test_the_iframe_takes_the_height_the_viewer_reports(
    client: Client, viewer_host: ViewerHost, folders: dict[str, Path]
) -> None:
    arguments, result = await upscale_texture(client, write_noise(folders["images"], "noise.png", (96, 64)))
    await viewer_host.mount("upscale_texture", arguments, result)
    await wait_for_overviews(viewer_host)
    await viewer_host.page.wait_for_function(
        """() => {
            const sizes = viewerHost.events.filter((e) => e.type === "size-changed");
            return sizes.length > 0 && Math.abs(viewerHost.iframeHeight() - sizes.at(-1).height) < 1;
        }"""
    )
    content = await viewer_host.frame.evaluate("() => document.documentElement.scrollHeight")
    assert abs(await viewer_host.page.evaluate("() => viewerHost.iframeHeight()") - content) <= 2
