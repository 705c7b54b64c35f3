"""Writing what happens to a submission into the ledger: the job, its attempt, what the API says of it."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scenario_upscale_mcp.api.answers import Job
    from scenario_upscale_mcp.jobs.async_ledger import AsyncLedger
    from scenario_upscale_mcp.jobs.ledger import Attempt, JobRecord, Ledger
    from scenario_upscale_mcp.jobs.submission import Submission

logger = logging.getLogger(__name__)


async def observe(ledger: AsyncLedger, job: Job) -> JobRecord:
    """Write what the API just said about a job to the ledger."""
    cost = job.billing.cu_cost if job.billing else None
    return await ledger(
        lambda db: db.observe_job(
            job.job_id,
            status=job.status,
            progress=job.progress,
            cost=cost,
            error=job.metadata.error,
            hint=job.metadata.hint,
        )
    )


async def record_submission(
    ledger: AsyncLedger, submission: Submission, job: Job, cost: float | None, body: dict[str, Any]
) -> None:
    await ledger(
        lambda db: db.record_submission(
            job_id=job.job_id,
            model=submission.model_id,
            parameters=submission.parameters,
            inputs=body,
            request_key=submission.request_key,
            source_stem=submission.source_stem,
            upscale_factor=submission.upscale_factor,
            output_dir=submission.output_dir,
            batch_id=submission.batch_id,
            status=job.status,
            progress=job.progress,
            cost=cost,
        )
    )


async def finish(ledger: AsyncLedger, attempt: Attempt, outcome: str, job_id: str | None = None) -> None:
    await ledger(lambda db: db.finish_attempt(attempt.attempt_id, outcome=outcome, job_id=job_id))


def mark_sending(ledger: Ledger, *, attempt: Attempt) -> None:
    ledger.mark_sending(attempt.attempt_id, inputs=attempt.inputs)


def get_job_record(ledger: Ledger, *, job_id: str) -> JobRecord | None:
    return ledger.get_job(job_id)


def timestamp(iso: str | None) -> float:
    """Unix seconds of an ISO 8601 instant from the API; 0 when missing or unreadable."""
    if not iso:
        return 0.0
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def clock_text(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%H:%M:%S UTC")
