"""How a job moves through the real statuses over time, and the job record that carries it.

A job's status is computed lazily: `SandboxJob.advance` brings it up to date with the clock when the
job is read through the API. Its timeline is measured from the job's creation: on the clock's `now`
(monotonic) for a job held in memory, on its `wall` from the stored creation date for a job read from a
state folder, so that a job outlives the process that created it and finishes on schedule in whichever
process reads it next (its status depends only on the time since its creation and its stored duration).
The dates it shows are its `createdAt` plus where each status starts.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from scenario_upscale_mcp.sandbox.clock import Clock, wall_moment
from scenario_upscale_mcp.sandbox.storage import Blob, BlobRefs
from scenario_upscale_mcp.sandbox.wire_format import SANDBOX_AUTHOR_ID, SANDBOX_OWNER_ID, iso

JOB_TYPE = "inference"  # every sandbox job runs a model (the type cancel is documented for)
TERMINAL_STATUSES = frozenset({"success", "failure", "canceled"})
JOB_STATUSES = (
    "pending",
    "queued",
    "warming-up",
    "in-progress",
    "finalizing",
    "success",
    "failure",
    "canceled",
)

# Made up: where each status starts, as a fraction of the job's duration (the sandbox's
# `job_seconds`). Failing jobs fail where "finalizing" would start; successful ones end at 1.0.
_TIMELINE: tuple[tuple[str, float], ...] = (
    ("pending", 0.0),
    ("queued", 0.05),
    ("warming-up", 0.15),
    ("in-progress", 0.30),
    ("finalizing", 0.85),
)
_IN_PROGRESS_START = 0.30
_FINALIZING_START = 0.85

_SIMULATED_FAILURE_ERROR = "Simulated failure: the sandbox was told to fail this job (fail_next_jobs)."
_SIMULATED_FAILURE_HINT = (
    "This failure was injected by the scenario-upscale-mcp sandbox, not Scenario. Submit the job again."
)


@dataclass
class RenderedOutput:
    content: Blob
    width: int
    height: int
    done_at: datetime


@dataclass
class Render:
    """What rendering a job's output came to: the output, or why there is none."""

    output: RenderedOutput | None = None
    error: str | None = None


class RenderCodec:
    """How a render is kept in a state folder (until its job succeeds and the output becomes an asset)."""

    def encode(self, render: Render, blobs: BlobRefs) -> dict[str, Any]:
        output = render.output
        if output is None:
            return {"error": render.error}
        return {
            "content": blobs.ref(output.content),
            "width": output.width,
            "height": output.height,
            "doneAt": output.done_at.isoformat(),
        }

    def decode(self, key: str, fields: dict[str, Any], blobs: BlobRefs) -> Render:
        if "content" not in fields:
            return Render(error=fields["error"])
        done_at = datetime.fromisoformat(fields["doneAt"])
        return Render(
            RenderedOutput(blobs.deref(fields["content"]), fields["width"], fields["height"], done_at)
        )


