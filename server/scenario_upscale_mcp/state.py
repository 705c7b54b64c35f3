"""What the server holds for its lifetime: the settings and the one API client, each made on first use.

Made lazily so that start-up (spawn → tools/list) imports neither the HTTP stack nor
pydantic-settings: a host that only lists the tools never pays for them, and the first tool call
pays once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import ExitStack
from functools import cached_property
from typing import TYPE_CHECKING, TypeVar

import anyio

from scenario_upscale_mcp.images.public_hosts import Resolver, system_resolver

if TYPE_CHECKING:
    import httpx

    from scenario_upscale_mcp.api.client import ScenarioClient
    from scenario_upscale_mcp.config import Settings
    from scenario_upscale_mcp.jobs.ledger import Ledger
    from scenario_upscale_mcp.jobs.submission import Submitted

T = TypeVar("T")
logger = logging.getLogger(__name__)


class AppState:
    def __init__(
        self,
        settings: Settings | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        self._given_settings = settings
        self._transport = transport
        self.resolver: Resolver = resolver or system_resolver
        self._resources = ExitStack()
        self._ledger: Ledger | None = None
        self._ledger_lock = threading.Lock()
        # Jobs the API accepted that the ledger failed to record: request key → (answer, when).
        self.unrecorded_submissions: dict[str, tuple[Submitted, float]] = {}

    @cached_property
    def settings(self) -> Settings:
        if self._given_settings is not None:
            return self._given_settings
        from scenario_upscale_mcp.config import Settings

        return Settings()

    @cached_property
    def client(self) -> ScenarioClient:
        from scenario_upscale_mcp.api.client import ScenarioClient

        settings = self.settings
        base_url = settings.base_url
        if settings.sandbox and base_url is None and self._transport is None:
            from scenario_upscale_mcp.sandbox import Sandbox, serve_in_thread

            base_url = self._resources.enter_context(serve_in_thread(Sandbox()))
            logger.info("SCENARIO_SANDBOX=1: using the built-in simulator at %s", base_url)
        if settings.credentials() is None:
            logger.warning("no credentials: set SCENARIO_SDK_API_KEY and SCENARIO_SDK_API_SECRET")
        return ScenarioClient(settings, base_url=base_url, transport=self._transport)

    def _open_ledger(self) -> Ledger:
        # Under a lock: the first ledger calls arrive on several worker threads at once.
        with self._ledger_lock:
            if self._ledger is None:
                from scenario_upscale_mcp.jobs.ledger import Ledger

                # The simulator's jobs and assets are not Scenario's: they get a ledger of their own.
                folder = (
                    self.settings.state_dir / "sandbox" if self.settings.sandbox else self.settings.state_dir
                )
                self._ledger = Ledger.in_folder(folder)
            return self._ledger

    async def in_ledger(self, operation: Callable[[Ledger], T]) -> T:
        """Run a ledger operation on a worker thread: SQLite may wait on another process's lock."""
        return await anyio.to_thread.run_sync(lambda: operation(self._open_ledger()))

    async def aclose(self) -> None:
        """Close what was opened: the HTTP client, the ledger, and the simulator if one was started."""
        try:
            if "client" in self.__dict__:
                await self.client.aclose()
        finally:
            if self._ledger is not None:
                self._ledger.close()
            self._resources.close()
