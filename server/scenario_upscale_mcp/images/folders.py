"""A folder and a file-name pattern turned into the images to upscale, and what was skipped and why.

The listing applies the read rules that cost no decoding: the folder must lie under the allowed
folders (and not in a hidden one), hidden names are never listed or descended into, symlinks are
never followed, only regular files are opened (never through a symlink), and an image is a file whose
first bytes carry the signature of a format the API takes, within the size cap. Everything else is
listed as skipped with a short reason, never dropped silently. Each listed image still passes every
per-file rule (`reading.check_readable`: resolution, pixel cap, a full decode) when it is read, so a
file changed after the listing cannot slip past them.

Matching is case-insensitive on every platform (`*.png` finds `ROCK.PNG`), on names in Unicode NFC
form (macOS stores names decomposed), because texture folders mix cases and a pattern should mean the
same thing on every machine.
"""

from __future__ import annotations

import errno
import fnmatch
import itertools
import os
import re
import stat
import struct
import unicodedata
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from scenario_upscale_mcp.api.errors import InputError
from scenario_upscale_mcp.images.reading import READABLE_FORMATS, readable_path
from scenario_upscale_mcp.images.references import LocalReference, parse_reference
from scenario_upscale_mcp.paths import expand_user

if TYPE_CHECKING:
    from scenario_upscale_mcp.config import Settings

MAX_FOLDER_ENTRIES = 50_000
"""Files and folders a listing examines at most, so that `~` with `recursive: true` is refused
quickly instead of walking a whole home folder."""

SIGNATURE_BYTES = 16  # what Pillow's format checks look at (`Image.open` reads as many)

HIDDEN = "hidden"
SYMLINK = "symlink"
SUB_FOLDER = "folder (pass recursive: true to include sub-folders)"
OUTPUT_FOLDER = "output folder (results are not listed again)"
NOT_A_FILE = "not a regular file"
NOT_AN_IMAGE = "not an image"


@dataclass(frozen=True)
class Skipped:
    path: str  # relative to the folder, with `/` between parts; a folder's ends with `/`
    reason: str


@dataclass(frozen=True)
class FolderListing:
    images: list[Path]  # absolute, sorted by their path relative to `folder`
    skipped: list[Skipped]  # sorted the same way
    folder: Path  # the folder as resolved (symlinks in the argument followed, then checked)


