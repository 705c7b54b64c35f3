"""Is `SCENARIO_BASE_URL` the built-in simulator, run on its own (`scenario-upscale-mcp sandbox`)?

The rule: a base URL is the simulator when its host is a loopback address (127.0.0.0/8, ::1 or
`localhost`) and its answer to a plain `GET` of the base URL carries the header every answer of the
simulator carries (`x-scenario-sandbox: simulator`). Then the server needs no credentials (it sends
dummy ones, never the user's) and keeps its jobs in the sandbox ledger, not the real one.

Why both halves: a URL on another host is never asked at all, so a real API, or anything on the
network, is never taken for the simulator, whatever it answers; and a loopback URL is asked first,
with no credentials, so a local proxy to the real API (which sends no such header) keeps the user's
credentials and ledger. The question carries no credential, so asking it sends nothing secret anywhere.

`SCENARIO_SANDBOX=1` says the same without asking (the server then uses the simulator at
`SCENARIO_BASE_URL`, or starts its own when that is unset).
"""

from __future__ import annotations

import ipaddress
import logging
from urllib.parse import urlsplit

import httpx

logger = logging.getLogger(__name__)

# The simulator's `wire_format.SANDBOX_HEADER` and its value (a test holds them equal; this layer
# does not import the simulator, which would load it).
SIMULATOR_HEADER = "x-scenario-sandbox"
SIMULATOR_MARK = "simulator"
PROBE_TIMEOUT_SECONDS = 3.0


def is_loopback_url(url: str) -> bool:
    """Whether `url` is http(s) to a loopback address or `localhost` (no name is resolved)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def answers_as_simulator(base_url: str, *, timeout: float = PROBE_TIMEOUT_SECONDS) -> bool | None:
    """True if `base_url` is the simulator (see the module), False if it is not, None if a loopback
    `base_url` did not answer (nothing listens there yet, say). Blocks for at most `timeout`."""
    if not is_loopback_url(base_url):
        return False
    try:
        # No credentials, no proxy from the environment (loopback is reached directly), no redirect.
        with httpx.Client(timeout=timeout, trust_env=False, follow_redirects=False) as client:
            response = client.get(base_url)
    except httpx.HTTPError as exc:
        logger.debug("SCENARIO_BASE_URL %s did not answer: %s", base_url, exc)
        return None
    mark: str | None = response.headers.get(SIMULATOR_HEADER)
    return mark == SIMULATOR_MARK
