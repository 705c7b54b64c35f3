"""Progress as the protocol wants it: each notification's value greater than the last one's."""

from __future__ import annotations

from scenario_upscale_tools.arguments import ToolContext


class MonotonicProgress:
    """Reports progress through `ctx.report_progress`, dropping a value that is not above the last one.

    The protocol says progress "MUST increase with each notification"; a job's status changes (queued,
    then in-progress at the same 0%) and a poll round that moved nothing would otherwise repeat a value,
    and a job that restarts its progress would report a lower one.
    """

    def __init__(self, ctx: ToolContext, total: float = 1.0) -> None:
        self._ctx = ctx
        self._total = total
        self._last: float | None = None

    async def report(self, progress: float, message: str | None = None) -> None:
        progress = min(self._total, max(0.0, progress))
        if self._last is not None and progress <= self._last:
            return
        self._last = progress
        await self._ctx.report_progress(progress, self._total, message)
