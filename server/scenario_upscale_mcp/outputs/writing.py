"""Writing results: atomic, never overwriting, named for what they are.

Bytes stream to a hidden temporary file in the target folder, which is then linked to a free final
name, so a crash or a cut connection never leaves a half file under the final name and an existing
file is never replaced; the temporary file is removed whatever happens (even on cancellation).

Two sources: an asset's download, whose worker thread writes its body into the file itself
(`save_download`, see `api/transfers.py`), and a stream of chunks on the event loop (`save_stream`,
for images fetched from a user's URL).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import anyio

from scenario_upscale_mcp.api.errors import DownloadError

EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/avif": "avif",
    "image/tiff": "tiff",
}


WRITE_BATCH_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class SavedFile:
    path: Path
    bytes: int
    mime_type: str | None
    width: int | None
    height: int | None


def safe_stem(text: str, *, limit: int = 60) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._")
    return stem[:limit] or "image"


def output_file_name(
    source_stem: str, model_tag: str, factor: float | None, job_id: str, extension: str, index: int
) -> str:
    """`<source stem>_<model>_x<factor>_<short job id>[_<n>].<ext>` (the n only for a job's later outputs)."""
    factor_text = f"_x{factor:g}" if factor else ""
    short_job = safe_stem(safe_stem(job_id.removeprefix("job_"))[:8])
    suffix = f"_{index + 1}" if index else ""
    return f"{safe_stem(source_stem)}_{model_tag}{factor_text}_{short_job}{suffix}.{extension}"


class Body(Protocol):
    """A body that writes itself into a file (`api.transfers.Download`): the size it announces, if
    any, and the copy."""

    @property
    def length(self) -> int | None: ...

    async def write_to(self, sink: BinaryIO) -> int: ...


async def save_download(folder: Path, file_name: str, body: Body) -> tuple[Path, int]:
    """Save a download's body as `folder/file_name` (or a numbered variant if taken); return (path, bytes).

    A disk problem (full, read-only, a file where the folder should be) is a DownloadError saying so;
    so is a body shorter than announced (then nothing is saved).
    """
    return await _save(folder, file_name, body.length, body.write_to)


async def save_stream(
    folder: Path, file_name: str, expected_bytes: int | None, chunks: AsyncIterator[bytes]
) -> tuple[Path, int]:
    """Stream `chunks` to `folder/file_name` (or a numbered variant if taken); return (path, bytes).

    A disk problem (full, read-only, a file where the folder should be) is a DownloadError saying so.
    """

    async def write(sink: BinaryIO) -> int:
        return await _write_in_batches(sink, chunks)

    return await _save(folder, file_name, expected_bytes, write)


async def _save(
    folder: Path, file_name: str, expected_bytes: int | None, write: Callable[[BinaryIO], Awaitable[int]]
) -> tuple[Path, int]:
    """`write` into a new temporary file in `folder`, then give it a free name near `file_name`."""
    try:
        await anyio.Path(folder).mkdir(parents=True, exist_ok=True)
        temporary = folder / f".{file_name}.{secrets.token_hex(4)}.part"
        sink = await anyio.to_thread.run_sync(temporary.open, "xb")
    except OSError as exc:
        raise DownloadError(f"Cannot write in {folder}: {exc.strerror or exc}.") from None
    try:
        try:
            written = await write(sink)
        finally:
            with anyio.CancelScope(shield=True):  # closed even when the call is cancelled
                await anyio.to_thread.run_sync(sink.close)
        if expected_bytes is not None and written != expected_bytes:
            raise DownloadError(
                f"The download of {file_name} was cut short ({written:,} of {expected_bytes:,} bytes); "
                "nothing was saved under that name. Try again."
            )
        final = await anyio.to_thread.run_sync(_claim_free_name, temporary, folder / file_name)
    except OSError as exc:
        raise DownloadError(f"Cannot save {file_name} in {folder}: {exc.strerror or exc}.") from None
    finally:
        with anyio.CancelScope(shield=True):  # no half file left behind, even on cancellation
            await anyio.Path(temporary).unlink(missing_ok=True)
    return final, written


async def _write_in_batches(sink: BinaryIO, chunks: AsyncIterator[bytes]) -> int:
    """Write chunks to `sink`, overlapping network reads with disk writes.

    Chunks are gathered into batches of a few MiB: a worker thread writes one batch while the next
    is received, so the event loop never blocks on the disk and a thread is woken once per batch,
    not per network read. At most three batches are in memory at once.
    """
    send, receive = anyio.create_memory_object_stream[list[bytes]](1)
    written = 0

    async def write_batches() -> None:
        async with receive:
            async for batch in receive:
                await anyio.to_thread.run_sync(sink.writelines, batch)

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(write_batches)
            async with send:
                batch: list[bytes] = []
                batched = 0
                async for chunk in chunks:
                    batch.append(chunk)
                    batched += len(chunk)
                    if batched >= WRITE_BATCH_BYTES:
                        await send.send(batch)
                        written += batched
                        batch, batched = [], 0
                await send.send(batch)
                written += batched
    except ExceptionGroup as failure:
        # A failed read or write ends both sides; callers expect that error itself, not a group.
        raise failure.exceptions[0] from None
    return written


def _claim_free_name(temporary: Path, wanted: Path) -> Path:
    """Give `temporary` the first free name among wanted, wanted-1, wanted-2, ... without overwriting."""
    for number in range(10_000):
        candidate = wanted if number == 0 else wanted.with_name(f"{wanted.stem}-{number}{wanted.suffix}")
        try:
            # A hard link fails if the name exists, so two writers can never take the same name.
            os.link(temporary, candidate)
        except FileExistsError:
            continue
        except OSError:
            # Filesystems without hard links: reserve the name exclusively, then move over the reservation.
            try:
                with open(candidate, "xb"):
                    pass
            except FileExistsError:
                continue
            os.replace(temporary, candidate)
        return candidate
    raise DownloadError(f"No free file name near {wanted}.")
