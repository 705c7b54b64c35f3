"""The multipart upload flow (SCENARIO_API.md §3), for images too large to send inline.

`POST /uploads` answers one presigned URL per part; the client PUTs each part there (object
storage: no API credentials, no checksum headers), then `POST /uploads/{id}/action` "complete".
The upload then stays "validating" for a moment (made up: the import delay) before a read shows it
"imported", with the new asset's id, or "failed", with why.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from scenario_upscale_mcp.sandbox.assets import AssetCodec, AssetStore, SandboxAsset
from scenario_upscale_mcp.sandbox.clock import Clock, wall_moment
from scenario_upscale_mcp.sandbox.errors import ApiError, bad_request, xml_error
from scenario_upscale_mcp.sandbox.imaging import sniff_image
from scenario_upscale_mcp.sandbox.request_parsing import json_object, reject_unknown_fields
from scenario_upscale_mcp.sandbox.signed_urls import UrlSigner
from scenario_upscale_mcp.sandbox.storage import Blob, BlobRefs, NotStored, Storage, Table
from scenario_upscale_mcp.sandbox.wire_format import SANDBOX_AUTHOR_ID, SANDBOX_OWNER_ID, iso, new_id

PART_URL_TTL_SECONDS = 3600
MIN_PART_BYTES = 5 * 1024 * 1024  # S3's minimum for every part but the last
MAX_PARTS = 10_000
# The `contentType` values `POST /uploads` accepts for an image.
ACCEPTED_IMAGE_TYPES = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/gif",
        "image/svg+xml",
        "image/webp",
        "image/avif",
        "image/tiff",
        "image/heif",
        "image/heic",
    }
)


@dataclass
class SandboxUpload:
    id: str
    file_name: str
    content_type: str | None
    file_size: int
    part_count: int
    kind: str
    created_at: datetime
    part_urls: list[dict[str, Any]]
    status: str = "pending"
    parts: dict[int, Blob] = field(default_factory=dict)
    parts_received: int = 0  # every accepted PUT, re-sent parts included
    # When "complete" was called: the clock's `now` (None once read from a state folder, where a
    # monotonic reading means nothing to another process) and its `wall`.
    completed_at: float | None = None
    completed_wall: float | None = None
    # Worked out when "complete" is called, revealed by a later read (see `_advance_upload`).
    outcome: SandboxAsset | str | None = None
    entity_id: str | None = None
    error_message: str | None = None
    updated_at: datetime | None = None


class UploadCodec:
    """How an upload is kept in a state folder: its parts and the asset it will import as blobs."""

    def __init__(self, assets: AssetCodec) -> None:
        self._assets = assets

    def encode(self, upload: SandboxUpload, blobs: BlobRefs) -> dict[str, Any]:
        outcome: dict[str, Any] | str | None
        if isinstance(upload.outcome, SandboxAsset):
            outcome = {"id": upload.outcome.id, **self._assets.encode(upload.outcome, blobs)}
        else:
            outcome = upload.outcome
        return {
            "fileName": upload.file_name,
            "contentType": upload.content_type,
            "fileSize": upload.file_size,
            "partCount": upload.part_count,
            "kind": upload.kind,
            "createdAt": upload.created_at.isoformat(),
            "partUrls": upload.part_urls,
            "status": upload.status,
            "parts": {str(number): blobs.ref(part) for number, part in upload.parts.items()},
            "partsReceived": upload.parts_received,
            "completedWall": upload.completed_wall,
            "outcome": outcome,
            "entityId": upload.entity_id,
            "errorMessage": upload.error_message,
            "updatedAt": None if upload.updated_at is None else upload.updated_at.isoformat(),
        }

    def decode(self, key: str, fields: dict[str, Any], blobs: BlobRefs) -> SandboxUpload:
        stored = fields["outcome"]
        outcome: SandboxAsset | str | None = stored
        if isinstance(stored, dict):
            outcome = self._assets.decode(stored["id"], stored, blobs)
        updated = fields["updatedAt"]
        return SandboxUpload(
            id=key,
            file_name=fields["fileName"],
            content_type=fields["contentType"],
            file_size=fields["fileSize"],
            part_count=fields["partCount"],
            kind=fields["kind"],
            created_at=datetime.fromisoformat(fields["createdAt"]),
            part_urls=fields["partUrls"],
            status=fields["status"],
            parts={int(number): blobs.deref(ref) for number, ref in fields["parts"].items()},
            parts_received=fields["partsReceived"],
            completed_wall=fields["completedWall"],
            outcome=outcome,
            entity_id=fields["entityId"],
            error_message=fields["errorMessage"],
            updated_at=None if updated is None else datetime.fromisoformat(updated),
        )


class UploadStore:
    """The uploads, by id, and the routes of the flow; what they import goes to the asset store.

    In a state folder an upload is shared by every process that opens it: each change is one
    `uploads.modify`, so parts sent to two processes at once all count."""

    def __init__(
        self,
        clock: Clock,
        signer: UrlSigner,
        assets: AssetStore,
        storage: Storage,
        *,
        import_delay: float,
    ) -> None:
        self._clock = clock
        self._signer = signer
        self._assets = assets
        self._storage = storage
        self._import_delay = import_delay  # Made up: how long an upload stays "validating" after "complete".
        self.uploads: Table[SandboxUpload] = storage.table("uploads", UploadCodec(AssetCodec()))

    def _upload(self, upload_id: str) -> SandboxUpload:
        try:
            return self.uploads.modify(upload_id, self._advanced)
        except NotStored:
            raise ApiError(404, "NotFoundError", "Upload not found", {"uploadId": upload_id}) from None

    def _advanced(self, upload: SandboxUpload) -> SandboxUpload:
        self._advance_upload(upload)
        return upload

    async def create_upload(self, request: Request) -> Response:
        body = await json_object(request)
        reject_unknown_fields(body, ("fileName", "contentType", "fileSize", "parts", "kind"))
        file_name, content_type = body.get("fileName"), body.get("contentType")
        file_size, part_count, kind = body.get("fileSize"), body.get("parts"), body.get("kind")
        if not isinstance(file_name, str) or not file_name:
            raise bad_request('"fileName" is required', field="fileName")
        if content_type is not None and content_type not in ACCEPTED_IMAGE_TYPES:
            raise bad_request(
                f'"contentType" must be one of {", ".join(sorted(ACCEPTED_IMAGE_TYPES))} '
                f"(got {content_type!r})",
                field="contentType",
            )
        if not isinstance(file_size, int) or isinstance(file_size, bool) or file_size < 1:
            raise bad_request('"fileSize" must be a positive integer (bytes)', field="fileSize")
        if (
            not isinstance(part_count, int)
            or isinstance(part_count, bool)
            or not 1 <= part_count <= MAX_PARTS
        ):
            raise bad_request(f'"parts" must be an integer between 1 and {MAX_PARTS}', field="parts")
        if kind != "image":
            raise bad_request(f'"kind" must be "image" (got {kind!r})', field="kind")
        created = wall_moment(self._clock)
        upload_id = new_id("upload")
        expires = self._signer.expiry(PART_URL_TTL_SECONDS)
        part_urls = []
        for number in range(1, part_count + 1):
            signed = self._signer.query(f"{upload_id}/{number}", expires)
            part_urls.append(
                {
                    "number": number,
                    "url": f"{request.base_url}_parts/{upload_id}/{number}?{signed}",
                    "expires": iso(datetime.fromtimestamp(expires, UTC)),
                }
            )
        upload = SandboxUpload(
            id=upload_id,
            file_name=file_name,
            content_type=content_type,
            file_size=file_size,
            part_count=part_count,
            kind=kind,
            created_at=created,
            part_urls=part_urls,
            updated_at=created,
        )
        self.uploads[upload_id] = upload
        return JSONResponse({"upload": self._upload_json(upload)})

    async def put_part(self, request: Request) -> Response:
        upload_id, number = request.path_params["uploadId"], request.path_params["number"]
        checksum_headers = [name for name in request.headers if name.lower().startswith("x-amz-checksum-")]
        if checksum_headers or "x-amz-sdk-checksum-algorithm" in request.headers:
            # Scenario's presigned part URLs do not sign checksums, so S3 refuses them.
            return xml_error(400, "InvalidRequest", "Checksum headers are not signed in this presigned URL")
        if "authorization" in request.headers:
            # S3 refuses a second auth mechanism on a presigned URL (and the API secret must not go there).
            return xml_error(400, "InvalidArgument", "Only one auth mechanism allowed")
        if "content-length" not in request.headers:
            # S3 takes a part only with its length announced: a chunked body is refused.
            return xml_error(411, "MissingContentLength", "You must provide the Content-Length HTTP header.")
        valid, expires = self._signer.check(f"{upload_id}/{number}", request)
        if not valid:
            return xml_error(
                403, "SignatureDoesNotMatch", "The request signature we calculated does not match"
            )
        if self._signer.expired(expires):
            return xml_error(403, "AccessDenied", "Request has expired")
        data = await request.body()
        part = await run_in_threadpool(self._storage.blob, data)

        def add_part(upload: SandboxUpload) -> Response | None:
            # Checked after reading the body: "complete" may have been called meanwhile.
            if upload.status != "pending":
                return xml_error(404, "NoSuchUpload", "The specified upload does not exist.")
            if not 1 <= number <= upload.part_count:
                return xml_error(
                    400, "InvalidArgument", f"Part number must be between 1 and {upload.part_count}"
                )
            upload.parts[number] = part
            upload.parts_received += 1
            return None

        try:
            refused = self.uploads.modify(upload_id, add_part)
        except NotStored:
            refused = xml_error(404, "NoSuchUpload", "The specified upload does not exist.")
        if refused is not None:
            return refused
        etag = hashlib.md5(data, usedforsecurity=False).hexdigest()
        return Response(status_code=200, headers={"ETag": f'"{etag}"'})

    async def upload_action(self, request: Request) -> Response:
        upload_id = request.path_params["uploadId"]
        self._upload(upload_id)  # a 404 first
        body = await json_object(request)
        reject_unknown_fields(body, ("action",))
        if body.get("action") != "complete":
            raise bad_request('"action" must be "complete"', field="action")

        def complete(upload: SandboxUpload) -> SandboxUpload:
            self._advance_upload(upload)
            if upload.status != "pending":
                raise bad_request(f"Upload is already {upload.status}", status=upload.status)
            upload.status, upload.updated_at = "validating", wall_moment(self._clock)
            upload.completed_at, upload.completed_wall = self._clock.now(), self._clock.wall()
            return upload

        upload = self.uploads.modify(upload_id, complete)
        outcome = await run_in_threadpool(self._assemble, upload)

        def settle(stored: SandboxUpload) -> SandboxUpload:
            stored.outcome = outcome
            stored.parts.clear()  # The joined bytes become the asset's one stored copy.
            return stored

        upload = self.uploads.modify(upload_id, settle)
        return JSONResponse({"upload": self._upload_json(upload)})

    def _assemble(self, upload: SandboxUpload) -> SandboxAsset | str:
        """The asset the parts make, or why they make none. Runs in a worker thread."""
        missing = [number for number in range(1, upload.part_count + 1) if number not in upload.parts]
        if missing:
            return f"Parts never uploaded: {missing}"
        for number in range(1, upload.part_count):
            if upload.parts[number].size < MIN_PART_BYTES:
                return (
                    f"Part {number} is {upload.parts[number].size} bytes; every part but the last "
                    f"must be at least {MIN_PART_BYTES} bytes (5 MiB)"
                )
        received = sum(part.size for part in upload.parts.values())
        if received != upload.file_size:
            return f"Received {received} bytes but fileSize is {upload.file_size}"
        data = b"".join(upload.parts[number].read() for number in range(1, upload.part_count + 1))
        upload.parts.clear()
        sniffed = sniff_image(data)
        if sniffed is None:
            return "The uploaded file is not a supported image"
        return self._assets.new(data, *sniffed, upload.file_name)

    def _advance_upload(self, upload: SandboxUpload) -> None:
        if upload.status != "validating" or upload.outcome is None:
            return
        if upload.completed_at is not None:
            waited = self._clock.now() - upload.completed_at
        elif upload.completed_wall is not None:
            waited = self._clock.wall() - upload.completed_wall
        else:
            return
        if waited < self._import_delay:
            return
        if isinstance(upload.outcome, SandboxAsset):
            self._assets.add(upload.outcome)
            upload.status, upload.entity_id = "imported", upload.outcome.id
        else:
            upload.status, upload.error_message = "failed", upload.outcome
        upload.outcome, upload.updated_at = None, wall_moment(self._clock)

    def _upload_json(self, upload: SandboxUpload) -> dict[str, Any]:
        described: dict[str, Any] = {
            "id": upload.id,
            "status": upload.status,
            "source": "multipart",
            "fileName": upload.file_name,
            "contentType": upload.content_type,
            "fileSize": upload.file_size,
            "kind": upload.kind,
            "partsCount": upload.part_count,
            "parts": upload.part_urls,
            "authorId": SANDBOX_AUTHOR_ID,
            "ownerId": SANDBOX_OWNER_ID,
            "entityId": upload.entity_id,
            "errorMessage": upload.error_message,
            "createdAt": iso(upload.created_at),
            "updatedAt": iso(upload.updated_at or upload.created_at),
        }
        return {key: value for key, value in described.items() if value is not None}

    async def get_upload(self, request: Request) -> Response:
        return JSONResponse({"upload": self._upload_json(self._upload(request.path_params["uploadId"]))})
