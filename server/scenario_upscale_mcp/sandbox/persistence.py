"""The simulator's state folder: what it created (assets, jobs, uploads, format conversions, rendered
outputs) outlives its process and is shared by every simulator that opens the same folder.

The layout:

- ``simulator.sqlite3``: one table per kind of record (id → a JSON record), the job sequence and
  the URL-signing secret. WAL mode, so readers never wait for a writer; every change is one
  ``BEGIN IMMEDIATE`` transaction that reads the record and writes it back (`Table.modify`), so two
  processes changing the same job at once are serialised, and a busy file is waited for (up to
  `BUSY_TIMEOUT_SECONDS`), never reported as an error to a client.
- ``blobs/xx/<sha256>``: the bytes (images, upload parts, rendered outputs, conversions), one file per
  content, written to a temporary file beside it and renamed into place, so a reader never sees half a
  file; a content already stored is not written again. A blob is never changed or removed.

Nothing here depends on which process wrote what: a job's timeline is measured on the wall clock from
its stored creation date (`timeline`), so any process, or one started later, computes the same status.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from scenario_upscale_mcp.sandbox.storage import Blob, Codec, NotStored, Storage, Table

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

DATABASE_NAME = "simulator.sqlite3"
BLOB_FOLDER = "blobs"
BUSY_TIMEOUT_SECONDS = 30.0
SCHEMA_VERSION = 1
_TABLES = ("assets", "cdn_objects", "jobs", "renders", "uploads")


class StateFolderError(RuntimeError):
    """The state folder cannot be used; the message says which folder and why."""


class FolderStorage(Storage):
    """A state folder (made if missing), shared with every other simulator that opens it."""

    persistent = True

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder
        self._blobs = folder / BLOB_FOLDER
        try:
            self._blobs.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                folder / DATABASE_NAME,
                timeout=BUSY_TIMEOUT_SECONDS,
                isolation_level=None,  # transactions are ours: BEGIN IMMEDIATE, see `transaction`
                check_same_thread=False,  # shared by the event loop and render threads, under `_lock`
            )
        except (OSError, sqlite3.Error) as exc:
            raise StateFolderError(f"Cannot use the simulator's state folder {folder}: {exc}") from exc
        self._lock = threading.RLock()
        self._depth = 0  # nesting of `transaction` in the thread holding the lock
        try:
            self._set_up()
        except sqlite3.Error as exc:
            self._db.close()
            raise StateFolderError(f"Cannot use the simulator's state folder {folder}: {exc}") from exc
        except BaseException:
            self._db.close()
            raise

    # --- the database ------------------------------------------------------------------------------

    def _set_up(self) -> None:
        db = self._db
        db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
        self._switch_to_wal()
        db.execute("PRAGMA synchronous = NORMAL")
        with self.transaction():
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StateFolderError(
                    f"The simulator's state folder {self.folder} was written by a newer version "
                    f"(schema {version}); use another folder or upgrade."
                )
            for name in _TABLES:
                db.execute(f"CREATE TABLE IF NOT EXISTS {name} (key TEXT PRIMARY KEY, record TEXT NOT NULL)")
            db.execute(
                "CREATE TABLE IF NOT EXISTS sequences "
                "(number INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL)"
            )
            db.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL)")
            db.execute(
                "INSERT OR IGNORE INTO meta (name, value) VALUES ('url_secret', ?)",
                (secrets.token_bytes(32),),
            )
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self._secret = bytes(db.execute("SELECT value FROM meta WHERE name = 'url_secret'").fetchone()[0])

    def _switch_to_wal(self) -> None:
        # The switch needs the file to itself, and SQLite answers "locked" at once rather than waiting
        # (busy_timeout does not apply): a process opening the folder with another retries a while.
        deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
        while True:
            try:
                mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise StateFolderError(
                        f"Cannot open the simulator's state in {self.folder}: {exc}"
                    ) from exc
                time.sleep(0.01)
                continue
            if str(mode).lower() != "wal":
                logger.warning("sandbox: the state in %s uses journal mode %s, not WAL", self.folder, mode)
            return

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE: the write lock is taken before anything is read).

        Nested calls in the same thread join the outer transaction: a job that succeeds stores its
        output asset in the transaction that changes the job."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self._db
                finally:
                    self._depth -= 1
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self._db
            except BaseException:
                self._depth = 0
                self._db.execute("ROLLBACK")
                raise
            self._depth = 0
            self._db.execute("COMMIT")

    def query(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, parameters).fetchall()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- what the stores use -----------------------------------------------------------------------

    def blob(self, data: bytes) -> Blob:
        digest = hashlib.sha256(data).hexdigest()
        path = self._blob_path(digest)
        if not path.exists():
            path.parent.mkdir(exist_ok=True)
            descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".part-")
            try:
                with os.fdopen(descriptor, "wb") as file:
                    file.write(data)
                    file.flush()
                    os.fsync(file.fileno())
                os.replace(temporary, path)
            except OSError:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                if not path.exists():  # Another process writing the same content may hold it (Windows).
                    raise
        return Blob(path=path, size=len(data), digest=digest)

    def _blob_path(self, digest: str) -> Path:
        return self._blobs / digest[:2] / digest

    def ref(self, blob: Blob) -> list[Any]:
        if blob.digest is None:
            blob = self.blob(blob.read())
        return [blob.digest, blob.size]

    def deref(self, ref: list[Any]) -> Blob:
        digest, size = ref
        return Blob(path=self._blob_path(digest), size=size, digest=digest)

    def table(self, name: str, codec: Codec[T]) -> Table[T]:
        if name not in _TABLES:
            raise ValueError(f"no table {name!r} in the simulator's state")
        return FolderTable(self, name, codec)

    def next_sequence(self, name: str) -> int:
        with self.transaction() as db:
            number = db.execute("INSERT INTO sequences (name) VALUES (?)", (name,)).lastrowid
        assert number is not None
        return number

    def url_secret(self) -> bytes:
        return self._secret


class FolderTable(Table[T]):
    """A table of the state folder: every read decodes a fresh record; `modify` is one transaction."""

    def __init__(self, storage: FolderStorage, name: str, codec: Codec[T]) -> None:
        self._storage = storage
        self._name = name
        self._codec = codec
        # `name` is one of `_TABLES` (checked by `FolderStorage.table`), never a caller's text.
        self._select = f"SELECT record FROM {name} WHERE key = ?"  # noqa: S608
        self._exists = f"SELECT 1 FROM {name} WHERE key = ?"  # noqa: S608
        self._keys = f"SELECT key FROM {name} ORDER BY rowid"  # noqa: S608
        self._count = f"SELECT count(*) FROM {name}"  # noqa: S608
        self._insert = f"INSERT INTO {name} (key, record) VALUES (?, ?)"  # noqa: S608
        self._upsert = f"INSERT OR REPLACE INTO {name} (key, record) VALUES (?, ?)"  # noqa: S608
        self._update = f"UPDATE {name} SET record = ? WHERE key = ?"  # noqa: S608
        self._delete = f"DELETE FROM {name} WHERE key = ?"  # noqa: S608

    def _decode(self, key: str, text: str) -> T:
        return self._codec.decode(key, json.loads(text), self._storage)

    def _encode(self, record: T) -> str:
        return json.dumps(self._codec.encode(record, self._storage), separators=(",", ":"))

    def _load(self, db: sqlite3.Connection, key: str) -> T | None:
        row = db.execute(self._select, (key,)).fetchone()
        return None if row is None else self._decode(key, row[0])

    def __getitem__(self, key: str) -> T:
        rows = self._storage.query(self._select, (key,))
        if not rows:
            raise KeyError(key)
        return self._decode(key, rows[0][0])

    def __setitem__(self, key: str, value: T) -> None:
        text = self._encode(value)  # blobs are written before the transaction, not inside it
        with self._storage.transaction() as db:
            db.execute(self._upsert, (key, text))

    def __delitem__(self, key: str) -> None:
        with self._storage.transaction() as db:
            deleted = db.execute(self._delete, (key,)).rowcount
        if not deleted:
            raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter([row[0] for row in self._storage.query(self._keys)])

    def __len__(self) -> int:
        count: int = self._storage.query(self._count)[0][0]
        return count

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and bool(self._storage.query(self._exists, (key,)))

    def __repr__(self) -> str:
        return f"<{self._name} in {self._storage.folder}: {len(self)} records>"

    def setdefault(self, key: str, default: T) -> T:
        """The record `key`, or `default` stored as it: atomic (the first of two processes wins)."""
        text = self._encode(default)
        with self._storage.transaction() as db:
            stored = self._load(db, key)
            if stored is not None:
                return stored
            db.execute(self._insert, (key, text))
        return default

    def modify(self, key: str, change: Callable[[T], R]) -> R:
        with self._storage.transaction() as db:
            record = self._load(db, key)
            if record is None:
                raise NotStored(key)
            result = change(record)
            db.execute(self._update, (self._encode(record), key))
        return result
