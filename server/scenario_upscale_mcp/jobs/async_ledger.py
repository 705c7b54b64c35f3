"""The ledger as async code reaches it: each operation on a worker thread, the ledger opened on first use.

SQLite may wait on another server process's lock, so no ledger call runs on the event loop. The
layers that record jobs and uploads take an `AsyncLedger`; a test makes one over a temporary folder:

    ledger = AsyncLedger(lambda: Ledger.in_folder(tmp_path))
    record = await ledger(lambda l: l.get_job("job_1"))
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import anyio

if TYPE_CHECKING:
    from scenario_upscale_mcp.jobs.ledger import Ledger

T = TypeVar("T")


class AsyncLedger:
    """`await ledger(operation)` runs `operation(the ledger)` on a worker thread and returns its result."""

    def __init__(self, open_ledger: Callable[[], Ledger]) -> None:
        self._open_ledger = open_ledger
        self._ledger: Ledger | None = None
        self._lock = threading.Lock()

    async def __call__(self, operation: Callable[[Ledger], T]) -> T:
        return await anyio.to_thread.run_sync(lambda: operation(self._opened()))

    def _opened(self) -> Ledger:
        # Under a lock: the first ledger calls arrive on several worker threads at once.
        with self._lock:
            if self._ledger is None:
                self._ledger = self._open_ledger()
            return self._ledger

    def close(self) -> None:
        """Close the ledger if it was opened."""
        with self._lock:
            if self._ledger is not None:
                self._ledger.close()
