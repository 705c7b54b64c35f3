"""A job's statuses, as the API names them: written here once, derived everywhere else (the ledger's SQL too).

A job runs through some of the running statuses and ends in one terminal status. The API may add
statuses: one not listed here is treated as running (`api.answers.Job`, the ledger), never refused.
Only `typing` is imported: the ledger, part of start-up, reads these.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

RunningStatus = Literal["pending", "queued", "warming-up", "in-progress", "finalizing"]
TerminalStatus = Literal["success", "failure", "canceled"]
JobStatus = Literal[RunningStatus, TerminalStatus]

# Tuples, in the order above: the same text each time they are spelled out (in SQL, in a message).
RUNNING_STATUSES: Final[tuple[str, ...]] = get_args(RunningStatus)
TERMINAL_STATUSES: Final[tuple[str, ...]] = get_args(TerminalStatus)
JOB_STATUSES: Final[tuple[str, ...]] = RUNNING_STATUSES + TERMINAL_STATUSES

SUCCESS: Final[TerminalStatus] = "success"
# Ended without a result: asking again is how such a job is retried.
UNSUCCESSFUL_STATUSES: Final[tuple[str, ...]] = tuple(s for s in TERMINAL_STATUSES if s != SUCCESS)
