"""Paths a caller gives: `~` expansion, the allowed roots, hidden locations and file-system limits.

Shared by what the server reads (images) and where it writes (outputs), so both apply the same rules.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import TYPE_CHECKING

from scenario_upscale_mcp.api.errors import InputError

if TYPE_CHECKING:
    pass


def within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def hidden_part(path: Path, root: Path) -> str | None:
    """The first hidden folder or file name between `root` and `path`, if any."""
    for part in path.relative_to(root).parts:
        if part.startswith("."):
            return part
    return None


def expand_user(text: str, field: str) -> Path:
    """`text` as a path, a leading `~` or `~user` expanded; refused by `field` if no file could have it.

    A NUL byte ends a path for the operating system (Python refuses it with a ValueError), and a
    `~user` that does not exist cannot be expanded (a RuntimeError): both are the caller's mistake,
    so both are said as such, not left to crash the call.
    """
    if "\x00" in text:
        raise InputError(f"{field}: {text!r} contains a NUL character (\\x00), which no path can hold.")
    path = Path(text)
    try:
        return path.expanduser()
    except RuntimeError:
        prefix = path.parts[0] if path.parts else text
        why = (
            f"there is no user {prefix[1:]!r} on this machine"
            if len(prefix) > 1
            else "the server's home folder is not known (HOME is not set)"
        )
        raise InputError(
            f"{field}: cannot expand {prefix!r}: {why}. Give an absolute path, or ~/... for the home folder "
            "of the user the server runs as."
        ) from None


def check_path_length(path: Path, field: str) -> None:
    """Refuse a path the file system cannot hold: a name over NAME_MAX or the whole over PATH_MAX bytes.

    Found out only when the result is saved, that would be after paying; so it is checked first.
    """
    limits = _path_limits(path)
    for name in path.parts:
        size = len(os.fsencode(name))
        if size > limits[0]:
            raise InputError(
                f"{field}: the name {name[:24]!r}... is {size:,} bytes long; names are limited to "
                f"{limits[0]:,} bytes on this file system."
            )
    size = len(os.fsencode(str(path)))
    if size >= limits[1]:
        raise InputError(
            f"{field}: the path {str(path)[:40]!r}... is {size:,} bytes long; paths are limited to "
            f"{limits[1] - 1:,} bytes on this system."
        )


def _path_limits(path: Path) -> tuple[int, int]:
    """(NAME_MAX, PATH_MAX) of the nearest existing folder of `path`; POSIX's usual 255 and 4096 if unknown."""
    for folder in path.parents:
        try:
            return os.pathconf(folder, "PC_NAME_MAX"), os.pathconf(folder, "PC_PATH_MAX")
        except (OSError, ValueError, AttributeError):  # missing folder, unknown name, no pathconf (Windows)
            continue
    return 255, 4096


def cannot_resolve(field: str, requested: str, exc: OSError | RuntimeError) -> InputError:
    if isinstance(exc, RuntimeError) or exc.errno == errno.ELOOP:  # Python 3.11 raises RuntimeError
        why = "it goes through a symbolic link loop"
    else:
        why = exc.strerror or type(exc).__name__
    return InputError(f"{field}: cannot use {requested!r}: {why}.")
