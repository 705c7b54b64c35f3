"""The job store: starting jobs, rendering their outputs, and the job routes (`GET /jobs/{id}`,
cancel, and `GET /jobs` with its filters and pagination tokens).

A job renders its output (the real upscale, with Pillow) on a thread of its own from the moment it
is created, while its status follows its timeline (`timeline`); it cannot succeed before its output
is rendered. Generate, which starts jobs, is `generate`.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import logging
import threading
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from scenario_upscale_mcp.sandbox.assets import AssetStore, SandboxAsset
from scenario_upscale_mcp.sandbox.clock import Clock, wall_moment
from scenario_upscale_mcp.sandbox.errors import ApiError, bad_request
from scenario_upscale_mcp.sandbox.faults import Faults
from scenario_upscale_mcp.sandbox.imaging import upscaled_png
from scenario_upscale_mcp.sandbox.request_parsing import (
    bool_query,
    date_query,
    json_object,
    reject_unknown_fields,
    reject_unknown_query,
)
from scenario_upscale_mcp.sandbox.timeline import (
    JOB_STATUSES,
    JOB_TYPE,
    TERMINAL_STATUSES,
    RenderedOutput,
    SandboxJob,
)
from scenario_upscale_mcp.sandbox.wire_format import SANDBOX_AUTHOR_ID, iso, new_id

logger = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 50  # GET /jobs: "default value is 50, maximum value is 100, minimum value is 1"
MAX_PAGE_SIZE = 100
# The query parameters the SDK sends (its job_list_params.py names them).
_JOBS_QUERY = (
    "authorId",
    "createdAfter",
    "hideResults",
    "pageSize",
    "paginationToken",
    "projectId",
    "status",
    "type",
    "types",
    "updatedAfter",
    "workflowId",
)


class JobStore:
    """The jobs, by id; `job_seconds` and `max_output_edge` apply to jobs created from then on."""

    def __init__(
        self, clock: Clock, assets: AssetStore, faults: Faults, *, job_seconds: float, max_output_edge: int
    ) -> None:
        self._clock = clock
        self._assets = assets
        self._faults = faults
        self.job_seconds = job_seconds
        self.max_output_edge = max_output_edge
        self.jobs: dict[str, SandboxJob] = {}
        self._sequence = itertools.count(1)

    def start(
        self, model_id: str, inputs: dict[str, Any], source: SandboxAsset, factor: float, cost: int
    ) -> SandboxJob:
        """Create a job (pending) and start rendering its output."""
        will_fail = self._faults.fail_next_jobs > 0
        if will_fail:
            self._faults.fail_next_jobs -= 1
        created = wall_moment(self._clock)
        job = SandboxJob(
            id=new_id("job"),
            model_id=model_id,
            inputs=inputs,
            cost=cost,
            created_at=created,
            started=self._clock.now(),
            duration=max(self.job_seconds, 0.0),
            will_fail=will_fail,
            sequence=next(self._sequence),
            history=[("pending", created)],
        )
        self.jobs[job.id] = job
        if will_fail:
            job.render_finished.set()
        else:
            # Rendered off the event loop from the start; the job cannot succeed before it is done.
            threading.Thread(
                target=self._render, args=(job, source.data, factor), name=f"sandbox-{job.id}", daemon=True
            ).start()
        return job

    def get(self, job_id: str) -> SandboxJob:
        """The job, up to date, or a 404."""
        job = self.jobs.get(job_id)
        if job is None:
            raise ApiError(404, "NotFoundError", "Job not found", {"jobId": job_id})
        self.advance(job)
        return job

    def advance(self, job: SandboxJob) -> None:
        """Bring a job up to date with the clock; at the end of its timeline, store its output."""
        rendered = job.advance(self._clock)
        if rendered is not None:
            asset = self._assets.new(
                rendered.data, "image/png", rendered.width, rendered.height, None, parent_job_id=job.id
            )
            self._assets.add(asset)
            job.succeed(asset.id)

    def in_flight(self) -> int:
        """How many jobs are running now (not in a final status)."""
        for job in self.jobs.values():
            self.advance(job)
        return sum(1 for job in self.jobs.values() if job.status not in TERMINAL_STATUSES)

    def _render(self, job: SandboxJob, data: bytes, factor: float) -> None:
        try:
            png, width, height = upscaled_png(data, factor, self.max_output_edge)
        except Exception as exc:  # Any Pillow failure becomes a failed job, as a model crash would.
            logger.warning("sandbox: could not upscale the input of %s: %s", job.id, exc)
            job.render_error = f"Simulated upscale failed: {exc}"
        else:
            job.rendered = RenderedOutput(png, width, height, wall_moment(self._clock))
        finally:
            job.render_finished.set()

    async def get_job(self, request: Request) -> Response:
        """`GET /jobs/{jobId}`."""
        return JSONResponse({"job": self.get(request.path_params["jobId"]).to_api()})

    async def job_action(self, request: Request) -> Response:
        """`POST /jobs/{jobId}/action`: cancel, refused unless the `cancel_refused` fault is off."""
        job = self.get(request.path_params["jobId"])
        body = await json_object(request)
        reject_unknown_fields(body, ("action",))
        if body.get("action") != "cancel":
            raise bad_request('"action" must be "cancel"', field="action")
        if self._faults.cancel_refused:
            raise bad_request("Cannot cancel this type of job")
        if job.status in TERMINAL_STATUSES:
            raise bad_request(f"Cannot cancel a job whose status is {job.status}", status=job.status)
        job.set_status("canceled", wall_moment(self._clock))
        return JSONResponse({"job": job.to_api()})

    async def list_jobs(self, request: Request) -> Response:
        """`GET /jobs`, with the SDK's query parameters (`jobs.list`): newest first, in pages."""
        reject_unknown_query(request, _JOBS_QUERY)
        query = request.query_params
        page_size = _page_size(request)
        status = query.get("status")
        if status is not None and status not in JOB_STATUSES:
            raise bad_request(
                f'"status" must be one of {", ".join(JOB_STATUSES)} (got {status!r})',
                field="status",
                allowedValues=list(JOB_STATUSES),
            )
        types: list[str] | None = None
        if "types" in query:  # comma separated; "if types is defined, type will be ignored"
            types = query["types"].split(",")
        elif "type" in query:
            types = [query["type"]]
        workflow_id, author_id = query.get("workflowId"), query.get("authorId")
        created_after = date_query(request, "createdAfter")
        updated_after = date_query(request, "updatedAfter")
        bool_query(request, "hideResults")  # Accepted and ignored: the sandbox hides no results.
        # These filters sort by update date, so a creation-date bound makes no sense with them.
        by_update = status is not None or types is not None or workflow_id is not None
        if created_after is not None and by_update:
            raise bad_request(
                '"createdAfter" is only allowed without "status", "type", "types" and "workflowId" '
                '(which sort jobs by update date): use "updatedAfter" with them',
                field="createdAfter",
            )
        if updated_after is not None and not by_update:
            raise bad_request(
                '"updatedAfter" is only allowed with "status", "type", "types" or "workflowId": '
                'without them jobs are sorted by creation date, use "createdAfter"',
                field="updatedAfter",
            )
        order = "updatedAt" if by_update else "createdAt"
        after = _after_key(request, order)
        rows: list[tuple[list[Any], SandboxJob]] = []
        for job in self.jobs.values():
            self.advance(job)
            # Inclusive, so a client that noted the time just before posting always finds its job.
            if created_after is not None and job.created_at < created_after:
                continue
            if updated_after is not None and job.updated_at < updated_after:
                continue
            if status is not None and job.status != status:
                continue
            if types is not None and JOB_TYPE not in types:
                continue
            if workflow_id is not None:
                continue  # The sandbox runs no workflows.
            if author_id is not None and author_id != SANDBOX_AUTHOR_ID:
                continue
            key: list[Any] = [iso(job.updated_at), job.sequence] if by_update else [job.sequence]
            if after is None or key < after:
                rows.append((key, job))
        rows.sort(key=lambda row: row[0], reverse=True)
        if rows and self._faults.empty_job_pages > 0:
            # "A page can hold fewer jobs than pageSize, or none, while nextPaginationToken is set"
            # (the SDK's jobs.list): a token to the same place, just above the first row.
            self._faults.empty_job_pages -= 1
            first = rows[0][0]
            return JSONResponse(
                {"jobs": [], "nextPaginationToken": _pagination_token(order, [*first[:-1], first[-1] + 1])}
            )
        page = rows[:page_size]
        body: dict[str, Any] = {"jobs": [job.to_api() for _, job in page]}
        if len(rows) > page_size:
            body["nextPaginationToken"] = _pagination_token(order, page[-1][0])
        return JSONResponse(body)


