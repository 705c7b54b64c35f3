"""The job store: starting jobs, rendering their outputs, and the job routes (`GET /jobs/{id}`,
cancel, and `GET /jobs` with its filters and pagination tokens).

A job renders its output (the real upscale, with Pillow) on a thread of its own from the moment it
is created, while its status follows its timeline (`timeline`); it cannot succeed before its output
is rendered. Generate, which starts jobs, is `generate`.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
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
from scenario_upscale_mcp.sandbox.storage import Blob, Storage, Table
from scenario_upscale_mcp.sandbox.timeline import (
    JOB_STATUSES,
    JOB_TYPE,
    TERMINAL_STATUSES,
    JobCodec,
    Render,
    RenderCodec,
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
    """The jobs, by id; `job_seconds` and `max_output_edge` apply to jobs created from then on.

    In a state folder, jobs are shared with every simulator process that opens it: a job is changed
    only inside `jobs.modify` (one transaction), and its output is rendered by whichever process finds
    it unrendered and not being rendered here: the process that created it may have ended, and two
    renders of one job make the same image (the first one stored is kept).
    """

    def __init__(
        self,
        clock: Clock,
        assets: AssetStore,
        faults: Faults,
        storage: Storage,
        *,
        job_seconds: float,
        max_output_edge: int,
    ) -> None:
        self._clock = clock
        self._assets = assets
        self._faults = faults
        self._storage = storage
        self.job_seconds = job_seconds
        self.max_output_edge = max_output_edge
        # Rendered outputs (or why rendering failed) of jobs that have not succeeded yet.
        self._renders: Table[Render] = storage.table("renders", RenderCodec())
        self.jobs: Table[SandboxJob] = storage.table("jobs", JobCodec(self._renders.__contains__))
        self._rendering: dict[str, threading.Thread] = {}  # jobs this process is rendering now
        self._rendering_lock = threading.Lock()

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
            sequence=self._storage.next_sequence("jobs"),
            source_asset_id=source.id,
            factor=factor,
            max_output_edge=self.max_output_edge,
            history=[("pending", created)],
        )
        self.jobs[job.id] = job
        if will_fail:
            job.render_finished.set()
        else:
            # Rendered off the event loop from the start; the job cannot succeed before it is done.
            self._start_render(job, source.content)
        return job

    def get(self, job_id: str) -> SandboxJob:
        """The job, up to date, or a 404."""
        job = self.jobs.get(job_id)
        if job is None:
            raise ApiError(404, "NotFoundError", "Job not found", {"jobId": job_id})
        if job.status in TERMINAL_STATUSES:
            return job  # nothing more will happen to it
        return self.jobs.modify(job_id, self._advanced)

    def _advanced(self, job: SandboxJob) -> SandboxJob:
        self.advance(job)
        return job

    def advance(self, job: SandboxJob) -> None:
        """Bring a job up to date with the clock; at the end of its timeline, store its output.

        In a state folder, only inside `jobs.modify` (so that the change is stored, and only once)."""
        if job.status in TERMINAL_STATUSES:
            return
        if job.rendered is None and job.render_error is None and not job.will_fail:
            self._find_render(job)
        rendered = job.advance(self._clock)
        if rendered is not None:
            asset = self._assets.new(
                rendered.content, "image/png", rendered.width, rendered.height, None, parent_job_id=job.id
            )
            self._assets.add(asset)
            job.succeed(asset.id)
            self._renders.pop(job.id, None)  # the asset holds the output now

    def _find_render(self, job: SandboxJob) -> None:
        """Take the job's stored render, or start rendering it if nothing here is (see the class)."""
        with self._rendering_lock:
            if job.id in self._rendering:
                return
        # Checked after `_rendering`: a render thread stores its result before it leaves `_rendering`.
        render = self._renders.get(job.id)
        if render is not None:
            job.rendered, job.render_error = render.output, render.error
            return
        self._start_render(job, None)

    def _start_render(self, job: SandboxJob, source: Blob | None) -> None:
        with self._rendering_lock:
            if job.id in self._rendering:
                return
            thread = threading.Thread(
                target=self._render, args=(job, source), name=f"sandbox-{job.id}", daemon=True
            )
            self._rendering[job.id] = thread
        thread.start()

    def _render(self, job: SandboxJob, source: Blob | None) -> None:
        try:
            try:
                data = (source or self._assets.get(job.source_asset_id).content).read()
                png, width, height = upscaled_png(data, job.factor, job.max_output_edge)
            except Exception as exc:  # Any Pillow failure becomes a failed job, as a model crash would.
                logger.warning("sandbox: could not upscale the input of %s: %s", job.id, exc)
                render = Render(error=f"Simulated upscale failed: {exc}")
            else:
                output = RenderedOutput(self._storage.blob(png), width, height, wall_moment(self._clock))
                render = Render(output)
            # The first render stored is the one kept (another process may have rendered it too).
            stored = self._renders.setdefault(job.id, render)
            job.rendered, job.render_error = stored.output, stored.error
        except Exception:  # The state folder closed under it (the simulator is stopping).
            logger.warning("sandbox: could not store the output of %s", job.id, exc_info=True)
        finally:
            job.render_finished.set()
            with self._rendering_lock:
                self._rendering.pop(job.id, None)

    def wait_for_renders(self, timeout: float) -> None:
        """Wait up to `timeout` seconds in all for the renders running in this process."""
        deadline = time.monotonic() + timeout
        with self._rendering_lock:
            threads = list(self._rendering.values())
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def in_flight(self) -> int:
        """How many jobs are running now (not in a final status)."""
        return sum(1 for job_id in self.jobs if self.get(job_id).status not in TERMINAL_STATUSES)

    async def get_job(self, request: Request) -> Response:
        """`GET /jobs/{jobId}`."""
        return JSONResponse({"job": self.get(request.path_params["jobId"]).to_api()})

    async def job_action(self, request: Request) -> Response:
        """`POST /jobs/{jobId}/action`: cancel, refused unless the `cancel_refused` fault is off."""
        job_id = request.path_params["jobId"]
        self.get(job_id)  # a 404 first
        body = await json_object(request)
        reject_unknown_fields(body, ("action",))
        if body.get("action") != "cancel":
            raise bad_request('"action" must be "cancel"', field="action")
        if self._faults.cancel_refused:
            raise bad_request("Cannot cancel this type of job")

        def cancel(job: SandboxJob) -> SandboxJob:
            self.advance(job)
            if job.status in TERMINAL_STATUSES:
                raise bad_request(f"Cannot cancel a job whose status is {job.status}", status=job.status)
            job.set_status("canceled", wall_moment(self._clock))
            return job

        return JSONResponse({"job": self.jobs.modify(job_id, cancel).to_api()})

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
        for job_id in self.jobs:
            job = self.get(job_id)
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
