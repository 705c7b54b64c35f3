"""The job ledger: what was submitted, uploaded and saved, kept in one SQLite file in the state folder.

It exists so that money is never spent twice and work is never lost: an identical request repeated
soon finds the job already running, a submission whose answer never arrived is remembered before
the request leaves, and a local file is uploaded once. It must stay correct with two server
processes on the same file (one per host app) and with worker threads inside each, so every write
is one short `BEGIN IMMEDIATE` transaction made of single statements (upserts), never a read then a
write. Only the standard library is imported: the ledger is part of start-up.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scenario_upscale_mcp.api.errors import ScenarioError

logger = logging.getLogger(__name__)

FILE_NAME = "ledger.sqlite3"
BUSY_TIMEOUT_MS = 5000
TERMINAL_STATUSES = frozenset({"success", "failure", "canceled"})
ATTEMPT_OUTCOMES = frozenset({"sending", "accepted", "rejected", "uncertain"})
# A billed request answers within this long or fails; an attempt still "sending" after it belongs to a
# process that died mid-request, so whether the API accepted it is unknown.
STALE_SENDING_SECONDS = 120.0
UNKNOWN_MODEL = "unknown"
WAL_SWITCH_RETRY_SECONDS = 0.01

# Migration N (1-based) brings user_version N-1 to N. Append only: a released script never changes,
# because files already migrated by it will not run it again. The SQL below spells the terminal
# statuses out as ('success', 'failure', 'canceled'); keep it in step with TERMINAL_STATUSES.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE jobs (
        job_id TEXT PRIMARY KEY,
        model TEXT NOT NULL,
        parameters TEXT NOT NULL DEFAULT '{}',
        inputs TEXT NOT NULL DEFAULT '{}',
        request_key TEXT,
        source_stem TEXT,
        upscale_factor REAL,
        status TEXT NOT NULL,
        progress REAL NOT NULL DEFAULT 0,
        cost REAL,
        error TEXT,
        hint TEXT,
        outputs TEXT NOT NULL DEFAULT '[]',
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        finished_at REAL
    );
    CREATE INDEX jobs_by_request_key ON jobs (request_key, created_at);
    CREATE INDEX jobs_by_status ON jobs (status, created_at);
    CREATE INDEX jobs_by_created_at ON jobs (created_at, job_id);

    CREATE TABLE attempts (
        attempt_id INTEGER PRIMARY KEY AUTOINCREMENT,
        request_key TEXT NOT NULL,
        model TEXT NOT NULL,
        inputs TEXT NOT NULL,
        sent_at REAL NOT NULL,
        outcome TEXT NOT NULL CHECK (outcome IN ('sending', 'accepted', 'rejected', 'uncertain')),
        job_id TEXT
    );
    CREATE INDEX attempts_by_request_key ON attempts (request_key, sent_at);

    CREATE TABLE uploads (
        content_hash TEXT PRIMARY KEY,
        asset_id TEXT NOT NULL,
        name TEXT NOT NULL,
        size INTEGER NOT NULL,
        uploaded_at REAL NOT NULL
    );

    CREATE TABLE downloads (
        download_id INTEGER PRIMARY KEY AUTOINCREMENT,
        asset_id TEXT NOT NULL,
        path TEXT NOT NULL,
        job_id TEXT,
        saved_at REAL NOT NULL,
        UNIQUE (asset_id, path)
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

# Rows are read by column name (sqlite3.Row), so SELECT * is safe against column order.
_SELECT_JOB = "SELECT * FROM jobs WHERE job_id = ?"
_SELECT_ATTEMPT = "SELECT * FROM attempts WHERE attempt_id = ?"

# Another process may already hold a row for this job (it saw the id through get_job): keep what it
# learnt from the API and fill in only what it could not know.
_RECORD_SUBMISSION = """
INSERT INTO jobs (job_id, model, parameters, inputs, request_key, source_stem, upscale_factor, status,
                  progress, cost, created_at, updated_at, finished_at)
VALUES (:job_id, :model, :parameters, :inputs, :request_key, :source_stem, :upscale_factor, :status,
        :progress, :cost, :now, :now, :finished_at)
