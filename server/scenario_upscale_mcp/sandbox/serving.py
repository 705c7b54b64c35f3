"""Running the simulator over a real socket: uvicorn on loopback, in a thread or until Ctrl-C.

Tests mostly run the app in-process (`httpx.ASGITransport(app=sandbox.app)`); a socket is for the
server started with `SCENARIO_SANDBOX=1`, the demo, and `scenario-upscale-mcp sandbox`, whose
options are parsed by the server's command line (`cli.py`), the one parser.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from scenario_upscale_mcp.sandbox.app import Sandbox

logger = logging.getLogger(__name__)


def require_loopback(host: str) -> None:
    """Raise ValueError unless `host` is a loopback address (or "localhost")."""
    # The simulator accepts any credentials: it must never listen beyond this machine.
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"The sandbox only listens on loopback addresses, not {host!r}")


@contextmanager
def serve_in_thread(sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run uvicorn in a daemon thread on loopback; yield the API base URL; stop on exit.

    The URL looks like "http://127.0.0.1:54321/v1"; port 0 picks a free port.
    """
    require_loopback(host)
    config = uvicorn.Config(
        sandbox.app,
        host=host,
        port=port,
        http="h11",
        ws="none",
        lifespan="off",
        access_log=False,
        log_config=None,  # leave the host process's logging alone
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="scenario-sandbox", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"The sandbox server did not start on {host}:{port}")
        time.sleep(0.01)
    bound_port = server.servers[0].sockets[0].getsockname()[1]
    url_host = f"[{host}]" if ":" in host else host
    try:
        yield f"http://{url_host}:{bound_port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def serve_until_interrupted(sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0) -> None:
    """Serve `sandbox` on loopback until Ctrl-C, logging its base URL (to stderr: stdout stays free)."""
    with serve_in_thread(sandbox, host, port) as base_url:
        logger.info("Scenario API simulator (not Scenario's API) listening at %s", base_url)
        if sandbox.state_dir is not None:
            logger.info("Its assets and jobs are kept in %s", sandbox.state_dir)
        logger.info(
            "Set SCENARIO_BASE_URL=%s for the server: it needs no API key or secret for the simulator. "
            "Ctrl-C stops.",
            base_url,
        )
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            logger.info("stopping the sandbox")
