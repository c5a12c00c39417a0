"""The history database's schema: a list of migration steps applied in order.

`PRAGMA user_version` holds how many steps a database has had; opening one runs the steps
it lacks, each in its own transaction. Never edit a step that has shipped: append one.
"""

from __future__ import annotations

import sqlite3

# Step n (1-based) brings a database from version n-1 to version n.
MIGRATIONS: list[tuple[str, ...]] = [
    # v1: suggestions and model events.
    (
        """CREATE TABLE suggestions (
            id TEXT PRIMARY KEY,        -- the id the client echoes back on accept
            created REAL NOT NULL,      -- unix time the suggestion was answered (shown)
            language TEXT NOT NULL DEFAULT '',
            backend TEXT NOT NULL DEFAULT '',
            model TEXT NOT NULL DEFAULT '',
            trigger TEXT NOT NULL DEFAULT '',  -- automatic | invoked | completion-item
            source TEXT NOT NULL DEFAULT '',   -- model | cache | templates
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            tokens INTEGER NOT NULL DEFAULT 0,
            context_ms REAL NOT NULL DEFAULT 0,
            prefill_ms REAL NOT NULL DEFAULT 0,
            decode_ms REAL NOT NULL DEFAULT 0,
            total_ms REAL NOT NULL DEFAULT 0,
            chars INTEGER NOT NULL DEFAULT 0,
            outcome TEXT NOT NULL DEFAULT 'shown',  -- shown | accepted | partial | rejected
            accepted_chars INTEGER NOT NULL DEFAULT 0,
            decided REAL,               -- unix time of the outcome
            text TEXT                   -- only with historyKeepText
        )""",
        "CREATE INDEX suggestions_created ON suggestions (created)",
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            created REAL NOT NULL,
            kind TEXT NOT NULL,         -- load | fallback | load-failed | model-error | hang
            backend TEXT NOT NULL DEFAULT '',
            model TEXT NOT NULL DEFAULT '',
            detail TEXT NOT NULL DEFAULT '',
            seconds REAL
        )""",
    ),
    # v2: why templates answered, how a generation ended, what the prompt cache saved.
    (
        "ALTER TABLE suggestions ADD COLUMN fallback_reason TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE suggestions ADD COLUMN finish_reason TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE suggestions ADD COLUMN cached_tokens INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX events_created ON events (created)",
    ),
    # v3: is accepted code still there 30 s, 2 min, 10 min later (numbers only, no text).
    (
        """CREATE TABLE retention (
            id INTEGER PRIMARY KEY,
            created REAL NOT NULL,      -- unix time of the check
            suggestion TEXT NOT NULL,   -- suggestions.id
            checkpoint TEXT NOT NULL,   -- 30s | 2m | 10m
            after_s REAL NOT NULL,      -- seconds after the accept
            state TEXT NOT NULL,        -- checked | closed (the document was not open)
            score REAL,                 -- 1 - edit distance / accepted chars (checked)
            kept INTEGER,               -- 0 | 1 (checked)
            baseline REAL               -- the score of the text deleted (see retention.py)
        )""",
        "CREATE INDEX retention_created ON retention (created)",
    ),
]

SCHEMA_VERSION = len(MIGRATIONS)


class NewerSchema(Exception):
    """The database was written by a newer companion: it is left alone."""


def version_of(connection: sqlite3.Connection) -> int:
    row = connection.execute("PRAGMA user_version").fetchone()
    return int(row[0]) if row else 0


def migrate(connection: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Apply the missing steps up to `target`; returns the version before.

    The connection must be in autocommit mode (`isolation_level=None`): each step runs in
    its own explicit transaction, so a crash leaves a database at a consistent version."""
    before = version_of(connection)
    if before > SCHEMA_VERSION:
        raise NewerSchema(f"schema v{before} is newer than this companion's v{SCHEMA_VERSION}")
    for version in range(before + 1, target + 1):
        connection.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[version - 1]:
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {version}")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
    return before