ON CONFLICT (job_id) DO UPDATE SET
    model = CASE WHEN jobs.model = 'unknown' THEN excluded.model ELSE jobs.model END,
    parameters = CASE WHEN jobs.parameters = '{}' THEN excluded.parameters ELSE jobs.parameters END,
    inputs = CASE WHEN jobs.inputs = '{}' THEN excluded.inputs ELSE jobs.inputs END,
    request_key = COALESCE(jobs.request_key, excluded.request_key),
    source_stem = COALESCE(jobs.source_stem, excluded.source_stem),
    upscale_factor = COALESCE(jobs.upscale_factor, excluded.upscale_factor),
    status = CASE
        WHEN jobs.status IN ('success', 'failure', 'canceled') THEN jobs.status
        WHEN excluded.status IN ('success', 'failure', 'canceled') THEN excluded.status
        ELSE jobs.status END,
    progress = CASE
        WHEN jobs.status IN ('success', 'failure', 'canceled') THEN jobs.progress
        WHEN excluded.status IN ('success', 'failure', 'canceled') THEN excluded.progress
        ELSE jobs.progress END,
    cost = COALESCE(jobs.cost, excluded.cost),
    updated_at = excluded.updated_at,
    finished_at = COALESCE(jobs.finished_at, excluded.finished_at)
"""

# Poll answers from several threads or processes can land out of order. Once a job is terminal, an
# answer with another status is an older one arriving late: the WHERE clause drops it whole.
_OBSERVE_JOB = """
INSERT INTO jobs (job_id, model, status, progress, cost, error, hint, created_at, updated_at, finished_at)
VALUES (:job_id, :model, :status, :progress, :cost, :error, :hint, :now, :now, :finished_at)
ON CONFLICT (job_id) DO UPDATE SET
    model = CASE WHEN jobs.model = 'unknown' THEN excluded.model ELSE jobs.model END,
    status = excluded.status,
    progress = excluded.progress,
    cost = COALESCE(excluded.cost, jobs.cost),
    error = COALESCE(excluded.error, jobs.error),
    hint = COALESCE(excluded.hint, jobs.hint),
    updated_at = excluded.updated_at,
    finished_at = COALESCE(jobs.finished_at, excluded.finished_at)
