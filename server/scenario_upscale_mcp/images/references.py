"""What an image reference names: an asset id, a local file, an https URL or a data: URI. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from scenario_upscale_mcp.api.errors import InputError
from scenario_upscale_mcp.images.reading import is_asset_id
from scenario_upscale_mcp.paths import expand_user

if TYPE_CHECKING:
    pass
DATA_URI = re.compile(
    r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w-]+=[\w.+-]+)*)(?P<b64>;base64)?,", re.I
)


@dataclass(frozen=True)
class AssetReference:
    asset_id: str


@dataclass(frozen=True)
class LocalReference:
    path: Path


@dataclass(frozen=True)
class UrlReference:
    url: str


@dataclass(frozen=True)
class DataReference:
    text: str


Reference = AssetReference | LocalReference | UrlReference | DataReference


CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


def parse_reference(reference: str, field: str) -> Reference:
    """What a reference names. Pure: no file system, no network.

    Whatever no file or URL can be (a NUL byte in a path, a control character in a URL, a `~user`
    that does not exist) is refused here, by `field`, rather than failing later in the OS or HTTP layer.
    """
    text = reference.strip()
    lowered = text.lower()
    if is_asset_id(text):
        return AssetReference(text)
    if lowered.startswith("data:"):
        return DataReference(text)
    if lowered.startswith(("https://", "file://")) and (bad := CONTROL_CHARACTER.search(text)):
        kind = "image URL" if lowered.startswith("https://") else "file URI"
        raise InputError(
            f"{field}: the {kind} contains a control character ({bad.group()!r}); such characters must be "
            "percent-encoded, and none belongs in an image address."
        )
    if lowered.startswith("https://"):
        return UrlReference(text)
    if lowered.startswith("http://"):
        raise InputError(f"{field}: only https:// URLs are accepted, not http:// ({reference}).")
    if lowered.startswith("file://"):
        parsed = urlparse(text)
        if parsed.netloc not in ("", "localhost"):
            raise InputError(
                f"{field}: file URIs must name a local file (file:///...), not host {parsed.netloc!r}."
            )
        return LocalReference(expand_user(unquote(parsed.path), field))  # a %00 is a NUL too
    path = expand_user(text, field)
    if not path.is_absolute():
        raise InputError(
            f"{field}: {reference!r} is neither an asset id (asset_...), an https URL, a data: URI nor an "
            "absolute path. Give the full path (e.g. /Users/me/art/castle.png or ~/art/castle.png): the "
            "server does not know the assistant's working folder."
        )
    return LocalReference(path)
