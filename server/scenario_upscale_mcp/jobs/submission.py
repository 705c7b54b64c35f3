"""Submitting a billed job so that it is never billed twice.

- An identical request (same model, same resolved inputs) made while the earlier job runs, or
  within 10 minutes after it succeeded, returns that job instead of paying again (hosts retry
  tool calls after their own timeouts). `allow_duplicate` submits anyway.
- Every submission is written to the ledger *before* it is sent. If the answer is lost (a timeout
  or a 5xx after sending, a dropped connection), the request is not sent again: the API's job list
  is searched for the job it may have created, and a later identical request is refused until
  that is settled.
- The plan's parallel-job cap (429 PlanLimitReachedError) is retried a few times at most, spaced
  by Retry-After or backoff, within the caller's wait budget; then explained with the jobs in flight.
- With SCENARIO_MAX_PARALLEL_JOBS set, submissions wait client-side for a free slot instead.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import anyio

from scenario_upscale_mcp.api.errors import (
    NotFoundError,
    ParallelLimitError,
    PlanLimitReachedError,
    ScenarioError,
    SubmissionUncertainError,
)
from scenario_upscale_mcp.api.statuses import UNSUCCESSFUL_STATUSES
from scenario_upscale_mcp.clock import polling
from scenario_upscale_mcp.jobs.bookkeeping import clock_text, finish, mark_sending, observe, record_submission
from scenario_upscale_mcp.jobs.recovery import adopt, find_created_job, recover_or_raise

if TYPE_CHECKING:
    from scenario_upscale_mcp.api.answers import Job
    from scenario_upscale_mcp.api.client import ScenarioClient
    from scenario_upscale_mcp.clock import Clock
    from scenario_upscale_mcp.jobs.async_ledger import AsyncLedger
    from scenario_upscale_mcp.jobs.ledger import Attempt, JobRecord, Ledger

logger = logging.getLogger(__name__)


REUSE_WINDOW_SECONDS = 600.0
# Ends the notice of an earlier identical job returned; a caller with no allowDuplicate leaves it out.
RESUBMIT_HINT = " Pass allowDuplicate=true to submit a new job anyway."


PLAN_LIMIT_ATTEMPTS = 3


PLAN_LIMIT_BACKOFF_SECONDS = 2.0


IN_FLIGHT_HORIZON_SECONDS = 24 * 3600.0  # older rows never seen finishing are not counted as running


SETTLE_GRACE_SECONDS = 15.0


SETTLE_POLL_FIRST_SECONDS = 0.1


SETTLE_POLL_MAX_SECONDS = 1.0


@dataclass(frozen=True)
class Submission:
    """What a billed request to run a model amounts to.

    Its identity is its content: the model, the inputs the caller set, and every image as the asset id
    given or the hash of its bytes. That is known before anything is uploaded, so identical requests
    made at the same moment are recognised as one, and only the one that wins the claim uploads
    (`make_body`) and sends.
    """

    model_id: str
    identity: dict[str, Any]  # the inputs, images as asset ids or "sha256:<hex>" of their content
    make_body: Callable[[], Awaitable[dict[str, Any]]]  # uploads the images; the API body, asset ids in it
    parameters: dict[str, Any]  # the tool arguments as the assistant gave them
    source_stem: str | None
    upscale_factor: float | None
    output_dir: str | None = None  # the absolute folder the call asked for; None: the output folder
    batch_id: str | None = None  # the batch it belongs to (upscale_batch); not part of its identity

    @property
    def request_key(self) -> str:
        canonical = json.dumps(
            {"model": self.model_id, "inputs": self.identity}, sort_keys=True, separators=(",", ":")
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Submitted:
    job: Job
    cost: float | None
    notice: str | None = None  # said to the assistant when the job was not freshly submitted


UnrecordedJobs = dict[str, tuple[Submitted, float]]


"""Jobs the API accepted that the ledger failed to record: request key → (the answer, when, wall clock)."""


@dataclass(frozen=True)
class Submitter:
    """What a billed submission goes through: the API, the ledger, the clock, and this process's memory of
    jobs the ledger could not record (kept for the process's lifetime, shared by every submission)."""

    client: ScenarioClient
    ledger: AsyncLedger
    clock: Clock
    unrecorded: UnrecordedJobs
    max_parallel_jobs: int | None = None  # SCENARIO_MAX_PARALLEL_JOBS
    poll_initial_seconds: float = 1.0
    poll_max_seconds: float = 5.0


async def submit(
    submitter: Submitter, submission: Submission, *, allow_duplicate: bool, wait_budget: float
) -> Submitted:
    deadline = submitter.clock.now() + wait_budget
    key = submission.request_key
    plan_limit_refusals = 0
    not_reusable: set[str] = set()  # earlier jobs for this request judged not worth reusing, this call
    while True:
        if not allow_duplicate:
            earlier = await _earlier_identical(submitter, submission, key, not_reusable)
            if earlier is not None:
                return earlier
        await _wait_for_parallel_slot(submitter, deadline)
        attempt, mine = await submitter.ledger(
            functools.partial(
                _claim, submission=submission, allow_duplicate=allow_duplicate, skip=frozenset(not_reusable)
            )
        )
        if not mine:
            # The same request is being sent right now (a host retrying, or another server process), or
            # has just made a job since we looked: wait for its outcome, then look again instead of
            # sending a second one.
            if attempt is not None:
                await _wait_until_settled(submitter, attempt, deadline)
            continue
        assert attempt is not None  # claimed: ours to send
        try:
            body = await submission.make_body()
        except BaseException:
            # Nothing was sent: an upload failed or the call was cancelled before the request left.
            with anyio.CancelScope(shield=True):
                await finish(submitter.ledger, attempt, "rejected")
            raise
        attempt = replace(attempt, inputs=body)
        await submitter.ledger(functools.partial(mark_sending, attempt=attempt))
        try:
            answer = await submitter.client.generate(submission.model_id, body)
        except SubmissionUncertainError as exc:
            await finish(submitter.ledger, attempt, "uncertain")
            return await recover_or_raise(submitter, submission, attempt, exc)
        except PlanLimitReachedError as exc:
            await finish(submitter.ledger, attempt, "rejected")
            if exc.not_in_plan:
                raise  # the plan lacks the action altogether: no wait or retry can help
            plan_limit_refusals += 1
            delay = (
                exc.retry_after
                if exc.retry_after is not None
                else PLAN_LIMIT_BACKOFF_SECONDS * plan_limit_refusals
            )
            if plan_limit_refusals == PLAN_LIMIT_ATTEMPTS or submitter.clock.now() + delay > deadline:
                raise await _explain_plan_limit(submitter, exc) from exc
            logger.info("plan limit reached; trying again in %.1f s", delay)
            await submitter.clock.sleep(delay)
            continue
        except ScenarioError:
            # A 4xx, or no connection at all: the API did not accept it, nothing was billed.
            await finish(submitter.ledger, attempt, "rejected")
            raise
        except BaseException:
            # Cancelled mid-request: the API may have received it. Recorded as uncertain, so an
            # identical request later looks for the job instead of paying again.
            with anyio.CancelScope(shield=True):
                await finish(submitter.ledger, attempt, "uncertain")
            raise
        if answer.job is None:
            # A success without a job: it may well have been billed. Never send it again blindly.
            await finish(submitter.ledger, attempt, "uncertain")
            unclear = SubmissionUncertainError("The API accepted the submission but its answer named no job.")
            return await recover_or_raise(submitter, submission, attempt, unclear)
        # The job is recorded before the attempt is closed, so that whoever waits on this attempt
        # finds the job; and neither write may be skipped by a cancellation now that money is spent.
        submitted = Submitted(job=answer.job, cost=answer.creative_units_cost)
        with anyio.CancelScope(shield=True):
            try:
                await record_submission(
                    submitter.ledger, submission, answer.job, answer.creative_units_cost, body
                )
                await finish(submitter.ledger, attempt, "accepted", answer.job.job_id)
            except Exception as exc:  # whatever broke the ledger, the paid job must reach the caller
                return _unrecorded(submitter, key, submitted, exc)
        return submitted


def _unrecorded(submitter: Submitter, key: str, submitted: Submitted, error: Exception) -> Submitted:
    """A job the API accepted (and bills) that the ledger could not record: answer with it all the same.

    It is kept in this process's memory, so an identical request here returns it instead of paying
    again; the answer says plainly what is not being recorded and what that means.
    """
    logger.error("job %s was accepted but the ledger could not record it: %s", submitted.job.job_id, error)
    why = str(error) if isinstance(error, ScenarioError) else type(error).__name__
    notice = (
        f"The job was submitted and is billed, but the job ledger is not recording ({why}). Keep this job "
        f"id ({submitted.job.job_id}): use it with wait_for_jobs or get_job. Until the ledger works again, "
        "list_jobs will not show the job, and an identical request from another server process (or after a "
        "restart) would not be recognised as already submitted."
    )
    remembered = replace(submitted, notice=notice)
    submitter.unrecorded[key] = (remembered, submitter.clock.wall())
    return remembered


async def _wait_until_settled(submitter: Submitter, attempt: Attempt, deadline: float) -> None:
    """Wait until an attempt in flight elsewhere has an outcome.

    A submission's answer normally comes within a second or two, so this waits at least that long
    even when the caller's own budget (`wait: 0`) is shorter.
    """
    limit = max(deadline, submitter.clock.now() + SETTLE_GRACE_SECONDS)
    async for _ in polling(
        submitter.clock, first=SETTLE_POLL_FIRST_SECONDS, cap=SETTLE_POLL_MAX_SECONDS, deadline=limit
    ):
        current = await submitter.ledger(lambda ledger: ledger.get_attempt(attempt.attempt_id))
        if current is None or current.outcome != "sending":
            return
    raise SubmissionUncertainError(
        f"An identical request is being submitted right now (since {clock_text(attempt.sent_at)}); it "
        "was not sent a second time. Call again in a few seconds to get its job, or pass "
        "allowDuplicate=true to submit another one."
    )


def _claim(
    ledger: Ledger, *, submission: Submission, allow_duplicate: bool, skip: frozenset[str]
) -> tuple[Attempt | None, bool]:
    """Claim the right to send (see `Ledger.claim_attempt`); with `allow_duplicate`, always granted."""
    key, model, identity = submission.request_key, submission.model_id, submission.identity
    if allow_duplicate:
        return ledger.begin_attempt(request_key=key, model=model, inputs=identity), True
    return ledger.claim_attempt(
        request_key=key, model=model, inputs=identity, success_window=REUSE_WINDOW_SECONDS, skip_jobs=skip
    )


async def _earlier_identical(
    submitter: Submitter, submission: Submission, key: str, not_reusable: set[str]
) -> Submitted | None:
    """The job an identical earlier request created, if it may be reused; raises if that is unclear.

    A job looked at and found not worth reusing is added to `not_reusable`, so the claim that follows
    does not send the caller back to it.
    """
    unrecorded = submitter.unrecorded.get(key)
    if unrecorded is not None and unrecorded[1] >= submitter.clock.wall() - REUSE_WINDOW_SECONDS:
        return unrecorded[0]
    record = await submitter.ledger(
        lambda ledger: ledger.find_reusable(key, success_window=REUSE_WINDOW_SECONDS)
    )
    job = await _still_worth_reusing(submitter, record) if record is not None else None
    if record is not None and job is None:
        not_reusable.add(record.job_id)
    if record is not None and job is not None:
        return Submitted(
            job=job,
            cost=record.cost,
            notice=(
                f"An identical request was already submitted at {clock_text(record.created_at)} as job "
                f"{record.job_id}; that job is returned instead of paying again.{RESUBMIT_HINT}"
            ),
        )
    uncertain = await submitter.ledger(
        lambda ledger: ledger.open_uncertain_attempt(key, within=REUSE_WINDOW_SECONDS)
    )
    if uncertain is None:
        return None
    found = await find_created_job(submitter, submission, uncertain)
    if found is not None:
        return await adopt(
            submitter,
            submission,
            uncertain,
            found,
            f"An identical request sent at {clock_text(uncertain.sent_at)} had lost its answer; the job "
            f"it created was found ({found.job_id}) and is returned instead of paying again.",
        )
    raise SubmissionUncertainError(
        f"An identical request sent at {clock_text(uncertain.sent_at)} got no clear answer and may have been "
        "accepted (and billed); it is not sent again automatically. Check your recent jobs on "
        "app.scenario.com, then pass allowDuplicate=true to submit anyway."
    )


async def _still_worth_reusing(submitter: Submitter, record: JobRecord) -> Job | None:
    """The earlier job as it is now, unless it failed, vanished, or is too old to still be running."""
    if record.created_at < submitter.clock.wall() - IN_FLIGHT_HORIZON_SECONDS:
        return None
    try:
        job = await submitter.client.get_job(record.job_id)
    except NotFoundError:
        return None  # not this account's any more (or the simulator restarted)
    await observe(submitter.ledger, job)
    return None if job.status in UNSUCCESSFUL_STATUSES else job


async def _wait_for_parallel_slot(submitter: Submitter, deadline: float) -> None:
    """With SCENARIO_MAX_PARALLEL_JOBS, wait (within the budget) until fewer jobs than that are running."""
    cap = submitter.max_parallel_jobs
    if cap is None:
        return
    running: list[JobRecord] = []
    async for _ in polling(
        submitter.clock,
        first=submitter.poll_initial_seconds,
        cap=submitter.poll_max_seconds,
        deadline=deadline,
    ):
        running = await running_jobs(submitter.client, submitter.ledger, submitter.clock)
        if len(running) < cap:
            return
    ids = ", ".join(record.job_id for record in running)
    raise ParallelLimitError(
        f"{len(running)} jobs are running ({ids}) and SCENARIO_MAX_PARALLEL_JOBS is {cap}, so nothing was "
        "submitted. Wait for one to finish (wait_for_jobs), or call again with a larger `wait` to queue."
    )


async def running_jobs(client: ScenarioClient, ledger: AsyncLedger, clock: Clock) -> list[JobRecord]:
    """Jobs the ledger thinks are running, refreshed from the API (one request each, concurrently)."""
    records = await ledger(lambda db: db.jobs_in_flight())
    horizon = clock.wall() - IN_FLIGHT_HORIZON_SECONDS
    records = [record for record in records if record.created_at >= horizon]
    still_running: list[JobRecord] = []

    async def refresh(record: JobRecord) -> None:
        try:
            job = await client.get_job(record.job_id)
        except NotFoundError:
            return  # not this account's job any more: not counted
        except ScenarioError:
            still_running.append(record)  # unknown: assume it still runs
            return
        updated = await observe(ledger, job)
        if not updated.is_terminal:
            still_running.append(updated)

    async with anyio.create_task_group() as group:
        for record in records:
            group.start_soon(refresh, record)
    return still_running


async def _explain_plan_limit(submitter: Submitter, error: PlanLimitReachedError) -> PlanLimitReachedError:
    try:
        running = await running_jobs(submitter.client, submitter.ledger, submitter.clock)
    except ScenarioError:
        running = []
    known = (
        f" Jobs this server knows are running: {', '.join(r.job_id for r in running)}."
        if running
        else " None of the running jobs were started by this server."
    )
    return PlanLimitReachedError(
        f"{error}{known} Call wait_for_jobs on a running job, then submit again.",
        status=error.status,
        name=error.name,
        reason=error.reason,
        details=error.details,
        retry_after=error.retry_after,
    )
