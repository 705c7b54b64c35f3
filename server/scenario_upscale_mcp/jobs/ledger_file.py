"""The ledger's file: opening it for sharing (WAL), bringing it to the current schema, and saying plainly
why it cannot be used (`LedgerError`).

Several processes open the same file (one server per host app), so every step here expects another
one doing the same at the same moment. Only the standard library is imported: the ledger is part of
start-up.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from scenario_upscale_mcp.api.errors import ScenarioError
from scenario_upscale_mcp.jobs.ledger_schema import MIGRATIONS, SCHEMA_VERSION, statements

logger = logging.getLogger(__name__)

FILE_NAME = "ledger.sqlite3"
BUSY_TIMEOUT_MS = 5000
WAL_SWITCH_RETRY_SECONDS = 0.01


class LedgerError(ScenarioError):
    """The ledger file cannot be used (damaged, too new, locked, unwritable); the message says what to do."""


def open_connection(path: Path) -> sqlite3.Connection:
    """A connection to the ledger at `path` (made if missing), in WAL mode and at the current schema."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LedgerError(
            f"Cannot create the state folder {path.parent} ({exc}). "
            "Set SCENARIO_STATE_DIR to a folder this user can write."
        ) from exc
    with usable(path):
        # isolation_level=None: the module must not open transactions on its own; each write
        # opens its own BEGIN IMMEDIATE so it takes the write lock before reading anything.
        # check_same_thread=False: the Ledger shares it between threads, one at a time (its lock).
        db = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
    try:
        with usable(path):
            _set_up(db, path)
    except BaseException:
        db.close()
        raise
    return db


def _set_up(db: sqlite3.Connection, path: Path) -> None:
    db.row_factory = sqlite3.Row
    db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    # Refuse a newer file before changing anything in it, the journal mode included.
    _refuse_newer(path, _user_version(db))
    mode = _switch_to_wal(db)
    if str(mode).lower() != "wal":
        # Some network file systems cannot share WAL's memory index; rollback journaling still works.
        logger.warning("the ledger at %s uses journal mode %s, not WAL", path, mode)
    # NORMAL in WAL mode: a power cut may lose the last commits but never corrupts the file.
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("PRAGMA foreign_keys = ON")
    _migrate(db, path)


def _switch_to_wal(db: sqlite3.Connection) -> str:
    """Turn WAL on (it stays on in the file) and return the journal mode in use.

    The switch needs the file to itself and SQLite returns "locked" at once instead of waiting
    (busy_timeout does not apply), so a process opening the file at the same moment as another
    retries for up to the busy timeout. Blocking, on purpose: the ledger is used from worker threads.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            return str(db.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() > deadline:
                raise
        time.sleep(WAL_SWITCH_RETRY_SECONDS)


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    """Bring the file to SCHEMA_VERSION, one migration per transaction.

    Two processes starting at once both see the old version; BEGIN IMMEDIATE lets one migrate
    while the other waits, and the version is read again inside the transaction so the one that
    waited does not apply the same migration twice.
    """
    while _user_version(db) < SCHEMA_VERSION:
        db.execute("BEGIN IMMEDIATE")
        try:
            version = _user_version(db)
            _refuse_newer(path, version)
            if version < SCHEMA_VERSION:
                # executescript() would commit first, leaving the migration outside the
                # transaction, so the statements run one by one.
                for statement in statements(MIGRATIONS[version]):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {version + 1}")
                logger.info("ledger %s migrated to schema %d", path, version + 1)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise


@contextmanager
def usable(path: Path) -> Iterator[None]:
    """Turn SQLite's failures to use the file into a LedgerError that says what to do about it.

    Integrity and programming errors pass through: they are bugs here, not a problem with the file.
    """
    try:
        yield
    except sqlite3.OperationalError as exc:
        text = str(exc)
        if is_busy(exc):
            advice = (
                f"another process held it for more than {BUSY_TIMEOUT_MS // 1000} s; try again, "
                "and check that no other program keeps it open"
            )
        elif "readonly" in text or "unable to open" in text:
            advice = "make the file and its folder writable, or set SCENARIO_STATE_DIR to another folder"
        else:
            advice = "if this persists, set SCENARIO_STATE_DIR to another folder"
        raise LedgerError(f"The job ledger {path} could not be used ({text}): {advice}.") from exc
    except sqlite3.DatabaseError as exc:
        if type(exc) is not sqlite3.DatabaseError:
            raise
        raise LedgerError(
            f"The job ledger {path} is damaged or not a ledger ({exc}). Move it aside together with "
            f"any {path.name}-wal and {path.name}-shm next to it (a new, empty ledger is then made and "
            "the job history starts over), or set SCENARIO_STATE_DIR to another folder."
        ) from exc


def is_busy(exc: sqlite3.Error) -> bool:
    """Another connection holds the lock (the extended codes, like SQLITE_BUSY_RECOVERY, included)."""
    return exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _user_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def _refuse_newer(path: Path, version: int) -> None:
    if version > SCHEMA_VERSION:
        raise LedgerError(
            f"The job ledger {path} was written by a newer scenario-upscale-mcp (schema {version}; "
            f"this one knows up to {SCHEMA_VERSION}). Upgrade scenario-upscale-mcp, or set "
            "SCENARIO_STATE_DIR to another folder."
        )


class LedgerConnection:
    """The one connection to the ledger file a process keeps, shared by its threads, and its transactions."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        # One connection for all threads: sqlite3 objects are not safe to use from two threads at
        # once, and a transaction belongs to the connection, so the lock covers reads too.
        self._lock = threading.Lock()
        self._connection = open_connection(path)

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock, usable(self.path):
            yield self._connection

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One short transaction that holds the write lock from its first statement.

        BEGIN IMMEDIATE waits (busy_timeout) for another process's write instead of starting as a
        reader and failing to upgrade later, which in WAL mode gives SQLITE_BUSY with no retry.
        """
        with self._lock, usable(self.path):
            db = self._connection
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
