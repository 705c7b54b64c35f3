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
import math
import re
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
    # 2: a content being uploaded right now, so that identical uploads at once (in this process or
    # another) wait for the one in progress instead of each uploading the same bytes.
    """
    CREATE TABLE upload_claims (
        content_hash TEXT PRIMARY KEY,
        claimed_at REAL NOT NULL
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


class DamagedRecordError(LedgerError):
    """One row holds what this server never writes (edited by hand, or damaged): which row, which column."""


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
        return _jobs(rows)

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
        return _jobs(rows)

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

    def mark_sending(self, attempt_id: int, *, inputs: dict[str, Any]) -> None:
        """The request is about to leave: record exactly what is sent, and start its answer clock.

        An attempt is claimed before its images are uploaded (the request's identity is its content,
        known before any upload); what is sent names the uploaded assets, and that is what a lost
        answer's job is looked for by.
        """
        with self._writing() as db:
            db.execute(
                "UPDATE attempts SET inputs = ?, sent_at = ? WHERE attempt_id = ?",
                (_dump(inputs), self._clock(), attempt_id),
            )

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

    def claim_upload(self, content_hash: str, *, stale_after: float) -> bool:
        """Claim the upload of a content; False while another caller's claim younger than `stale_after` holds.

        One transaction, so two callers (threads or processes) never both claim the same content. A
        claim older than `stale_after` belongs to a caller that died mid-upload and is taken over.
        """
        now = self._clock()
        with self._writing() as db:
            row = db.execute(
                "SELECT claimed_at FROM upload_claims WHERE content_hash = ?", (content_hash,)
            ).fetchone()
            if row is not None and row["claimed_at"] >= now - stale_after:
                return False
            db.execute(
                "INSERT INTO upload_claims (content_hash, claimed_at) VALUES (?, ?) "
                "ON CONFLICT (content_hash) DO UPDATE SET claimed_at = excluded.claimed_at",
                (content_hash, now),
            )
            return True

    def renew_upload_claim(self, content_hash: str) -> None:
        with self._writing() as db:
            db.execute(
                "UPDATE upload_claims SET claimed_at = ? WHERE content_hash = ?",
                (self._clock(), content_hash),
            )

    def release_upload(self, content_hash: str) -> None:
        """End a claim, whether the upload succeeded (then recorded first) or failed."""
        with self._writing() as db:
            db.execute("DELETE FROM upload_claims WHERE content_hash = ?", (content_hash,))

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


# --- reading rows ---------------------------------------------------------------------------------
#
# A row is checked column by column as it is read: the file is the user's, and a row edited by hand
# (or damaged) must give a sentence naming it, not a crash somewhere further on. A damaged row read
# alone is a DamagedRecordError; in a list it is left out with a warning, so the others stay usable.

KNOWN_STATUSES = (
    frozenset({"pending", "queued", "warming-up", "in-progress", "finalizing"}) | TERMINAL_STATUSES
)
# What an API status looks like. One of this shape that is not known is kept, and treated as running,
# as `api.answers.Job` does: the API may add statuses. Anything else was not written by this server.
_STATUS_SHAPE = re.compile(r"[a-z][a-z-]{0,39}")
# An entry of `jobs.outputs`, as `record_outputs` is given it (the tools' OutputFile): key -> type.
_OUTPUT_KEYS: dict[str, type] = {
    "assetId": str,
    "path": str,
    "mimeType": str,
    "width": int,
    "height": int,
    "bytes": int,
}
_unknown_statuses_seen: set[tuple[str, str]] = set()


class _BadColumn(Exception):
    def __init__(self, column: str, problem: str) -> None:
        super().__init__(f"{column} {problem}")


def _damaged(what: str, exc: _BadColumn) -> DamagedRecordError:
    return DamagedRecordError(
        f"The job ledger's record of {what} is damaged: {exc}. It was probably edited by hand: correct or "
        f"delete that row, or move the ledger file ({FILE_NAME} in the state folder, SCENARIO_STATE_DIR) "
        "aside to start a new history."
    )


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _text(row: sqlite3.Row, column: str) -> str:
    value = row[column]
    if not isinstance(value, str):
        raise _BadColumn(column, f"should be text, not {_shown(value)}")
    return value


def _text_or_none(row: sqlite3.Row, column: str) -> str | None:
    return None if row[column] is None else _text(row, column)


def _number(row: sqlite3.Row, column: str) -> float:
    value = row[column]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _BadColumn(column, f"should be a finite number, not {_shown(value)}")
    return value


def _number_or_none(row: sqlite3.Row, column: str) -> float | None:
    return None if row[column] is None else _number(row, column)


def _json(row: sqlite3.Row, column: str, shape: type[dict[str, Any]] | type[list[Any]]) -> Any:
    text = row[column]
    if not isinstance(text, str):
        raise _BadColumn(column, f"should be JSON text, not {_shown(text)}")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise _BadColumn(column, f"is not JSON ({_shown(text)})") from None
    if not isinstance(value, shape):
        kind = "object" if shape is dict else "array"
        raise _BadColumn(column, f"should hold a JSON {kind}, not {_shown(value)}")
    return value


def _outputs(row: sqlite3.Row) -> list[dict[str, Any]]:
    outputs: list[Any] = _json(row, "outputs", list)
    for index, output in enumerate(outputs):
        if not isinstance(output, dict) or not isinstance(output.get("assetId"), str):
            raise _BadColumn(
                "outputs", f"entry {index} should be an object with an assetId, not {_shown(output)}"
            )
        for key, value in output.items():
            expected = _OUTPUT_KEYS.get(key)
            if expected is None:
                raise _BadColumn("outputs", f"entry {index} has an unknown key {key!r}")
            if value is not None and type(value) is not expected:  # `type`: a bool is no int here
                raise _BadColumn("outputs", f"entry {index} has {key} = {_shown(value)}")
    return outputs


def _status(row: sqlite3.Row, job_id: str) -> str:
    status = _text(row, "status")
    if not _STATUS_SHAPE.fullmatch(status):
        raise _BadColumn(
            "status", f"is {_shown(status)}, not a job status (such as {', '.join(sorted(KNOWN_STATUSES))})"
        )
    if status not in KNOWN_STATUSES and (job_id, status) not in _unknown_statuses_seen:
        _unknown_statuses_seen.add((job_id, status))
        logger.warning(
            "job %r has the status %r, which this server does not know; treated as running", job_id, status
        )
    return status


def _job(row: sqlite3.Row) -> JobRecord:
    """The row as a record; a DamagedRecordError naming the job and the column if it cannot be one."""
    try:
        job_id = _text(row, "job_id")
    except _BadColumn as exc:
        raise _damaged(f"job {_shown(row['job_id'])}", exc) from None
    try:
        return JobRecord(
            job_id=job_id,
            model=_text(row, "model"),
            parameters=_json(row, "parameters", dict),
            inputs=_json(row, "inputs", dict),
            request_key=_text_or_none(row, "request_key"),
            source_stem=_text_or_none(row, "source_stem"),
            upscale_factor=_number_or_none(row, "upscale_factor"),
            status=_status(row, job_id),
            progress=_number(row, "progress"),
            cost=_number_or_none(row, "cost"),
            error=_text_or_none(row, "error"),
            hint=_text_or_none(row, "hint"),
            outputs=_outputs(row),
            created_at=_number(row, "created_at"),
            updated_at=_number(row, "updated_at"),
            finished_at=_number_or_none(row, "finished_at"),
        )
    except _BadColumn as exc:
        raise _damaged(f"job {job_id!r}", exc) from None


def _jobs(rows: list[sqlite3.Row]) -> list[JobRecord]:
    """Every row that reads as a job; a damaged one is left out, with a warning naming it."""
    records: list[JobRecord] = []
    for row in rows:
        try:
            records.append(_job(row))
        except DamagedRecordError as exc:
            logger.warning("%s It is left out of the list.", exc)
    return records


def _outcome(row: sqlite3.Row) -> str:
    outcome = _text(row, "outcome")
    if outcome not in ATTEMPT_OUTCOMES:
        raise _BadColumn("outcome", f"is {_shown(outcome)}, not one of {', '.join(sorted(ATTEMPT_OUTCOMES))}")
    return outcome


def _attempt(row: sqlite3.Row) -> Attempt:
    """The row as an attempt; a DamagedRecordError naming the attempt and the column if it cannot be one."""
    attempt_id = row["attempt_id"]
    try:
        return Attempt(
            attempt_id=attempt_id,
            request_key=_text(row, "request_key"),
            model=_text(row, "model"),
            inputs=_json(row, "inputs", dict),
            sent_at=_number(row, "sent_at"),
            outcome=_outcome(row),
            job_id=_text_or_none(row, "job_id"),
        )
    except _BadColumn as exc:
        raise _damaged(f"submission attempt {attempt_id}", exc) from None