WHERE jobs.status NOT IN ('success', 'failure', 'canceled') OR jobs.status = excluded.status
"""


class LedgerError(ScenarioError):
    """The ledger file cannot be used (damaged, too new, locked, unwritable); the message says what to do."""


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    model: str
    parameters: dict[str, Any]
    inputs: dict[str, Any]
    request_key: str | None
    source_stem: str | None
    upscale_factor: float | None
    status: str
    progress: float
    cost: float | None
    error: str | None
    hint: str | None
    outputs: list[dict[str, Any]]
    created_at: float
    updated_at: float
    finished_at: float | None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


@dataclass(frozen=True)
class Attempt:
    """One billed submission, written before the request leaves so an unanswered one is never forgotten."""

    attempt_id: int
    request_key: str
    model: str
    inputs: dict[str, Any]
    sent_at: float
    outcome: str
    job_id: str | None


class Ledger:
    """The ledger file, opened once per process and shared by its threads."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        # One connection for all threads: sqlite3 objects are not safe to use from two threads at
        # once, and a transaction belongs to the connection, so the lock covers reads too.
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LedgerError(
                f"Cannot create the state folder {path.parent} ({exc}). "
                "Set SCENARIO_STATE_DIR to a folder this user can write."
            ) from exc
        with _usable(path):
            # isolation_level=None: the module must not open transactions on its own; each write
            # opens its own BEGIN IMMEDIATE so it takes the write lock before reading anything.
            self._connection = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
        try:
            with _usable(path):
                self._open()
        except BaseException:
            self._connection.close()
            raise

    @classmethod
    def in_folder(cls, folder: Path, *, clock: Callable[[], float] = time.time) -> Ledger:
        return cls(folder / FILE_NAME, clock=clock)

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- jobs ---------------------------------------------------------------------------------------

    def record_submission(
        self,
        *,
        job_id: str,
        model: str,
        parameters: dict[str, Any],
        inputs: dict[str, Any],
        request_key: str | None,
        source_stem: str | None,
        upscale_factor: float | None,
        status: str,
        progress: float,
        cost: float | None,
    ) -> JobRecord:
        """Record a job the API just accepted; if another process already knows it, complete its row."""
        now = self._clock()
        with self._writing() as db:
            db.execute(
                _RECORD_SUBMISSION,
                {
                    "job_id": job_id,
                    "model": model,
                    "parameters": _dump(parameters),
                    "inputs": _dump(inputs),
                    "request_key": request_key,
                    "source_stem": source_stem,
                    "upscale_factor": upscale_factor,
                    "status": status,
                    "progress": progress,
                    "cost": cost,
                    "now": now,
                    "finished_at": now if status in TERMINAL_STATUSES else None,
                },
            )
            return _job(db.execute(_SELECT_JOB, (job_id,)).fetchone())

    def observe_job(
        self,
        job_id: str,
        *,
        status: str,
        progress: float,
        cost: float | None = None,
        error: str | None = None,
        hint: str | None = None,
        model: str | None = None,
    ) -> JobRecord:
        """Record what the API just said about a job, known or not; a terminal status is never undone."""
        now = self._clock()
        with self._writing() as db:
            db.execute(
                _OBSERVE_JOB,
                {
                    "job_id": job_id,
                    "model": model or UNKNOWN_MODEL,
                    "status": status,
                    "progress": progress,
                    "cost": cost,
                    "error": error,
                    "hint": hint,
                    "now": now,
                    "finished_at": now if status in TERMINAL_STATUSES else None,
                },
            )
            return _job(db.execute(_SELECT_JOB, (job_id,)).fetchone())

    def record_outputs(self, job_id: str, outputs: list[dict[str, Any]]) -> JobRecord:
        """Replace the job's list of saved outputs. Raises KeyError for a job the ledger has never seen."""
        with self._writing() as db:
            updated = db.execute(
                "UPDATE jobs SET outputs = ?, updated_at = ? WHERE job_id = ?",
                (_dump(outputs), self._clock(), job_id),
            )
            if updated.rowcount == 0:
                raise KeyError(job_id)
            return _job(db.execute(_SELECT_JOB, (job_id,)).fetchone())

    def get_job(self, job_id: str) -> JobRecord | None:
        with self._reading() as db:
            row = db.execute(_SELECT_JOB, (job_id,)).fetchone()
        return None if row is None else _job(row)

    def list_jobs(self, *, limit: int = 20, status: str | None = None) -> list[JobRecord]:
        """Newest first (created_at, then job_id, both descending)."""
        if limit < 0:
            raise ValueError(f"limit must be 0 or more, not {limit}")
        with self._reading() as db:
            if status is None:
                rows = db.execute(
                    "SELECT * FROM jobs ORDER BY created_at DESC, job_id DESC LIMIT ?",
                    (limit,),
                ).fetchall()
            else:
                rows = db.execute(
                    "SELECT * FROM jobs WHERE status = ? ORDER BY created_at DESC, job_id DESC LIMIT ?",
                    (status, limit),
                ).fetchall()
        return [_job(row) for row in rows]

    def find_reusable(self, request_key: str, *, success_window: float = 600.0) -> JobRecord | None:
        """The newest job for an identical request that is still running or succeeded recently.

        A failed or canceled job is never reused: asking again is how the caller retries it.
        """
        with self._reading() as db:
            row = db.execute(
                "SELECT * FROM jobs WHERE request_key = ? AND ("
                "status NOT IN ('success', 'failure', 'canceled') "
                "OR (status = 'success' AND finished_at >= ?)) "
                "ORDER BY created_at DESC, job_id DESC LIMIT 1",
                (request_key, self._clock() - success_window),
            ).fetchone()
        return None if row is None else _job(row)

    def jobs_in_flight(self) -> list[JobRecord]:
        """Jobs not yet terminal, newest first: what a restarted server may still want to watch."""
        with self._reading() as db:
            rows = db.execute(
                "SELECT * FROM jobs "
                "WHERE status NOT IN ('success', 'failure', 'canceled') "
                "ORDER BY created_at DESC, job_id DESC"
            ).fetchall()
        return [_job(row) for row in rows]

    # --- submission attempts ----------------------------------------------------------------------

    def begin_attempt(self, *, request_key: str, model: str, inputs: dict[str, Any]) -> Attempt:
        """Write down a billed request before it is sent (outcome "sending")."""
        with self._writing() as db:
            cursor = db.execute(
                "INSERT INTO attempts (request_key, model, inputs, sent_at, outcome) "
                "VALUES (?, ?, ?, ?, 'sending')",
                (request_key, model, _dump(inputs), self._clock()),
            )
            return _attempt(db.execute(_SELECT_ATTEMPT, (cursor.lastrowid,)).fetchone())

    def claim_attempt(self, *, request_key: str, model: str, inputs: dict[str, Any]) -> tuple[Attempt, bool]:
        """Write down a billed request before it is sent, unless an identical one is being sent now.

        Returns (the new attempt, True) when this caller may send; or (the attempt in flight, False)
        when a young "sending" attempt for the same request exists, in this process or another. One
        transaction: two callers can never both claim the same request.
        """
        now = self._clock()
        with self._writing() as db:
            row = db.execute(
                "SELECT * FROM attempts WHERE request_key = ? AND outcome = 'sending' AND sent_at >= ? "
                "ORDER BY sent_at DESC, attempt_id DESC LIMIT 1",
                (request_key, now - STALE_SENDING_SECONDS),
            ).fetchone()
            if row is not None:
                return _attempt(row), False
            cursor = db.execute(
                "INSERT INTO attempts (request_key, model, inputs, sent_at, outcome) "
                "VALUES (?, ?, ?, ?, 'sending')",
                (request_key, model, _dump(inputs), now),
            )
            return _attempt(db.execute(_SELECT_ATTEMPT, (cursor.lastrowid,)).fetchone()), True

    def get_attempt(self, attempt_id: int) -> Attempt | None:
        with self._reading() as db:
            row = db.execute(_SELECT_ATTEMPT, (attempt_id,)).fetchone()
        return None if row is None else _attempt(row)

    def finish_attempt(self, attempt_id: int, *, outcome: str, job_id: str | None = None) -> Attempt:
        """Settle an attempt: accepted (with its job), rejected (surely not billed) or uncertain.

        An uncertain attempt may be settled again later, once the job it made has been found.
        Raises ValueError for another outcome, KeyError for an unknown attempt.
        """
        if outcome not in ATTEMPT_OUTCOMES - {"sending"}:
            raise ValueError(f"outcome must be accepted, rejected or uncertain, not {outcome!r}")
        with self._writing() as db:
            updated = db.execute(
                "UPDATE attempts SET outcome = ?, job_id = COALESCE(?, job_id) WHERE attempt_id = ?",
                (outcome, job_id, attempt_id),
            )
            if updated.rowcount == 0:
                raise KeyError(attempt_id)
            return _attempt(db.execute(_SELECT_ATTEMPT, (attempt_id,)).fetchone())

    def open_uncertain_attempt(self, request_key: str, *, within: float = 600.0) -> Attempt | None:
        """The newest recent attempt for this request that may have been billed without an answer.

        That is one marked uncertain, or one still "sending" long after any answer would have come
        (its process died mid-request). A young "sending" one is a request in progress, not returned.
        """
        now = self._clock()
        with self._reading() as db:
            row = db.execute(
                "SELECT * FROM attempts WHERE request_key = ? AND sent_at >= ? "
                "AND (outcome = 'uncertain' OR (outcome = 'sending' AND sent_at < ?)) "
                "ORDER BY sent_at DESC, attempt_id DESC LIMIT 1",
                (request_key, now - within, now - STALE_SENDING_SECONDS),
            ).fetchone()
        return None if row is None else _attempt(row)

    # --- uploads ----------------------------------------------------------------------------------

    def asset_for_content(self, content_hash: str) -> str | None:
        with self._reading() as db:
            row = db.execute(
                "SELECT asset_id FROM uploads WHERE content_hash = ?", (content_hash,)
            ).fetchone()
        return None if row is None else str(row["asset_id"])

    def record_upload(self, *, content_hash: str, asset_id: str, name: str, size: int) -> None:
        """Remember the asset a file's content became; the latest upload wins."""
        with self._writing() as db:
            db.execute(
                "INSERT INTO uploads (content_hash, asset_id, name, size, uploaded_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (content_hash) DO UPDATE SET asset_id = excluded.asset_id, "
                "name = excluded.name, size = excluded.size, uploaded_at = excluded.uploaded_at",
                (content_hash, asset_id, name, size, self._clock()),
            )

    def forget_upload(self, content_hash: str, *, asset_id: str | None = None) -> None:
        """Forget an upload whose asset the API no longer has.

        Given `asset_id`, only that asset is forgotten: another process may have uploaded the file
        again meanwhile, and its fresh asset must not be dropped.
        """
        with self._writing() as db:
            if asset_id is None:
                db.execute("DELETE FROM uploads WHERE content_hash = ?", (content_hash,))
            else:
                db.execute(
                    "DELETE FROM uploads WHERE content_hash = ? AND asset_id = ?", (content_hash, asset_id)
                )

    # --- downloads --------------------------------------------------------------------------------

    def record_download(self, *, asset_id: str, path: str, job_id: str | None) -> None:
        """Remember where an asset was saved; the same path recorded again stays one entry."""
        with self._writing() as db:
            db.execute(
                "INSERT INTO downloads (asset_id, path, job_id, saved_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (asset_id, path) DO UPDATE SET job_id = COALESCE(excluded.job_id, job_id)",
                (asset_id, path, job_id, self._clock()),
            )

    def downloads_of(self, asset_id: str) -> list[str]:
        """Every path the asset was saved to, oldest first."""
        with self._reading() as db:
            rows = db.execute(
                "SELECT path FROM downloads WHERE asset_id = ? ORDER BY saved_at, download_id", (asset_id,)
            ).fetchall()
        return [str(row["path"]) for row in rows]

    # --- plumbing ---------------------------------------------------------------------------------

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock, _usable(self.path):
            yield self._connection

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One short transaction that holds the write lock from its first statement.

        BEGIN IMMEDIATE waits (busy_timeout) for another process's write instead of starting as a
        reader and failing to upgrade later, which in WAL mode gives SQLITE_BUSY with no retry.
        """
        with self._lock, _usable(self.path):
            db = self._connection
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def _open(self) -> None:
        db = self._connection
        db.row_factory = sqlite3.Row
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # Refuse a newer file before changing anything in it, the journal mode included.
        _refuse_newer(self.path, _user_version(db))
        mode = self._switch_to_wal()
        if str(mode).lower() != "wal":
            # Some network file systems cannot share WAL's memory index; rollback journaling still works.
            logger.warning("the ledger at %s uses journal mode %s, not WAL", self.path, mode)
        # NORMAL in WAL mode: a power cut may lose the last commits but never corrupts the file.
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA foreign_keys = ON")
        self._migrate()

    def _switch_to_wal(self) -> str:
        """Turn WAL on (it stays on in the file) and return the journal mode in use.

        The switch needs the file to itself and SQLite returns "locked" at once instead of waiting
        (busy_timeout does not apply), so a process opening the file at the same moment as another
        retries for up to the busy timeout.
        """
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                return str(self._connection.execute("PRAGMA journal_mode = WAL").fetchone()[0])
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(WAL_SWITCH_RETRY_SECONDS)

    def _migrate(self) -> None:
        """Bring the file to SCHEMA_VERSION, one migration per transaction.

        Two processes starting at once both see the old version; BEGIN IMMEDIATE lets one migrate
        while the other waits, and the version is read again inside the transaction so the one that
        waited does not apply the same migration twice.
        """
        db = self._connection
        while _user_version(db) < SCHEMA_VERSION:
            db.execute("BEGIN IMMEDIATE")
            try:
                version = _user_version(db)
                _refuse_newer(self.path, version)
                if version < SCHEMA_VERSION:
                    # executescript() would commit first, leaving the migration outside the
                    # transaction, so the statements run one by one.
                    for statement in _statements(MIGRATIONS[version]):
                        db.execute(statement)
                    db.execute(f"PRAGMA user_version = {version + 1}")
                    logger.info("ledger %s migrated to schema %d", self.path, version + 1)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise


@contextmanager
def _usable(path: Path) -> Iterator[None]:
    """Turn SQLite's failures to use the file into a LedgerError that says what to do about it.

    Integrity and programming errors pass through: they are bugs here, not a problem with the file.
    """
    try:
        yield
    except sqlite3.OperationalError as exc:
        text = str(exc)
        if _is_busy(exc):
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


def _is_busy(exc: sqlite3.Error) -> bool:
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


def _statements(script: str) -> list[str]:
    """Split a script into whole statements (sqlite3 decides, so a ';' inside a string is safe)."""
    statements: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\n;"):
                statements.append(pending.strip())
            pending = ""
    if pending.strip(" \t\n;"):
        raise ValueError(f"unfinished SQL statement in a migration: {pending.strip()!r}")
    return statements


def _dump(value: dict[str, Any] | list[dict[str, Any]]) -> str:
    return json.dumps(value, sort_keys=True)


def _job(row: sqlite3.Row) -> JobRecord:
    return JobRecord(
        job_id=row["job_id"],
        model=row["model"],
        parameters=json.loads(row["parameters"]),
        inputs=json.loads(row["inputs"]),
        request_key=row["request_key"],
        source_stem=row["source_stem"],
        upscale_factor=row["upscale_factor"],
        status=row["status"],
        progress=row["progress"],
        cost=row["cost"],
        error=row["error"],
        hint=row["hint"],
        outputs=json.loads(row["outputs"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        finished_at=row["finished_at"],
    )


def _attempt(row: sqlite3.Row) -> Attempt:
    return Attempt(
        attempt_id=row["attempt_id"],
        request_key=row["request_key"],
        model=row["model"],
        inputs=json.loads(row["inputs"]),
        sent_at=row["sent_at"],
        outcome=row["outcome"],
        job_id=row["job_id"],
    )