def list_folder_images(
    folder: str,
    pattern: str,
    *,
    recursive: bool,
    settings: Settings,
    limit: int,
    exclude: Collection[Path] = (),
    max_entries: int = MAX_FOLDER_ENTRIES,
) -> FolderListing:
    """The images in `folder` whose names match `pattern`, and every other entry with why it was skipped.

    `folder` is an absolute path, `~/...` or a file:// URI, under the allowed folders. `pattern` is
    a glob on file names (`*.png`, `*_albedo.*`), case-insensitive. With `recursive`, sub-folders are
    searched too, except hidden ones, symlinked ones, the output folder and the folders in `exclude`
    (say, the batch's own output folder). Blocking (it reads the disk): run it in a worker thread.

    Raises InputError, naming the argument, for a folder that cannot be listed, a pattern naming more
    than a file, more than `limit` images, or no image at all (then with what was skipped).
    """
    matches = _name_matcher(pattern)
    root = _resolve_folder(folder, settings)
    excluded = {_resolved(path) for path in (settings.output_dir, *exclude)} - {root}
    found: list[tuple[str, ...]] = []
    skipped: list[tuple[tuple[str, ...], bool, str]] = []  # (parts, is a folder, reason)
    examined = 0
    pending: list[tuple[Path, tuple[str, ...]]] = [(root, ())]
    while pending:
        directory, parts = pending.pop()
        try:
            with os.scandir(directory) as scan:
                # One past the cap at most, so a folder of a million names is not read in full.
                entries = list(itertools.islice(scan, max_entries - examined + 1))
        except OSError as exc:
            if not parts:
                raise InputError(f"folder: cannot list {root} ({_why(exc)}).") from None
            skipped.append((parts, True, f"unreadable folder ({_why(exc)})"))
            continue
        examined += len(entries)
        if examined > max_entries:
            narrower = ", or leave recursive off" if recursive else ""
            raise InputError(
                f"folder: {root} holds more than {max_entries:,} files and folders"
                f"{' (sub-folders included)' if recursive else ''}; a batch lists at most that many. "
                f"Name a narrower folder{narrower}."
            )
        for entry in entries:
            name = entry.name
            path = (*parts, name)
            try:
                is_folder = entry.is_dir(follow_symlinks=False)
                if name.startswith("."):
                    skipped.append((path, is_folder, HIDDEN))
                elif entry.is_symlink():
                    skipped.append((path, False, SYMLINK))
                elif is_folder:
                    sub_folder = directory / name
                    if sub_folder in excluded:
                        skipped.append((path, True, OUTPUT_FOLDER))
                    elif not recursive:
                        skipped.append((path, True, SUB_FOLDER))
                    elif _resolved(sub_folder) != sub_folder:
                        # A link that is no symlink (a Windows junction): not followed either, so the
                        # walk never leaves the folder it was given.
                        skipped.append((path, True, SYMLINK))
                    else:
                        pending.append((sub_folder, path))
                elif not entry.is_file(follow_symlinks=False):
                    skipped.append((path, False, NOT_A_FILE))
                elif not matches(name):
                    skipped.append((path, False, f"does not match {pattern}"))
                elif reason := _image_or_why(entry.path, settings):
                    skipped.append((path, False, reason))
                else:
                    found.append(path)
            except OSError as exc:  # the entry vanished or changed while being looked at
                skipped.append((path, False, f"unreadable ({_why(exc)})"))

    found.sort(key=_order)
    skipped.sort(key=lambda item: _order(item[0]))
    listing = FolderListing(
        images=[root.joinpath(*parts) for parts in found],
        skipped=[
            Skipped("/".join(parts) + ("/" if is_folder else ""), why) for parts, is_folder, why in skipped
        ],
        folder=root,
    )
    scope = " (sub-folders included)" if recursive else ""
    if len(found) > limit:
        raise InputError(
            f"folder: {len(found):,} images in {root} match pattern {pattern!r}{scope}, more than the "
            f"{limit:,} one batch may hold. Narrow the pattern to split them into several batches (e.g. "
            "a*.png, then b*.png), or raise the limit with SCENARIO_MAX_BATCH_IMAGES in the server's "
            "configuration."
        )
    if not found:
        what = f"Skipped {describe_skipped(listing.skipped)}." if listing.skipped else "The folder is empty."
        raise InputError(f"folder: no image in {root} matches pattern {pattern!r}{scope}. {what}")
    return listing


def describe_skipped(skipped: Sequence[Skipped], first: int = 5) -> str:
    """`skipped` in one line for the assistant: how many, and up to `first` of them, each reason shown
    at least once when there is room (so a lone "not an image" is not hidden behind a hundred names
    that do not match)."""
    shown: list[int] = []
    reasons: set[str] = set()
    for index, item in enumerate(skipped):
        if len(shown) < first and item.reason not in reasons:
            shown.append(index)
            reasons.add(item.reason)
    for index in range(len(skipped)):
        if len(shown) >= first:
            break
        if index not in shown:
            shown.append(index)
    parts = [f"{skipped[index].path}: {skipped[index].reason}" for index in sorted(shown)]
    rest = len(skipped) - len(shown)
    noun = "entry" if len(skipped) == 1 else "entries"
    more = f"; and {rest:,} more" if rest else ""
    return f"{len(skipped):,} {noun}: {'; '.join(parts)}{more}"


