"""What the tools answer with, the same whichever tool answers: the job view (built from the API's job or
the ledger's record), the sentences that sum a job up, and the tool result itself."""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import anyio
from mcp.types import CallToolResult, ContentBlock, ImageContent, ResourceLink, TextContent
from pydantic import BaseModel, ConfigDict, Field

from scenario_upscale_mcp.api.statuses import TERMINAL_STATUSES

if TYPE_CHECKING:
    from scenario_upscale_mcp.api.answers import Job
    from scenario_upscale_mcp.jobs.ledger import JobRecord
    from scenario_upscale_mcp.outputs.writing import SavedFile

logger = logging.getLogger(__name__)


class ResultModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OutputFile(ResultModel):
    assetId: str = Field(description="The output's Scenario asset id.")
    path: str | None = Field(default=None, description="Where the file was saved; null until saved.")
    mimeType: str | None = None
    width: int | None = None
    height: int | None = None
    bytes: int | None = Field(default=None, description="File size in bytes.")

    @classmethod
    def saved(cls, asset_id: str, file: SavedFile) -> OutputFile:
        return cls(
            assetId=asset_id,
            path=str(file.path),
            mimeType=file.mime_type,
            width=file.width,
            height=file.height,
            bytes=file.bytes,
        )


def recorded_outputs(record: JobRecord) -> list[OutputFile]:
    """The job's outputs as the ledger recorded them (with their saved paths)."""
    return [OutputFile.model_validate(output) for output in record.outputs]


class JobView(ResultModel):
    # No docstring: it would become the output schema's description.
    jobId: str | None = Field(description="The Scenario job id (null for a dry run, which creates no job).")
    model: str = Field(description="The model id, e.g. model_upscale-v3.")
    status: str = Field(
        description=(
            "The API's status: pending, queued, warming-up, in-progress, finalizing, success, failure or "
            "canceled. Also not-submitted (a dry run), not-found (the API does not know the job id) and "
            "unknown (the job could not be checked just now)."
        )
    )
    progress: float = Field(ge=0, le=1, description="0 to 1.")
    creativeUnitsCost: float | None = Field(default=None, description="Cost in creative units, when known.")
    error: str | None = Field(default=None, description="The API's error message for a failed job, verbatim.")
    hint: str | None = Field(default=None, description="The API's hint for a failed job, verbatim.")
    outputs: list[OutputFile] = Field(default_factory=list)
    notice: str | None = Field(
        default=None,
        description="What the server has to add: e.g. an earlier identical job was returned, or saving failed.",
    )

    def sentence(self) -> str:
        """The job as it stands, in one line."""
        ended = {"success": "succeeded", "failure": "failed", "canceled": "was canceled"}
        text = f"Job {self.jobId} ({self.model}) {ended.get(self.status, 'is ' + self.status)}"
        if self.status not in TERMINAL_STATUSES:
            text += f" at {self.progress:.0%}"
        if self.creativeUnitsCost is not None:
            text += f"; cost {self.creativeUnitsCost:g} creative units"
        if self.error:
            text += f". Error: {self.error}"
        if self.hint:
            text += f" Hint: {self.hint}"
        if self.outputs:
            text += f". Outputs: {', '.join(o.path or o.assetId for o in self.outputs)}"
        text += "."
        if self.notice:
            text += f" {self.notice}"
        return text

    def brief(self) -> str:
        """The job as an entry in a list: id, model, status and cost."""
        cost = f" ({self.creativeUnitsCost:g} CU)" if self.creativeUnitsCost is not None else ""
        return f"{self.jobId} {self.model} {self.status}{cost}"


def job_view(
    record: JobRecord,
    job: Job | None = None,
    *,
    cost: float | None = None,
    outputs: list[OutputFile] | None = None,
    notice: str | None = None,
) -> JobView:
    """The job as the API just said (`job`), or else as the ledger last recorded it (`record`).

    The record always gives the model. With `job`, the status, progress, error and hint are the API's,
    the outputs (unless given) its asset ids, and the cost the one given, else the recorded one, else
    the job's billing. Without it, everything is the record's, saved paths included.
    """
    if job is None:
        return JobView(
            jobId=record.job_id,
            model=record.model,
            status=record.status,
            progress=_fraction(record.progress),
            creativeUnitsCost=cost if cost is not None else record.cost,
            error=record.error,
            hint=record.hint,
            outputs=outputs if outputs is not None else recorded_outputs(record),
            notice=notice,
        )
    if cost is None:
        cost = record.cost
    if cost is None and job.billing is not None:
        cost = job.billing.cu_cost
    return JobView(
        jobId=job.job_id,
        model=record.model,
        status=job.status,
        progress=_fraction(job.progress),
        creativeUnitsCost=cost,
        error=job.metadata.error,
        hint=job.metadata.hint,
        outputs=outputs if outputs is not None else [OutputFile(assetId=a) for a in job.metadata.asset_ids],
        notice=notice,
    )


def unchecked_job(job_id: str, status: str, error: Any) -> JobView:
    """A job the API could not describe just now (`not-found`, `unknown`): only its id and why."""
    return JobView(jobId=job_id, model="unknown", status=status, progress=0.0, error=str(error))


def _fraction(progress: float) -> float:
    return min(1.0, max(0.0, progress))


async def tool_result(
    content: BaseModel, summary: str, saved: Sequence[SavedFile] = (), *, preview: bool = True
) -> CallToolResult:
    """A tool's answer: `content` as structured content, the `summary` for the assistant to read, and for
    saved files one preview (of the first) and a link to each.

    One preview only: hosts reject results over 1 MB, and one look is enough to judge a result. A
    file that cannot be previewed still gets its link, and the text says why it has no preview; the
    answer never fails for want of a preview.
    """
    blocks: list[ContentBlock] = [TextContent(text=summary)]
    if saved and preview:
        blocks[0], image = await _preview(summary, saved[0])
        if image is not None:
            blocks.append(image)
    blocks += [
        ResourceLink(uri=file.path.as_uri(), name=file.path.name, mime_type=file.mime_type, size=file.bytes)
        for file in saved
    ]
    return CallToolResult(content=blocks, structured_content=content.model_dump(mode="json"))


async def _preview(summary: str, file: SavedFile) -> tuple[TextContent, ImageContent | None]:
    """The summary, and a preview of `file`; or the summary saying why there is none."""
    # Imported here: Pillow is needed only by answers that carry a file.
    from scenario_upscale_mcp.outputs.previews import PreviewUnavailable, make_preview

    try:
        image, mime_type = await anyio.to_thread.run_sync(make_preview, file.path)
    except PreviewUnavailable as exc:  # too large to decode within the server's memory bound
        return TextContent(text=f"{summary} {exc}"), None
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:  # Pillow: "cannot read it"
        logger.info("no preview for %s: %s", file.path, exc)
        text = f"{summary} No preview: {file.path.name} could not be read as an image here."
        return TextContent(text=text), None
    data = base64.b64encode(image).decode("ascii")
    return TextContent(text=summary), ImageContent(data=data, mime_type=mime_type)


def count(number: int, singular: str, plural: str | None = None) -> str:
    """`1 file`, `2 files`: a number with its noun in the right form."""
    return f"{number} {singular if number == 1 else plural or singular + 's'}"
