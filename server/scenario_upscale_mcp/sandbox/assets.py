"""Assets, the format conversions made of them, and the signed CDN that serves both.

`POST /assets` (an image inline), `GET /assets/{id}`, `POST /assets/{id}/download` (a fresh signed
URL, converted to another format on request) and the CDN route those URLs point at.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from scenario_upscale_mcp.sandbox.clock import Clock, wall_moment
from scenario_upscale_mcp.sandbox.errors import asset_not_found, bad_request, xml_error
from scenario_upscale_mcp.sandbox.faults import Faults
from scenario_upscale_mcp.sandbox.imaging import pillow_writes, reformatted, sniff_image
from scenario_upscale_mcp.sandbox.request_parsing import json_object, reject_unknown_fields
from scenario_upscale_mcp.sandbox.signed_urls import UrlSigner
from scenario_upscale_mcp.sandbox.storage import Blob, BlobRefs, Storage, Table
from scenario_upscale_mcp.sandbox.wire_format import SANDBOX_AUTHOR_ID, SANDBOX_OWNER_ID, iso, new_id

CDN_URL_TTL_SECONDS = 24 * 3600  # "valid for at least 24 h" (SCENARIO_API.md §4)

# targetFormat of POST /assets/{id}/download -> (Pillow format, MIME type): the SDK's image formats
# that Pillow writes. The SDK's others ("heif", "svg", and 3D, audio and video formats) are refused.
_DOWNLOAD_FORMATS: dict[str, tuple[str, str]] = {
    "png": ("PNG", "image/png"),
    "jpeg": ("JPEG", "image/jpeg"),
    "jpg": ("JPEG", "image/jpeg"),
    "webp": ("WEBP", "image/webp"),
    "gif": ("GIF", "image/gif"),
    "tif": ("TIFF", "image/tiff"),
    "tiff": ("TIFF", "image/tiff"),
}
if pillow_writes("AVIF"):  # Pillow builds without libavif cannot write it.
    _DOWNLOAD_FORMATS["avif"] = ("AVIF", "image/avif")
_OTHER_SDK_FORMATS = frozenset(
    {"avif", "heif", "svg", "glb", "fbx", "obj", "mp3", "mp4"} - _DOWNLOAD_FORMATS.keys()
)
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}

# Made up: what an image asset offers in Scenario's editor (the SDK lists these values, not which apply).
_IMAGE_EDIT_CAPABILITIES = (
    "DETECTION",
    "GENERATIVE_FILL",
    "PIXELATE",
    "PROMPT_EDITING",
    "REFINE",
    "REFRAME",
    "REMOVE_BACKGROUND",
    "SEGMENTATION",
    "UPSCALE",
    "VECTORIZATION",
)


@dataclass
class SandboxAsset:
    id: str
    filename: str  # the last segment of its CDN URL
    content: Blob  # the one stored copy; everything else slices it
    mime_type: str
    width: int
    height: int
    created_at: datetime
    source: str = "uploaded"  # the SDK's asset source: "uploaded", or "upscale" for a job's output
    parent_job_id: str | None = None  # the job that produced it

    @property
    def data(self) -> bytes:
        return self.content.read()


@dataclass
class CdnObject:
    """A URL-only object (a format conversion): served by the CDN, not an asset."""

    filename: str
    content: Blob
    mime_type: str

    @property
    def data(self) -> bytes:
        return self.content.read()


class AssetCodec:
    """How an asset is kept in a state folder."""

    def encode(self, asset: SandboxAsset, blobs: BlobRefs) -> dict[str, Any]:
        return {
            "filename": asset.filename,
            "content": blobs.ref(asset.content),
            "mimeType": asset.mime_type,
            "width": asset.width,
            "height": asset.height,
            "createdAt": asset.created_at.isoformat(),
            "source": asset.source,
            "parentJobId": asset.parent_job_id,
        }

    def decode(self, key: str, fields: dict[str, Any], blobs: BlobRefs) -> SandboxAsset:
        return SandboxAsset(
            key,
            fields["filename"],
            blobs.deref(fields["content"]),
            fields["mimeType"],
            fields["width"],
            fields["height"],
            datetime.fromisoformat(fields["createdAt"]),
            fields["source"],
            fields["parentJobId"],
        )


class CdnObjectCodec:
    def encode(self, stored: CdnObject, blobs: BlobRefs) -> dict[str, Any]:
        return {
            "filename": stored.filename,
            "content": blobs.ref(stored.content),
            "mimeType": stored.mime_type,
        }

    def decode(self, key: str, fields: dict[str, Any], blobs: BlobRefs) -> CdnObject:
        return CdnObject(fields["filename"], blobs.deref(fields["content"]), fields["mimeType"])


def _decode_base64_image(text: str) -> tuple[bytes, str]:
    """The bytes of `POST /assets`'s "image", and its form: "data_url" or "base64".

    Scenario's own clients send a data URL (`data:<mime>;base64,<...>`); the SDK's docs say base64.
    Both are accepted, line-wrapped base64 too, as a Node server's Buffer.from() would.
    """
    form = "base64"
    if text.startswith("data:"):
        header, _, text = text.partition(",")
        if not header.endswith(";base64"):
            raise bad_request('"image" data URL must be base64-encoded', field="image")
        form = "data_url"
    try:
        return base64.b64decode("".join(text.split()), validate=True), form
    except (binascii.Error, ValueError):
        raise bad_request('"image" is not valid base64', field="image") from None


class AssetStore:
    """The assets and format conversions, by key, and the routes that create and serve them."""

    def __init__(self, clock: Clock, signer: UrlSigner, faults: Faults, storage: Storage) -> None:
        self._clock = clock
        self._signer = signer
        self._faults = faults
        self.storage = storage
        self.assets: Table[SandboxAsset] = storage.table("assets", AssetCodec())
        self.cdn_objects: Table[CdnObject] = storage.table("cdn_objects", CdnObjectCodec())
        # How each `POST /assets` sent its image, in order: "data_url" or "base64" (bare).
        self.image_forms: list[str] = []

    def get(self, asset_id: str) -> SandboxAsset:
        asset = self.assets.get(asset_id)
        if asset is None:
            raise asset_not_found(asset_id)
        return asset

    def new(
        self,
        data: bytes | Blob,
        mime_type: str,
        width: int,
        height: int,
        name: str | None,
        *,
        parent_job_id: str | None = None,
    ) -> SandboxAsset:
        """An asset record, not yet stored (`add` stores it); in a state folder its bytes are written."""
        asset_id = new_id("asset")
        extension = _EXTENSIONS.get(mime_type, mime_type.rpartition("/")[2] or "bin")
        filename = _safe_filename(name or "", f"{asset_id}.{extension}")
        # Made up: an upscale job's outputs have the source "upscale"; uploads are "uploaded".
        source = "uploaded" if parent_job_id is None else "upscale"
        created = wall_moment(self._clock)
        content = data if isinstance(data, Blob) else self.storage.blob(data)
        return SandboxAsset(
            asset_id, filename, content, mime_type, width, height, created, source, parent_job_id
        )

    def add(self, asset: SandboxAsset) -> None:
        self.assets[asset.id] = asset

    def cdn_url(self, request: Request, key: str, filename: str) -> str:
        # Built from the request's own base URL so it works on a real port and under ASGITransport.
        expires = self._signer.expiry(CDN_URL_TTL_SECONDS)
        return f"{request.base_url}cdn/{key}/{filename}?{self._signer.query(f'{key}/{filename}', expires)}"

    def to_json(self, request: Request, asset: SandboxAsset) -> dict[str, Any]:
        metadata: dict[str, Any] = {"kind": "image", "type": asset.source, "name": asset.filename}
        if asset.parent_job_id is not None:
            metadata["parentJobId"] = asset.parent_job_id
        return {
            "id": asset.id,
            "url": self.cdn_url(request, asset.id, asset.filename),
            "mimeType": asset.mime_type,
            "kind": "image",
            "status": "success",
            "source": asset.source,
            "metadata": metadata,
            "properties": {"size": asset.content.size, "width": asset.width, "height": asset.height},
            "privacy": "private",
            "authorId": SANDBOX_AUTHOR_ID,
            "ownerId": SANDBOX_OWNER_ID,
            "collectionIds": [],
            "tags": [],
            "editCapabilities": list(_IMAGE_EDIT_CAPABILITIES),
            "createdAt": iso(asset.created_at),
            "updatedAt": iso(asset.created_at),
        }

    async def post_asset(self, request: Request) -> Response:
        body = await json_object(request)
        reject_unknown_fields(body, ("image", "name"))
        image, name = body.get("image"), body.get("name")
        if not isinstance(image, str) or not image:
            raise bad_request(
                '"image" is required: a data URL (data:<mime>;base64,...) or base64', field="image"
            )
        if not isinstance(name, str):  # Required in the SDK's AssetUploadParams.
            raise bad_request('"name" is required: the file name, a string', field="name")
        data, form = _decode_base64_image(image)
        self.image_forms.append(form)
        sniffed = await run_in_threadpool(sniff_image, data)
        if sniffed is None:
            raise bad_request('"image" is not a supported image', field="image")
        content = await run_in_threadpool(self.storage.blob, data)
        asset = self.new(content, *sniffed, name)
        self.add(asset)
        return JSONResponse({"asset": self.to_json(request, asset)})

    async def get_asset(self, request: Request) -> Response:
        asset = self.get(request.path_params["assetId"])
        return JSONResponse({"asset": self.to_json(request, asset)})

    async def download_asset(self, request: Request) -> Response:
        asset = self.get(request.path_params["assetId"])
        body = await json_object(request, optional=True)
        reject_unknown_fields(body, ("targetFormat",))
        target = body.get("targetFormat")
        if target is None:
            return JSONResponse(
                {"url": self.cdn_url(request, asset.id, asset.filename), "mimeType": asset.mime_type}
            )
        if isinstance(target, str) and target in _OTHER_SDK_FORMATS:
            raise bad_request(
                f"The sandbox cannot convert an image to {target} (the real API may); "
                f"it converts to {', '.join(_DOWNLOAD_FORMATS)}",
                field="targetFormat",
                allowedValues=list(_DOWNLOAD_FORMATS),
            )
        if not isinstance(target, str) or target not in _DOWNLOAD_FORMATS:
            raise bad_request(
                f'"targetFormat" must be one of {", ".join(_DOWNLOAD_FORMATS)} (got {target!r})',
                field="targetFormat",
                allowedValues=list(_DOWNLOAD_FORMATS),
            )
        pillow_format, mime_type = _DOWNLOAD_FORMATS[target]
        if mime_type == asset.mime_type:
            return JSONResponse(
                {"url": self.cdn_url(request, asset.id, asset.filename), "mimeType": mime_type}
            )
        # Converted once per (asset, format) and kept, so repeated downloads share one copy.
        key = f"{asset.id}.{target}"
        converted = self.cdn_objects.get(key)
        if converted is None:
            data = await run_in_threadpool(reformatted, asset.data, pillow_format)
            content = await run_in_threadpool(self.storage.blob, data)
            stem = asset.filename.rpartition(".")[0] or asset.filename
            # In a state folder, two processes may convert at once: the first stored copy wins.
            converted = self.cdn_objects.setdefault(key, CdnObject(f"{stem}.{target}", content, mime_type))
        return JSONResponse({"url": self.cdn_url(request, key, converted.filename), "mimeType": mime_type})

    async def serve_cdn(self, request: Request) -> Response:
        key, filename = request.path_params["key"], request.path_params["filename"]
        valid, expires = self._signer.check(f"{key}/{filename}", request)
        if not valid:
            return xml_error(403, "AccessDenied", "Access Denied")
        if self._faults.expire_urls or self._signer.expired(expires):
            return xml_error(403, "AccessDenied", "Request has expired")
        stored: SandboxAsset | CdnObject | None = self.assets.get(key) or self.cdn_objects.get(key)
        if stored is None:
            return xml_error(404, "NoSuchKey", "The specified key does not exist.")
        size, limit = stored.content.size, None
        if self._faults.truncate_downloads > 0:
            self._faults.truncate_downloads -= 1
            # The headers promise every byte; the body stops halfway. Over a real
            # socket uvicorn then drops the connection, as a broken transfer would.
            limit = size // 2
        headers = {"Content-Length": str(size), "Cache-Control": "private, max-age=86400"}
        return StreamingResponse(stored.content.chunks(limit), media_type=stored.mime_type, headers=headers)


def _safe_filename(name: str, fallback: str) -> str:
    cleaned = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "._-") else "_" for ch in name)
    cleaned = cleaned.strip("._")
    return cleaned[:120] or fallback
