"""What a host's first tools/list sets off in the background: the SDK's import, then start-up's objects
frozen out of the garbage collector's full scans. Run in a fresh process, as a host starts the server."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import gc, json, sys, threading
    import anyio
    from mcp import Client
    from scenario_upscale_mcp.app import create_server
    from scenario_upscale_mcp.config import Settings

    async def main() -> None:
        before = {"sdk": "scenario_sdk" in sys.modules, "frozen": gc.get_freeze_count()}
        settings = Settings(sandbox=True, state_dir=sys.argv[1], allowed_dirs=[sys.argv[1]])
        async with Client(create_server(settings)) as client:
            await client.list_tools()
        [warm_up] = [thread for thread in threading.enumerate() if thread.name == "warm-up"]
        warm_up.join(timeout=60)
        after = {"sdk": "scenario_sdk" in sys.modules, "frozen": gc.get_freeze_count()}
        print(json.dumps({"before": before, "after": after}))

    anyio.run(main)
    """
)


def test_listing_the_tools_imports_the_sdk_then_freezes_what_start_up_made(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=120, check=True
    )
    seen = json.loads(done.stdout.splitlines()[-1])

    assert seen["before"] == {"sdk": False, "frozen": 0}
    assert seen["after"]["sdk"] is True
    # The SDK, pydantic's and the protocol's types: hundreds of thousands of objects no full scan visits.
    assert seen["after"]["frozen"] > 100_000, seen
