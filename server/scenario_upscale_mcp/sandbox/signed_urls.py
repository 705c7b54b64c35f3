"""Signed, expiring URLs, as object storage presigns them: the CDN's and the upload parts'.

A URL carries `expires` (epoch seconds, on the clock's `wall`) and `sig`, an HMAC of the resource
and the expiry under a secret of this simulator (kept in its state folder, when it has one, so that
every process sharing the folder, or started after a restart, honours the URLs the others signed).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.requests import Request

from scenario_upscale_mcp.sandbox.clock import Clock


class UrlSigner:
    def __init__(self, clock: Clock, secret: bytes | None = None) -> None:
        self._clock = clock
        self._secret = secret or secrets.token_bytes(32)

    def expiry(self, ttl_seconds: int) -> int:
        """The `expires` of a URL signed now, valid for `ttl_seconds`."""
        return int(self._clock.wall()) + ttl_seconds

    def query(self, resource: str, expires: int) -> str:
        """The query string that signs `resource` until `expires`."""
        return f"expires={expires}&sig={self._sign(resource, expires)}"

    def check(self, resource: str, request: Request) -> tuple[bool, int]:
        """(whether the request's signature is right for `resource`, the `expires` it carries)."""
        try:
            expires = int(request.query_params.get("expires", ""))
        except ValueError:
            return False, 0
        expected = self._sign(resource, expires)
        return hmac.compare_digest(expected, request.query_params.get("sig", "")), expires

    def expired(self, expires: int) -> bool:
        return expires < self._clock.wall()

    def _sign(self, resource: str, expires: int) -> str:
        return hmac.new(self._secret, f"{resource}\n{expires}".encode(), hashlib.sha256).hexdigest()
