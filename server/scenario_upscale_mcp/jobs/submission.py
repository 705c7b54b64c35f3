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
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import anyio

from scenario_upscale_mcp.api.errors import (
    NotFoundError,
    ParallelLimitError,
    PlanLimitReachedError,
    ScenarioError,
    SubmissionUncertainError,
)

if TYPE_CHECKING:
    from scenario_upscale_mcp.api.answers import Job
    from scenario_upscale_mcp.jobs.ledger import Attempt, JobRecord, Ledger
    from scenario_upscale_mcp.state import AppState

logger = logging.getLogger(__name__)

REUSE_WINDOW_SECONDS = 600.0
PLAN_LIMIT_ATTEMPTS = 3
PLAN_LIMIT_BACKOFF_SECONDS = 2.0
IN_FLIGHT_HORIZON_SECONDS = 24 * 3600.0  # older rows never seen finishing are not counted as running
CLOCK_SKEW_SECONDS = 60.0
SETTLE_GRACE_SECONDS = 15.0


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


async def submit(
    state: AppState, submission: Submission, *, allow_duplicate: bool, wait_budget: float
) -> Submitted:
    deadline = anyio.current_time() + wait_budget
    key = submission.request_key
    plan_limit_refusals = 0
    while True:
        if not allow_duplicate:
            earlier = await _earlier_identical(state, submission, key)
            if earlier is not None:
                return earlier
        await _wait_for_parallel_slot(state, deadline)
        attempt, mine = await state.in_ledger(
            lambda ledger: (
                ledger.claim_attempt(request_key=key, model=submission.model_id, inputs=submission.identity)
                if not allow_duplicate
                else (
                    ledger.begin_attempt(
                        request_key=key, model=submission.model_id, inputs=submission.identity
                    ),
                    True,
                )
            )
        )
        if not mine:
            # The same request is being sent right now (a host retrying, or another server process):
            # wait for its outcome, then look again instead of sending a second one.
            await _wait_until_settled(state, attempt, deadline)
            continue
        try:
            body = await submission.make_body()
        except BaseException:
            # Nothing was sent: an upload failed or the call was cancelled before the request left.
            with anyio.CancelScope(shield=True):
                await _finish(state, attempt, "rejected")
            raise
        attempt = replace(attempt, inputs=body)
        await state.in_ledger(functools.partial(_mark_sending, attempt=attempt))
        try:
            answer = await state.client.generate(submission.model_id, body)
        except SubmissionUncertainError as exc:
            await _finish(state, attempt, "uncertain")
            return await _recover_or_raise(state, submission, attempt, exc)
        except PlanLimitReachedError as exc:
            await _finish(state, attempt, "rejected")
            if exc.not_in_plan:
                raise  # the plan lacks the action altogether: no wait or retry can help
            plan_limit_refusals += 1
            delay = (
                exc.retry_after
                if exc.retry_after is not None
                else PLAN_LIMIT_BACKOFF_SECONDS * plan_limit_refusals
            )
            if plan_limit_refusals == PLAN_LIMIT_ATTEMPTS or anyio.current_time() + delay > deadline:
                raise await _explain_plan_limit(state, exc) from exc
            logger.info("plan limit reached; trying again in %.1f s", delay)
            await anyio.sleep(delay)
            continue
        except ScenarioError:
            # A 4xx, or no connection at all: the API did not accept it, nothing was billed.
            await _finish(state, attempt, "rejected")
            raise
        except BaseException:
            # Cancelled mid-request: the API may have received it. Recorded as uncertain, so an
            # identical request later looks for the job instead of paying again.
            with anyio.CancelScope(shield=True):
                await _finish(state, attempt, "uncertain")
            raise
        if answer.job is None:
            # A success without a job: it may well have been billed. Never send it again blindly.
            await _finish(state, attempt, "uncertain")
            unclear = SubmissionUncertainError("The API accepted the submission but its answer named no job.")
            return await _recover_or_raise(state, submission, attempt, unclear)
        # The job is recorded before the attempt is closed, so that whoever waits on this attempt
        # finds the job; and neither write may be skipped by a cancellation now that money is spent.
        submitted = Submitted(job=answer.job, cost=answer.creative_units_cost)
        with anyio.CancelScope(shield=True):
            try:
                await _record(state, submission, answer.job, answer.creative_units_cost, body)
                await _finish(state, attempt, "accepted", answer.job.job_id)
            except Exception as exc:  # whatever broke the ledger, the paid job must reach the caller
                return _unrecorded(state, key, submitted, exc)
        return submitted


