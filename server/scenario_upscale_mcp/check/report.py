"""Printing the check's report: one ✓ or ✗ line per check, every credential scrubbed from it, in what the
output's encoding can carry (plain OK/FAIL where it has no ✓/✗)."""

from __future__ import annotations

from contextlib import suppress
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from scenario_upscale_mcp.check.verdicts import CheckLine

PASSED = "✓"
FAILED = "✗"


def render(
    lines: Sequence[CheckLine], *, hidden: Iterable[str] = (), symbols: tuple[str, str] = (PASSED, FAILED)
) -> str:
    """The report as printed, with every hidden value (the credentials) scrubbed from it."""
    passed_mark, failed_mark = symbols
    out: list[str] = []
    for line in lines:
        text = f"{passed_mark if line.passed else failed_mark} {line.text}"
        if not line.passed and line.fix:
            text += f" — fix: {line.fix}"
        out.append(text)
        out += [f"    · {detail}" for detail in line.details]
    failed = sum(not line.passed for line in lines)
    out.append(
        f"All {len(lines)} checks passed." if not failed else f"{failed} of {len(lines)} checks failed."
    )
    return _scrubbed("\n".join(out) + "\n", hidden)


def _scrubbed(text: str, hidden: Iterable[str]) -> str:
    # An error text is the API's own words; should it ever echo a credential, it is cut out here.
    # Values under 4 characters are left alone: no real key is that short, and scrubbing "a" would
    # garble every line.
    for value in sorted(hidden, key=len, reverse=True):
        if len(value) >= 4:
            text = text.replace(value, "[hidden]")
    return text


def symbols_for(stream: TextIO) -> tuple[str, str]:
    """✓/✗, or plain words where the output's encoding has no such characters (older Windows consoles,
    output redirected to a file there)."""
    try:
        (PASSED + FAILED).encode(_encoding(stream))
    except (UnicodeEncodeError, LookupError):
        return ("OK", "FAIL")
    return (PASSED, FAILED)


def write(stream: TextIO, text: str) -> None:
    """Write what the output's encoding can carry (a character it lacks becomes "?"), never crash on it."""
    with suppress(LookupError):
        text = text.encode(_encoding(stream), "replace").decode(_encoding(stream))
    stream.write(text)
    stream.flush()


def _encoding(stream: TextIO) -> str:
    return getattr(stream, "encoding", None) or "utf-8"
