"""Where results may be written: the output folder, or a folder the caller names inside the allowed places."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from scenario_upscale_mcp.api.errors import InputError
from scenario_upscale_mcp.paths import cannot_resolve, check_path_length, expand_user, hidden_part, within

if TYPE_CHECKING:
    from scenario_upscale_mcp.config import Settings


def resolve_output_dir(requested: str | None, settings: Settings) -> Path:
    """The folder results go to: the output folder, or `requested` if it is inside an allowed place.

    Everything that would make the save fail later is refused here, before anything is paid for: a
    path no file system can hold, a symlink loop, a file where a folder should be.
    """
    if not requested:
        return settings.output_dir
    path = expand_user(requested, "outputDir")
    if not path.is_absolute():
        path = settings.output_dir / path
    check_path_length(path, "outputDir")
    # Resolve what exists so a symlinked folder cannot lead outside the allowed places.
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError) as exc:
        raise cannot_resolve("outputDir", requested, exc) from None
    check_path_length(resolved, "outputDir")  # a symlink may have made it longer
    roots = [root for root in [settings.output_dir, *settings.allowed_dirs] if within(resolved, root)]
    if not roots:
        raise InputError(
            f"outputDir: {resolved} is outside the output folder ({settings.output_dir}) and the allowed "
            "folders (SCENARIO_ALLOWED_DIRS)."
        )
    if all(hidden_part(resolved, root) is not None for root in roots):
        raise InputError(f"outputDir: {resolved} is a hidden folder; choose a visible one.")
    # Checked before anything is paid for: a file where the folder should be would fail the save.
    try:
        blocker = next((part for part in [resolved, *resolved.parents] if part.exists()), None)
    except (OSError, RuntimeError) as exc:  # e.g. a folder on the way that cannot be searched
        raise cannot_resolve("outputDir", requested, exc) from None
    if blocker is not None and not blocker.is_dir():
        raise InputError(f"outputDir: {blocker} is a file, not a folder; choose a folder.")
    return resolved