def _unrecorded(state: AppState, key: str, submitted: Submitted, error: Exception) -> Submitted:
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
    state.unrecorded_submissions[key] = (remembered, time.time())
    return remembered


async def _wait_until_settled(state: AppState, attempt: Attempt, deadline: float) -> None:
    """Wait until an attempt in flight elsewhere has an outcome.

    A submission's answer normally comes within a second or two, so this waits at least that long
    even when the caller's own budget (`wait: 0`) is shorter.
    """
    limit = max(deadline, anyio.current_time() + SETTLE_GRACE_SECONDS)
    interval = 0.1
    while True:
        current = await state.in_ledger(lambda ledger: ledger.get_attempt(attempt.attempt_id))
        if current is None or current.outcome != "sending":
            return
        if anyio.current_time() + interval > limit:
            raise SubmissionUncertainError(
                f"An identical request is being submitted right now (since {_clock_text(attempt.sent_at)}); it "
                "was not sent a second time. Call again in a few seconds to get its job, or pass "
                "allowDuplicate=true to submit another one."
            )
        await anyio.sleep(interval)
        interval = min(interval * 1.5, 1.0)


async def _earlier_identical(state: AppState, submission: Submission, key: str) -> Submitted | None:
    """The job an identical earlier request created, if it may be reused; raises if that is unclear."""
    unrecorded = state.unrecorded_submissions.get(key)
    if unrecorded is not None and unrecorded[1] >= time.time() - REUSE_WINDOW_SECONDS:
        return unrecorded[0]
    record = await state.in_ledger(
        lambda ledger: ledger.find_reusable(key, success_window=REUSE_WINDOW_SECONDS)
    )
    job = await _still_worth_reusing(state, record) if record is not None else None
    if record is not None and job is not None:
        return Submitted(
            job=job,
            cost=record.cost,
            notice=(
                f"An identical request was already submitted at {_clock_text(record.created_at)} as job "
                f"{record.job_id}; that job is returned instead of paying again. Pass allowDuplicate=true "
                "to submit a new job anyway."
            ),
        )
    uncertain = await state.in_ledger(
        lambda ledger: ledger.open_uncertain_attempt(key, within=REUSE_WINDOW_SECONDS)
    )
    if uncertain is None:
        return None
    found = await _find_created_job(state, submission, uncertain)
    if found is not None:
        return await _adopt(
            state,
            submission,
            uncertain,
            found,
            f"An identical request sent at {_clock_text(uncertain.sent_at)} had lost its answer; the job "
            f"it created was found ({found.job_id}) and is returned instead of paying again.",
        )
    raise SubmissionUncertainError(
        f"An identical request sent at {_clock_text(uncertain.sent_at)} got no clear answer and may have been "
        "accepted (and billed); it is not sent again automatically. Check your recent jobs on "
        "app.scenario.com, then pass allowDuplicate=true to submit anyway."
    )


async def _still_worth_reusing(state: AppState, record: JobRecord) -> Job | None:
    """The earlier job as it is now, unless it failed, vanished, or is too old to still be running."""
    if record.created_at < time.time() - IN_FLIGHT_HORIZON_SECONDS:
        return None
    try:
        job = await state.client.get_job(record.job_id)
    except NotFoundError:
        return None  # not this account's any more (or the simulator restarted)
    await observe(state, job)
    return None if job.status in ("failure", "canceled") else job


async def _recover_or_raise(
    state: AppState, submission: Submission, attempt: Attempt, error: SubmissionUncertainError
) -> Submitted:
    try:
        found = await _find_created_job(state, submission, attempt)
    except ScenarioError as exc:
        logger.info("could not look for the job a lost answer created: %s", exc)
        found = None
    if found is None:
        raise SubmissionUncertainError(
            f"{error} No matching job is in the API's job list yet; calling again with the same arguments "
            "will look again before submitting anything."
        ) from error
    return await _adopt(
        state,
        submission,
        attempt,
        found,
        f"The API's answer to the submission was lost, but the job it created was found ({found.job_id}); "
        "it was not submitted again.",
    )


async def _adopt(
    state: AppState, submission: Submission, attempt: Attempt, job: Job, notice: str
) -> Submitted:
    """Settle an uncertain attempt with the job it turned out to have created."""
    await _finish(state, attempt, "accepted", job.job_id)
    await _record(state, submission, job, None, attempt.inputs)
    return Submitted(job=job, cost=None, notice=notice)