def _page_size(request: Request) -> int:
    text = request.query_params.get("pageSize")
    if text is None:
        return DEFAULT_PAGE_SIZE
    try:
        size = int(text)
    except ValueError:
        size = 0
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise bad_request(
            f'"pageSize" must be an integer between 1 and {MAX_PAGE_SIZE} (got {text!r})',
            field="pageSize",
            min=1,
            max=MAX_PAGE_SIZE,
        )
    return size


# The sort key of each order of GET /jobs: [sequence], or [updatedAt, sequence].
_ORDER_KEY_TYPES: dict[str, tuple[type, ...]] = {"createdAt": (int,), "updatedAt": (str, int)}


def _pagination_token(order: str, key: list[Any]) -> str:
    """An opaque token: where the next page starts in the given order."""
    raw = json.dumps({"order": order, "after": key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _after_key(request: Request, order: str) -> list[Any] | None:
    token = request.query_params.get("paginationToken")
    if token is None:
        return None
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        after = decoded["after"] if isinstance(decoded, dict) and decoded.get("order") == order else None
        shape = _ORDER_KEY_TYPES[order]
        if (
            isinstance(after, list)
            and len(after) == len(shape)
            and all(type(item) is kind for item, kind in zip(after, shape, strict=True))
        ):
            return after
    except (binascii.Error, ValueError):
        pass
    raise bad_request(
        '"paginationToken" is not a token from a previous page of this listing', field="paginationToken"
    )
