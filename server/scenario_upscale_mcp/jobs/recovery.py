"""Lost answers: finding the job a submission created when its answer never came, so it is not sent again."""

from __future__ import annotations

import functools
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from scenario_upscale_mcp.api.errors import ScenarioError, SubmissionUncertainError
from scenario_upscale_mcp.jobs.bookkeeping import finish, get_job_record, record_submission, timestamp

if TYPE_CHECKING:
    from scenario_upscale_mcp.api.answers import Job
    from scenario_upscale_mcp.jobs.ledger import Attempt
    from scenario_upscale_mcp.jobs.submission import Submission, Submitted, Submitter

logger = logging.getLogger(__name__)


CLOCK_SKEW_SECONDS = 60.0


async def recover_or_raise(
    submitter: Submitter, submission: Submission, attempt: Attempt, error: SubmissionUncertainError
) -> Submitted:
    try:
        found = await find_created_job(submitter, submission, attempt)
    except ScenarioError as exc:
        logger.info("could not look for the job a lost answer created: %s", exc)
        found = None
    if found is None:
        raise SubmissionUncertainError(
            f"{error} No matching job is in the API's job list yet; calling again with the same arguments "
            "will look again before submitting anything."
        ) from error
    return await adopt(
        submitter,
        submission,
        attempt,
        found,
        f"The API's answer to the submission was lost, but the job it created was found ({found.job_id}); "
        "it was not submitted again.",
    )


async def adopt(
    submitter: Submitter, submission: Submission, attempt: Attempt, job: Job, notice: str
) -> Submitted:
    """Settle an uncertain attempt with the job it turned out to have created."""
    await finish(submitter.ledger, attempt, "accepted", job.job_id)
    await record_submission(submitter.ledger, submission, job, None, attempt.inputs)
    from scenario_upscale_mcp.jobs.submission import Submitted  # submission imports this module

    return Submitted(job=job, cost=None, notice=notice)


async def find_created_job(submitter: Submitter, submission: Submission, attempt: Attempt) -> Job | None:
    """The job the API created for this attempt: created after it was sent, with the same inputs."""
    since = (
        datetime.fromtimestamp(attempt.sent_at - CLOCK_SKEW_SECONDS, tz=UTC)
        .isoformat()
        .replace("+00:00", "Z")
    )
    candidates = await submitter.client.list_jobs(created_after=since)
    # Filtered here too: an API that ignored createdAfter must not hand back an older identical job.
    recent = [job for job in candidates if timestamp(job.created_at) >= attempt.sent_at - CLOCK_SKEW_SECONDS]
    for job in sorted(recent, key=lambda job: timestamp(job.created_at)):
        sent = job.metadata.input or {}
        if not all(sent.get(name) == value for name, value in attempt.inputs.items()):
            continue
        # A job the ledger already knows was submitted by another request: not the one lost here.
        known = await submitter.ledger(functools.partial(get_job_record, job_id=job.job_id))
        if known is None:
            return job
    return None