async def _find_created_job(state: AppState, submission: Submission, attempt: Attempt) -> Job | None:
    """The job the API created for this attempt: created after it was sent, with the same inputs."""
    since = (
        datetime.fromtimestamp(attempt.sent_at - CLOCK_SKEW_SECONDS, tz=UTC)
        .isoformat()
        .replace("+00:00", "Z")
    )
    candidates = await state.client.list_jobs(created_after=since)
    # Filtered here too: an API that ignored createdAfter must not hand back an older identical job.
    recent = [job for job in candidates if _timestamp(job.created_at) >= attempt.sent_at - CLOCK_SKEW_SECONDS]
    for job in sorted(recent, key=lambda job: _timestamp(job.created_at)):
        sent = job.metadata.input or {}
        if not all(sent.get(name) == value for name, value in attempt.inputs.items()):
            continue
        # A job the ledger already knows was submitted by another request: not the one lost here.
        known = await state.in_ledger(functools.partial(_get_job_record, job_id=job.job_id))
        if known is None:
            return job
    return None


async def _wait_for_parallel_slot(state: AppState, deadline: float) -> None:
    """With SCENARIO_MAX_PARALLEL_JOBS, wait (within the budget) until fewer jobs than that are running."""
    cap = state.settings.max_parallel_jobs
    if cap is None:
        return
    interval = state.settings.poll_initial_seconds
    while True:
        running = await running_jobs(state)
        if len(running) < cap:
            return
        remaining = deadline - anyio.current_time()
        if remaining <= 0:
            ids = ", ".join(record.job_id for record in running)
            raise ParallelLimitError(
                f"{len(running)} jobs are running ({ids}) and SCENARIO_MAX_PARALLEL_JOBS is {cap}, so nothing was "
                "submitted. Wait for one to finish (wait_for_jobs), or call again with a larger `wait` to queue."
            )
        await anyio.sleep(min(interval, remaining))
        interval = min(interval * 1.5, state.settings.poll_max_seconds)


async def running_jobs(state: AppState) -> list[JobRecord]:
    """Jobs the ledger thinks are running, refreshed from the API (one request each, concurrently)."""
    records = await state.in_ledger(lambda ledger: ledger.jobs_in_flight())
    horizon = datetime.now(tz=UTC).timestamp() - IN_FLIGHT_HORIZON_SECONDS
    records = [record for record in records if record.created_at >= horizon]
    still_running: list[JobRecord] = []

    async def refresh(record: JobRecord) -> None:
        try:
            job = await state.client.get_job(record.job_id)
        except NotFoundError:
            return  # not this account's job any more: not counted
        except ScenarioError:
            still_running.append(record)  # unknown: assume it still runs
            return
        updated = await observe(state, job)
        if not updated.is_terminal:
            still_running.append(updated)

    async with anyio.create_task_group() as group:
        for record in records:
            group.start_soon(refresh, record)
    return still_running


async def _explain_plan_limit(state: AppState, error: PlanLimitReachedError) -> PlanLimitReachedError:
    try:
        running = await running_jobs(state)
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


async def observe(state: AppState, job: Job) -> JobRecord:
    """Write what the API just said about a job to the ledger."""
    cost = job.billing.cu_cost if job.billing else None
    return await state.in_ledger(
        lambda ledger: ledger.observe_job(
            job.job_id,
            status=job.status,
            progress=job.progress,
            cost=cost,
            error=job.metadata.error,
            hint=job.metadata.hint,
        )
    )


async def _record(
    state: AppState, submission: Submission, job: Job, cost: float | None, body: dict[str, Any]
) -> None:
    await state.in_ledger(
        lambda ledger: ledger.record_submission(
            job_id=job.job_id,
            model=submission.model_id,
            parameters=submission.parameters,
            inputs=body,
            request_key=submission.request_key,
            source_stem=submission.source_stem,
            upscale_factor=submission.upscale_factor,
            status=job.status,
            progress=job.progress,
            cost=cost,
        )
    )


async def _finish(state: AppState, attempt: Attempt, outcome: str, job_id: str | None = None) -> None:
    await state.in_ledger(
        lambda ledger: ledger.finish_attempt(attempt.attempt_id, outcome=outcome, job_id=job_id)
    )


def _mark_sending(ledger: Ledger, *, attempt: Attempt) -> None:
    ledger.mark_sending(attempt.attempt_id, inputs=attempt.inputs)


def _get_job_record(ledger: Ledger, *, job_id: str) -> JobRecord | None:
    return ledger.get_job(job_id)


def _timestamp(iso: str | None) -> float:
    """Unix seconds of an ISO 8601 instant from the API; 0 when missing or unreadable."""
    if not iso:
        return 0.0
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _clock_text(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%H:%M:%S UTC")
