"""The ledger's SQL: the migrations that make its tables, and the statements that need more than a line.

Job statuses are never spelled here: the statements are built from `api.statuses`, so the SQL and
the Python agree by construction. Only the standard library is imported: the ledger is part of
start-up.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from scenario_upscale_mcp.api.statuses import SUCCESS, TERMINAL_STATUSES

# What became of a billed request; the first migration spells these out in a CHECK constraint.
ATTEMPT_OUTCOMES = frozenset({"sending", "accepted", "rejected", "uncertain"})

# Migration N (1-based) brings user_version N-1 to N. Append only: a released script never changes,
# because files already migrated by it will not run it again. So a migration is a record, not built
# from constants that may move on: a test checks that the ones it spells agree with them.
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
    # 3: the folder the submitting call asked for (resolved, absolute), so a job finished by a later
    # wait_for_jobs or download_assets, in this process or another, is saved where it was asked to.
    """
    ALTER TABLE jobs ADD COLUMN output_dir TEXT;
    """,
    # 4: the jobs of each batch (upscale_batch), so a batch's jobs can be found again by its id, in this
    # process or another. Many to many: one job may answer an image in several batches (an identical
    # request reuses the job already made), so membership is not a column of the job.
    """
    CREATE TABLE batch_jobs (
        batch_id TEXT NOT NULL,
        job_id TEXT NOT NULL,
        added_at REAL NOT NULL,
        PRIMARY KEY (batch_id, job_id)
    ) WITHOUT ROWID;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


def sql_list(values: Iterable[str]) -> str:
    """`('a', 'b')`, for `IN`: only for this package's constants, never for anything a caller gave."""
    spelled = list(values)
    if any("'" in value for value in spelled):
        raise ValueError(f"a quote cannot go into an SQL list: {spelled!r}")
    return "(" + ", ".join(f"'{value}'" for value in spelled) + ")"


TERMINAL = sql_list(TERMINAL_STATUSES)

# Rows are read by column name (sqlite3.Row), so SELECT * is safe against column order.
SELECT_JOB = "SELECT * FROM jobs WHERE job_id = ?"
SELECT_ATTEMPT = "SELECT * FROM attempts WHERE attempt_id = ?"

# Another process may already hold a row for this job (it saw the id through get_job): keep what it
# learnt from the API and fill in only what it could not know.
RECORD_SUBMISSION = f"""
INSERT INTO jobs (job_id, model, parameters, inputs, request_key, source_stem, upscale_factor, output_dir,
                  status, progress, cost, created_at, updated_at, finished_at)
VALUES (:job_id, :model, :parameters, :inputs, :request_key, :source_stem, :upscale_factor, :output_dir,
        :status, :progress, :cost, :now, :now, :finished_at)
ON CONFLICT (job_id) DO UPDATE SET
    model = CASE WHEN jobs.model = 'unknown' THEN excluded.model ELSE jobs.model END,
    parameters = CASE WHEN jobs.parameters = '{{}}' THEN excluded.parameters ELSE jobs.parameters END,
    inputs = CASE WHEN jobs.inputs = '{{}}' THEN excluded.inputs ELSE jobs.inputs END,
    request_key = COALESCE(jobs.request_key, excluded.request_key),
    source_stem = COALESCE(jobs.source_stem, excluded.source_stem),
    upscale_factor = COALESCE(jobs.upscale_factor, excluded.upscale_factor),
    output_dir = COALESCE(jobs.output_dir, excluded.output_dir),
    status = CASE
        WHEN jobs.status IN {TERMINAL} THEN jobs.status
        WHEN excluded.status IN {TERMINAL} THEN excluded.status
        ELSE jobs.status END,
    progress = CASE
        WHEN jobs.status IN {TERMINAL} THEN jobs.progress
        WHEN excluded.status IN {TERMINAL} THEN excluded.progress
        ELSE jobs.progress END,
    cost = COALESCE(jobs.cost, excluded.cost),
    updated_at = excluded.updated_at,
    finished_at = COALESCE(jobs.finished_at, excluded.finished_at)
"""  # noqa: S608 (built from constants only)

# Poll answers from several threads or processes can land out of order. Once a job is terminal, an
# answer with another status is an older one arriving late: the WHERE clause drops it whole.
OBSERVE_JOB = f"""
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
WHERE jobs.status NOT IN {TERMINAL} OR jobs.status = excluded.status
"""  # noqa: S608 (built from constants only)

# A failed or canceled job is never reused: asking again is how the caller retries it.
FIND_REUSABLE = (
    "SELECT * FROM jobs WHERE request_key = ? AND ("  # noqa: S608 (built from constants only)
    f"status NOT IN {TERMINAL} "
    f"OR (status = '{SUCCESS}' AND finished_at >= ?)) "
    "ORDER BY created_at DESC, job_id DESC LIMIT 1"
)

# Jobs this server submitted (a request key is only ever written by `record_submission`): a job only
# looked up by id was submitted elsewhere, and its created_at is when it was first seen, not when it was
# billed.
SPENDING_SINCE = (
    "SELECT job_id, created_at, cost FROM jobs "
    "WHERE created_at >= ? AND cost IS NOT NULL AND request_key IS NOT NULL "
    "ORDER BY created_at, job_id"
)

# A membership is kept once (the first added_at); a job already in the batch is left as it is.
ADD_TO_BATCH = "INSERT OR IGNORE INTO batch_jobs (batch_id, job_id, added_at) VALUES (?, ?, ?)"

# The primary key (batch_id, job_id) is the index this looks a batch up by.
JOBS_IN_BATCH = (
    "SELECT jobs.* FROM batch_jobs JOIN jobs ON jobs.job_id = batch_jobs.job_id "
    "WHERE batch_jobs.batch_id = ? ORDER BY jobs.created_at, jobs.job_id"
)

JOBS_IN_FLIGHT = (
    "SELECT * FROM jobs "  # noqa: S608 (built from constants only)
    f"WHERE status NOT IN {TERMINAL} "
    "ORDER BY created_at DESC, job_id DESC"
)


def statements(script: str) -> list[str]:
    """Split a script into whole statements (sqlite3 decides, so a ';' inside a string is safe)."""
    found: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\n;"):
                found.append(pending.strip())
            pending = ""
    if pending.strip(" \t\n;"):
        raise ValueError(f"unfinished SQL statement in a migration: {pending.strip()!r}")
    return found
