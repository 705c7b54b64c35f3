"""The API's answers, parsed tolerantly: unknown fields are ignored, missing optional ones default.

The API is documented loosely (SCENARIO_API.md says where), so parsing must not break on an extra
field or a missing one; only what the server relies on is required.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from scenario_upscale_mcp.api.statuses import TERMINAL_STATUSES


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class JobMetadata(_Tolerant):
    asset_ids: list[str] = Field(default_factory=list, alias="assetIds")
    error: str | None = None
    hint: str | None = None
    input: dict[str, Any] | None = None


class Billing(_Tolerant):
    cu_cost: float | None = Field(default=None, alias="cuCost")
    cu_discount: float | None = Field(default=None, alias="cuDiscount")


class Job(_Tolerant):
    job_id: str = Field(alias="jobId")
    job_type: str | None = Field(default=None, alias="jobType")
    # A str, not statuses.JobStatus: an unknown future status must not break polling; it is treated as running.
    status: str
    progress: float = 0.0
    metadata: JobMetadata = Field(default_factory=JobMetadata)
    billing: Billing | None = None
    created_at: str | None = Field(default=None, alias="createdAt")
    updated_at: str | None = Field(default=None, alias="updatedAt")

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class AssetProperties(_Tolerant):
    size: int | None = None
    width: int | None = None
    height: int | None = None


class Asset(_Tolerant):
    id: str
    url: str | None = None
    mime_type: str | None = Field(default=None, alias="mimeType")
    status: str | None = None
    properties: AssetProperties = Field(default_factory=AssetProperties)


class GenerateAnswer(_Tolerant):
    """`POST /generate/custom/{modelId}`: a job, or (dry run, HTTP 269) only a cost."""

    job: Job | None = None
    creative_units_cost: float | None = Field(default=None, alias="creativeUnitsCost")
    creative_units_discount: float | None = Field(default=None, alias="creativeUnitsDiscount")


class DownloadLink(_Tolerant):
    url: str
    mime_type: str | None = Field(default=None, alias="mimeType")


class UploadPart(_Tolerant):
    number: int
    url: str


class Upload(_Tolerant):
    """A multipart upload (`/uploads`): parts to PUT, then `complete`, then poll until `imported`."""

    id: str
    status: str
    parts: list[UploadPart] = Field(default_factory=list)
    entity_id: str | None = Field(default=None, alias="entityId")
    error_message: str | None = Field(default=None, alias="errorMessage")