def _name_matcher(pattern: str) -> Callable[[str], bool]:
    if not pattern:
        raise InputError("pattern: empty. Give a glob on file names such as *.png, or * for every file.")
    if "/" in pattern or "\\" in pattern:
        raise InputError(
            f"pattern: {pattern!r} contains a path separator; a pattern matches file names inside `folder` "
            "(e.g. *.png). Put the sub-folder in `folder`, or pass recursive: true to search sub-folders."
        )
    if ".." in pattern:
        raise InputError(
            f"pattern: {pattern!r} contains '..'; a pattern matches file names inside `folder` and cannot "
            "reach another folder. Give that folder as `folder` instead."
        )
    compiled = re.compile(fnmatch.translate(_nfc(pattern)), re.IGNORECASE)
    return lambda name: compiled.match(_nfc(name)) is not None


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _resolve_folder(text: str, settings: Settings) -> Path:
    """`folder` as given, resolved and held to the same rules as an image path (`check_readable`)."""
    given = text.strip()
    if given.lower().startswith("file://"):
        reference = parse_reference(given, "folder")  # refuses a remote host or a control character
        if not isinstance(reference, LocalReference):  # pragma: no cover - a file:// URI is always local
            raise InputError(f"folder: {text!r} is not a local folder.")
        path = reference.path
    else:
        path = expand_user(given, "folder")
    if not path.is_absolute():
        raise InputError(
            f"folder: {text!r} is not an absolute path. Give the folder's full path (e.g. "
            "/Users/me/game/textures or ~/game/textures): the server does not know the assistant's "
            "working folder."
        )
    # Symlinks in the argument are followed (as for an image path), then the target is checked.
    resolved = readable_path(path, settings, "folder", kind="folder")
    if not resolved.is_dir():
        raise InputError(
            f"folder: {resolved} is a file, not a folder. Give the folder that holds it (with a pattern), "
            "or pass the file itself as an image."
        )
    return resolved


def _image_or_why(path: str, settings: Settings) -> str | None:
    """None when the file at `path` starts like an image the API takes, within the size cap; otherwise
    why it is skipped. Opened once, never through a symlink, and only its first bytes are read."""
    flags = (
        os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    )
    try:
        descriptor = os.open(path, flags)
    except OSError as exc:
        # ELOOP: the name became a symlink after it was listed.
        return SYMLINK if exc.errno == errno.ELOOP else f"unreadable ({_why(exc)})"
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            return NOT_A_FILE
        if status.st_size > settings.max_input_bytes:
            return (
                f"{status.st_size:,} bytes, over the {settings.max_input_bytes:,}-byte limit "
                "(SCENARIO_MAX_INPUT_BYTES)"
            )
        prefix = os.read(descriptor, SIGNATURE_BYTES)
    finally:
        os.close(descriptor)
    return _format_or_why(prefix, Path(path).suffix)


def _format_or_why(prefix: bytes, suffix: str) -> str | None:
    """Pillow's own signature checks (what `Image.open` tries first), for the formats the API takes."""
    from PIL import Image

    Image.init()  # registers every plugin, WebP, TIFF and AVIF included (once per process)
    for image_format in READABLE_FORMATS:
        opener = Image.OPEN.get(image_format)
        accept = opener[1] if opener else None
        if accept is None:
            continue
        try:
            verdict = accept(prefix)
        except (SyntaxError, IndexError, TypeError, struct.error):  # what Image.open tolerates too
            continue
        if verdict is True:
            return None
        if isinstance(verdict, str):  # e.g. AVIF without its codec in this Pillow
            return f"{image_format} image, which this server cannot decode"
    # Named by its extension only when that names a format the API does not take (a .tga, a .dds),
    # so a texture developer learns why; a .png holding text is simply not an image.
    named = Image.registered_extensions().get(suffix.lower())
    if named and named not in READABLE_FORMATS:
        return f"{named} image, a format the API does not take"
    return NOT_AN_IMAGE


def _order(parts: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(part.casefold(), part) for part in parts]


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__
