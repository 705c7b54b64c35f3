"""Where the simulator keeps what it creates: in memory (the default, what tests use), or in a state
folder (`persistence.FolderStorage`) shared by every simulator process that opens it.

The stores (assets, jobs, uploads) see the same interface either way:

- `Blob`: bytes, held in memory or in a file of the state folder, read whole or streamed in chunks;
- `Table`: a mapping of records by id, whose `modify` changes one record atomically (in a state
  folder: read, changed and written back in one transaction, so that two processes changing the same
  job, say one cancelling it while another advances it, never lose either change);
- `Storage`: makes blobs and tables, numbers jobs in creation order, and holds the secret that signs
  URLs (in a state folder the secret is stored too, so a URL signed by one process, or before a
  restart, is honoured by another).

In memory a table holds the records themselves (a test can read and change them in place); in a state
folder every read decodes a fresh copy, and only `modify` (or storing a record again) changes it.
"""

from __future__ import annotations

import itertools
import secrets
from abc import abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

import anyio

T = TypeVar("T")
R = TypeVar("R")

CHUNK_BYTES = 1024 * 1024


class Blob:
    """Bytes, in memory or in a file (a file of the state folder, which is never changed once written)."""

    __slots__ = ("_data", "digest", "path", "size")

    def __init__(
        self, *, data: bytes | None = None, path: Path | None = None, size: int, digest: str | None = None
    ) -> None:
        self._data = data
        self.path = path
        self.size = size
        self.digest = digest  # the name of its file in the state folder (a SHA-256), if it has one

    @classmethod
    def of(cls, data: bytes) -> Blob:
        return cls(data=data, size=len(data))

    def read(self) -> bytes:
        if self._data is not None:
            return self._data
        assert self.path is not None
        return self.path.read_bytes()

    async def chunks(self, limit: int | None = None) -> AsyncIterator[bytes | memoryview]:
        """The bytes in chunks of about 1 MiB, up to `limit` bytes; a file is read off the event loop."""
        end = self.size if limit is None else min(limit, self.size)
        if self._data is not None:
            # Slices of a memoryview share the stored bytes: a 256 MB asset is never copied per request.
            view = memoryview(self._data)
            for start in range(0, end, CHUNK_BYTES):
                yield view[start : min(start + CHUNK_BYTES, end)]
            return
        assert self.path is not None
        with self.path.open("rb") as file:
            left = end
            while left > 0:
                chunk = await anyio.to_thread.run_sync(file.read, min(CHUNK_BYTES, left))
                if not chunk:
                    return
                left -= len(chunk)
                yield chunk


class NotStored(KeyError):
    """`Table.modify` of an id the table does not hold."""


class Table(MutableMapping[str, T]):
    """Records by id, in creation order."""

    @abstractmethod
    def modify(self, key: str, change: Callable[[T], R]) -> R:
        """Apply `change` to the record `key` and store the result, atomically; `NotStored` if absent.

        Whatever `change` raises undoes the change (in a state folder; in memory the record is the
        object `change` was given)."""


class MemoryTable(Table[T]):
    def __init__(self) -> None:
        self._items: dict[str, T] = {}

    def __getitem__(self, key: str) -> T:
        return self._items[key]

    def __setitem__(self, key: str, value: T) -> None:
        self._items[key] = value

    def __delitem__(self, key: str) -> None:
        del self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._items))  # a copy: render threads may add while a listing runs

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __repr__(self) -> str:
        return repr(self._items)

    def modify(self, key: str, change: Callable[[T], R]) -> R:
        try:
            record = self._items[key]
        except KeyError:
            raise NotStored(key) from None
        return change(record)


class Codec(Protocol[T]):
    """How a table in a state folder writes its records: as JSON, with their blobs as references."""

    def encode(self, record: T, blobs: BlobRefs) -> dict[str, Any]: ...

    def decode(self, key: str, fields: dict[str, Any], blobs: BlobRefs) -> T: ...


class BlobRefs(Protocol):
    """What a codec needs to write a blob as a reference and read it back."""

    def ref(self, blob: Blob) -> list[Any]:
        """A reference to `blob` (stored first if it is still in memory)."""
        ...

    def deref(self, ref: list[Any]) -> Blob: ...


class Storage:
    """In memory: nothing outlives the `Sandbox`. The base of `persistence.FolderStorage`."""

    persistent = False

    def __init__(self) -> None:
        self._sequences: dict[str, itertools.count[int]] = {}
        self._secret = secrets.token_bytes(32)

    def blob(self, data: bytes) -> Blob:
        """`data` kept as a blob (in a state folder: written to a file first, so this may block)."""
        return Blob.of(data)

    def table(self, name: str, codec: Codec[T]) -> Table[T]:
        return MemoryTable()

    def next_sequence(self, name: str) -> int:
        """1, 2, 3...: the creation order of the records of `name`, across every process sharing it."""
        return next(self._sequences.setdefault(name, itertools.count(1)))

    def url_secret(self) -> bytes:
        return self._secret

    def close(self) -> None:
        """Release the state folder (nothing to do in memory)."""