@dataclass
class SandboxJob:
    id: str
    model_id: str
    inputs: dict[str, Any]
    cost: int
    created_at: datetime
    # The clock's `now` at creation: the timeline is measured from here. None for a job read from a
    # state folder (a monotonic reading means nothing to another process): measured from `created_at`.
    started: float | None
    duration: float  # the sandbox's job_seconds when the job was created: later changes leave it alone
    will_fail: bool
    sequence: int = 0  # creation order, ties of createdAt included: the sort key of GET /jobs
    # What rendering its output takes, so that any process can render it (the one that created it may
    # have ended before it was done).
    source_asset_id: str = ""
    factor: float = 1.0
    max_output_edge: int = 8192
    status: str = "pending"
    progress: float = 0.0
    history: list[tuple[str, datetime]] = field(default_factory=list)
    asset_ids: list[str] = field(default_factory=list)
    error: str | None = None
    hint: str | None = None
    # Set by the render thread; the job reads them when it reaches the end of its timeline.
    rendered: RenderedOutput | None = None
    render_error: str | None = None
    # Set once the render thread is done (at once for a job that will fail, which renders nothing).
    render_finished: threading.Event = field(default_factory=threading.Event)

    @property
    def updated_at(self) -> datetime:
        return self.history[-1][1]

    def reached(self, status: str) -> bool:
        return any(seen == status for seen, _ in self.history)

    def set_status(self, status: str, at: datetime) -> None:
        self.status = status
        self.history.append((status, at))

    def advance(self, clock: Clock) -> RenderedOutput | None:
        """Bring the job up to date with the time elapsed since it was created.

        Returns its rendered output when the job is due to succeed: the caller stores the output as
        an asset and calls `succeed`. Until its output is rendered, a job whose time is up stays in
        "finalizing", as a real job does while its outputs are written.
        """
        if self.status in TERMINAL_STATUSES:
            return None
        if self.started is not None:
            elapsed = clock.now() - self.started
        else:
            elapsed = clock.wall() - self.created_at.timestamp()
        fraction = elapsed / self.duration if self.duration > 0 else math.inf
        for status, start in _TIMELINE:
            if fraction < start or self.reached(status):
                continue
            reached_at = self.created_at + timedelta(seconds=start * self.duration)
            if status == "finalizing" and self.will_fail:
                self.error, self.hint = _SIMULATED_FAILURE_ERROR, _SIMULATED_FAILURE_HINT
                self.set_status("failure", reached_at)
                return None
            self.set_status(status, reached_at)
        if fraction >= 1.0:
            if self.render_error is not None:
                self.error = self.render_error
                self.hint = "The sandbox could not process this image; try another file."
                self.set_status("failure", wall_moment(clock))
                return None
            if self.rendered is not None:
                return self.rendered
        if self.status == "in-progress":
            share = (fraction - _IN_PROGRESS_START) / (_FINALIZING_START - _IN_PROGRESS_START)
            self.progress = round(0.9 * min(max(share, 0.0), 1.0), 3)
        elif self.status == "finalizing":
            share = (fraction - _FINALIZING_START) / (1.0 - _FINALIZING_START)
            self.progress = round(0.9 + 0.09 * min(max(share, 0.0), 1.0), 3)
        return None

    def succeed(self, asset_id: str) -> None:
        """The end of a successful timeline, once its output is stored as `asset_id`."""
        rendered = self.rendered
        assert rendered is not None
        self.asset_ids = [asset_id]
        self.rendered = None  # The asset now holds the bytes; keep one reference.
        nominal_end = self.created_at + timedelta(seconds=self.duration)
        self.progress = 1.0
        self.set_status("success", max(nominal_end, rendered.done_at))

    def to_api(self) -> dict[str, Any]:
        """The job as `GET /jobs/{jobId}` shows it (as of the last API read)."""
        metadata: dict[str, Any] = {"input": self.inputs}
        if self.status == "success":
            metadata["assetIds"] = list(self.asset_ids)
        if self.error is not None:
            metadata["error"] = self.error
        if self.hint is not None:
            metadata["hint"] = self.hint
        return {
            "jobId": self.id,
            "jobType": JOB_TYPE,
            "authorId": SANDBOX_AUTHOR_ID,
            "ownerId": SANDBOX_OWNER_ID,
            "status": self.status,
            "progress": self.progress,
            "statusHistory": [{"status": status, "date": iso(at)} for status, at in self.history],
            "metadata": metadata,
            "billing": {"cuCost": self.cost, "cuDiscount": 0},
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at),
        }


class JobCodec:
    """How a job is kept in a state folder: its record, without what this process's render thread holds
    (renders are a table of their own) and without its monotonic start (see `SandboxJob.started`).

    `is_rendered(job_id)` says whether a job's render is stored: a job read back has its
    `render_finished` set when it is, or when the job needs none (it has ended, or will fail)."""

    def __init__(self, is_rendered: Callable[[str], bool]) -> None:
        self._is_rendered = is_rendered

    def encode(self, job: SandboxJob, blobs: BlobRefs) -> dict[str, Any]:
        return {
            "modelId": job.model_id,
            "inputs": job.inputs,
            "cost": job.cost,
            "createdAt": job.created_at.isoformat(),
            "duration": job.duration,
            "willFail": job.will_fail,
            "sequence": job.sequence,
            "sourceAssetId": job.source_asset_id,
            "factor": job.factor,
            "maxOutputEdge": job.max_output_edge,
            "status": job.status,
            "progress": job.progress,
            "history": [[status, at.isoformat()] for status, at in job.history],
            "assetIds": job.asset_ids,
            "error": job.error,
            "hint": job.hint,
        }

    def decode(self, key: str, fields: dict[str, Any], blobs: BlobRefs) -> SandboxJob:
        job = SandboxJob(
            id=key,
            model_id=fields["modelId"],
            inputs=fields["inputs"],
            cost=fields["cost"],
            created_at=datetime.fromisoformat(fields["createdAt"]),
            started=None,
            duration=fields["duration"],
            will_fail=fields["willFail"],
            sequence=fields["sequence"],
            source_asset_id=fields["sourceAssetId"],
            factor=fields["factor"],
            max_output_edge=fields["maxOutputEdge"],
            status=fields["status"],
            progress=fields["progress"],
            history=[(status, datetime.fromisoformat(at)) for status, at in fields["history"]],
            asset_ids=fields["assetIds"],
            error=fields["error"],
            hint=fields["hint"],
        )
        if job.will_fail or job.status in TERMINAL_STATUSES or self._is_rendered(key):
            job.render_finished.set()
        return job
