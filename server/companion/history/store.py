"""The history database and its one writer thread.

Callers never wait for the disk: `add_suggestion`, `set_outcome`, `add_event` and
`add_retention` put a row on a bounded queue and return; a daemon thread writes batches in
one transaction each and prunes old rows. Whatever goes wrong there (a full disk, a
locked or read-only database, a directory that cannot be created) costs one log line for
the life of the store, and the rows are counted as failed; a corrupt file is moved aside
once, with one warning, and a fresh database takes its place.

Over ~400 lines on purpose: the writer thread, its queue and the recovery from a corrupt
or unwritable file share one connection and one lock; split apart, each piece would have
to reach into the others' state.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import Any

from companion.history.schema import NewerSchema, migrate

log = logging.getLogger(__name__)

DATABASE_NAME = "history.sqlite3"
MAX_SUGGESTIONS = 50_000  # ~10 MB; months of typing for one person
MAX_EVENTS = 5_000
MAX_RETENTION = 3 * MAX_SUGGESTIONS  # three checks per accepted suggestion at most
MAX_AGE_S = 90 * 86400.0
QUEUE_SIZE = 4096  # rows waiting for the writer; past this they are dropped (and counted)
BATCH_SIZE = 256  # rows per transaction at most
PRUNE_EVERY = 1000  # rows written between two prunes (and once at open)
REOPEN_AFTER_S = 30.0  # after a failed open, how long the writer waits to try again
BUSY_TIMEOUT_S = 2.0  # how long one transaction waits for a lock held by another process


def data_dir() -> Path:
    """Where history lives: $COMPANION_DATA_DIR, else the platform's user data dir."""
    override = os.environ.get("COMPANION_DATA_DIR")
    if override:
        return Path(override)
    from platformdirs import user_data_dir

    return Path(user_data_dir("companion"))


def database_path(directory: Path | None = None) -> Path:
    return (directory or data_dir()) / DATABASE_NAME


@dataclass(frozen=True)
class SuggestionRow:
    """One suggestion that was shown. `text` is None unless historyKeepText is on."""

    id: str
    created: float
    language: str
    backend: str
    model: str
    trigger: str
    source: str
    prompt_tokens: int
    tokens: int
    cached_tokens: int
    context_ms: float
    prefill_ms: float
    decode_ms: float
    total_ms: float
    chars: int
    finish_reason: str = ""
    fallback_reason: str = ""
    text: str | None = None


@dataclass(frozen=True)
class OutcomeUpdate:
    id: str
    outcome: str  # accepted | partial | rejected | shown (seen too briefly to judge)
    accepted_chars: int
    decided: float


@dataclass(frozen=True)
class EventRow:
    created: float
    kind: str  # load | fallback | load-failed | model-error | hang
    backend: str = ""
    model: str = ""
    detail: str = ""
    seconds: float | None = None


@dataclass(frozen=True)
class RetentionRow:
    """One retention check of an accepted suggestion (numbers only)."""

    created: float
    suggestion: str
    checkpoint: str
    after_s: float
    state: str  # checked | closed
    score: float | None = None
    kept: bool | None = None
    baseline: float | None = None


_SUGGESTION_COLUMNS = [f.name for f in fields(SuggestionRow)]
INSERT_SUGGESTION = (
    f"INSERT OR REPLACE INTO suggestions ({', '.join(_SUGGESTION_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _SUGGESTION_COLUMNS)})"
)
UPDATE_OUTCOME = "UPDATE suggestions SET outcome = ?, accepted_chars = ?, decided = ? WHERE id = ?"
INSERT_EVENT = (
    "INSERT INTO events (created, kind, backend, model, detail, seconds) VALUES (?, ?, ?, ?, ?, ?)"
)

_RETENTION_COLUMNS = [f.name for f in fields(RetentionRow)]
INSERT_RETENTION = (
    f"INSERT INTO retention ({', '.join(_RETENTION_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _RETENTION_COLUMNS)})"
)

_CORRUPT_CODES = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB


def is_corrupt(error: BaseException) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return (int(code) & 0xFF) in _CORRUPT_CODES
    text = str(error).lower()
    return "malformed" in text or "not a database" in text


def connect(path: Path, timeout: float = BUSY_TIMEOUT_S) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL journal."""
    connection = sqlite3.connect(path, timeout=timeout, isolation_level=None,
                                 check_same_thread=False)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: never corrupt
        check = connection.execute("PRAGMA quick_check").fetchone()
        if check is None or check[0] != "ok":
            raise sqlite3.DatabaseError(f"database disk image is malformed ({check})")
    except BaseException:
        connection.close()
        raise
    return connection


def move_aside(path: Path) -> Path:
    """Rename a corrupt database (and its WAL) out of the way; returns the new name."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    counter = 1
    while target.exists():
        counter += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{counter}")
    path.rename(target)
    wal = path.with_name(path.name + "-wal")
    if wal.exists():
        with contextlib.suppress(OSError):
            wal.rename(target.with_name(target.name + "-wal"))
    with contextlib.suppress(OSError):
        path.with_name(path.name + "-shm").unlink()
    return target


def open_database(path: Path, warn: Callable[[str], Any] = log.warning,
                  timeout: float = BUSY_TIMEOUT_S) -> sqlite3.Connection:
    """Open (creating and migrating as needed) the database at `path`; a corrupt file is
    moved aside with one `warn` and a fresh database created. Raises sqlite3.Error or
    OSError when the file cannot be opened at all, NewerSchema for a newer database."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    created = not path.exists()
    try:
        connection = connect(path, timeout)
    except sqlite3.DatabaseError as error:
        if not is_corrupt(error):
            raise
        aside = move_aside(path)
        warn(f"history database {path} was corrupt ({error}): moved aside to {aside.name}; "
             "a fresh one was started")
        created = True
        connection = connect(path, timeout)
    if created:
        with contextlib.suppress(OSError):  # history is the user's alone
            os.chmod(path, 0o600)
    try:
        migrate(connection)
    except BaseException:
        connection.close()
        raise
    return connection


def prune(connection: sqlite3.Connection, max_suggestions: int = MAX_SUGGESTIONS,
          max_age_s: float = MAX_AGE_S, max_events: int = MAX_EVENTS,
          now: float | None = None, max_retention: int = MAX_RETENTION) -> int:
    """Delete rows past the age limit, then all but the newest `max_*`; returns how many."""
    cutoff = (now if now is not None else time.time()) - max_age_s
    removed = 0
    connection.execute("BEGIN IMMEDIATE")
    try:
        for table, keep in (("suggestions", max_suggestions), ("events", max_events),
                            ("retention", max_retention)):
            removed += connection.execute(
                f"DELETE FROM {table} WHERE created < ?", (cutoff,)).rowcount
            removed += connection.execute(
                f"DELETE FROM {table} WHERE rowid <= "
                f"(SELECT rowid FROM {table} ORDER BY rowid DESC LIMIT 1 OFFSET ?)",
                (keep,),
            ).rowcount
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    return removed


_Write = SuggestionRow | OutcomeUpdate | EventRow | RetentionRow
_STOP = object()


class HistoryStore:
    """The database file plus its writer thread. Thread-safe; no method waits on the disk
    except `flush` and `close`, which wait at most their timeout."""

    def __init__(
        self,
        path: Path,
        warn: Callable[[str], Any] = log.warning,
        max_suggestions: int = MAX_SUGGESTIONS,
        max_age_s: float = MAX_AGE_S,
        max_events: int = MAX_EVENTS,
        queue_size: int = QUEUE_SIZE,
        prune_every: int = PRUNE_EVERY,
        busy_timeout_s: float = BUSY_TIMEOUT_S,
    ) -> None:
        self.path = path
        self.busy_timeout_s = busy_timeout_s
        self.max_suggestions = max_suggestions
        self.max_age_s = max_age_s
        self.max_events = max_events
        self.prune_every = prune_every
        self._warn = warn
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._connection: sqlite3.Connection | None = None
        self._retry_open_at = 0.0
        self._since_prune = 0
        self._trouble_logged = False
        self._counts_lock = threading.Lock()
        self.written = 0
        self.dropped = 0  # the queue was full
        self.failed = 0  # the database refused them
        self.pruned = 0
        self.last_error = ""
        self.disabled = ""  # why the store stopped writing for good (a newer schema)
        self._thread = threading.Thread(target=self._run, name="companion-history",
                                        daemon=True)
        self._thread.start()

    # -- the caller's side: never waits ----------------------------------------------------

    def _put(self, item: object) -> bool:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            with self._counts_lock:
                self.dropped += 1
            self._trouble(f"the writer is behind ({self.last_error or 'slow disk'}); rows "
                          "are dropped")
            return False
        return True

    def add_suggestion(self, row: SuggestionRow) -> bool:
        return self._put(row)

    def set_outcome(self, update: OutcomeUpdate) -> bool:
        return self._put(update)

    def add_event(self, row: EventRow) -> bool:
        return self._put(row)

    def add_retention(self, row: RetentionRow) -> bool:
        return self._put(row)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued before this call is written (or failed)."""
        done = threading.Event()
        try:
            self._queue.put(done, timeout=timeout)
        except queue.Full:
            return False
        return done.wait(timeout)

    def close(self, timeout: float = 2.0) -> None:
        """Write what is queued (waiting at most `timeout`), then stop the thread."""
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=timeout)
        self._thread.join(timeout)

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def info(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "written": self.written,
            "pending": self.pending,
            "dropped": self.dropped,
            "failed": self.failed,
            "lastError": self.last_error,
        }

    # -- the writer thread -----------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._open()
        except Exception as error:
            self._failed(error, 0)
        while True:
            batch = [self._queue.get()]
            while len(batch) < BATCH_SIZE:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            writes = [item for item in batch if isinstance(item, _Write)]
            if writes:
                try:
                    self._write(writes)
                except Exception as error:  # a bug here must not stop the writer for good
                    self._failed(error, len(writes))
            for item in batch:
                if isinstance(item, threading.Event):
                    item.set()
            if any(item is _STOP for item in batch):
                if self._connection is not None:
                    with contextlib.suppress(sqlite3.Error):
                        self._connection.close()
                    self._connection = None
                return

    def _trouble(self, what: str) -> None:
        """The one log line a store spends on write trouble, whatever its kind and count."""
        with self._counts_lock:
            if self._trouble_logged:
                return
            self._trouble_logged = True
        log.warning("history: %s (%s); completions are unaffected, history is skipped while "
                    "this lasts (not logged again)", what, self.path)

    def _failed(self, error: BaseException, rows: int) -> None:
        self.failed += rows
        self.last_error = f"{error.__class__.__name__}: {error}"
        self._trouble(f"cannot write: {error}")

    def _open(self) -> sqlite3.Connection | None:
        if self._connection is not None or self.disabled:
            return self._connection
        if time.monotonic() < self._retry_open_at:
            return None
        try:
            self._connection = open_database(self.path, self._warn, self.busy_timeout_s)
            self._prune()
        except NewerSchema as error:
            self.disabled = str(error)
            self._failed(error, 0)
        except (sqlite3.Error, OSError) as error:
            self._retry_open_at = time.monotonic() + REOPEN_AFTER_S
            self._failed(error, 0)
        return self._connection

    def _write(self, writes: list[_Write], retry: bool = True) -> None:
        connection = self._open()
        if connection is None:
            self.failed += len(writes)
            return
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                for item in writes:
                    if isinstance(item, SuggestionRow):
                        connection.execute(INSERT_SUGGESTION, astuple(item))
                    elif isinstance(item, OutcomeUpdate):
                        connection.execute(UPDATE_OUTCOME, (item.outcome, item.accepted_chars,
                                                            item.decided, item.id))
                    elif isinstance(item, RetentionRow):
                        connection.execute(INSERT_RETENTION, astuple(item))
                    else:
                        connection.execute(INSERT_EVENT, (item.created, item.kind, item.backend,
                                                          item.model, item.detail, item.seconds))
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
        except sqlite3.Error as error:
            if is_corrupt(error) and retry:
                self._reset_corrupt(error)
                self._write(writes, retry=False)
            else:
                self._failed(error, len(writes))
            return
        self.written += len(writes)
        self._since_prune += len(writes)
        if self._since_prune >= self.prune_every:
            self._prune()

    def _reset_corrupt(self, error: BaseException) -> None:
        """The file went bad while open: move it aside and start a fresh one."""
        if self._connection is not None:
            with contextlib.suppress(sqlite3.Error):
                self._connection.close()
            self._connection = None
        try:
            aside = move_aside(self.path)
        except OSError as rename_error:
            self._failed(rename_error, 0)
            return
        self._warn(f"history database {self.path} became corrupt ({error}): moved aside to "
                   f"{aside.name}; a fresh one was started")

    def _prune(self) -> None:
        self._since_prune = 0
        if self._connection is None:
            return
        try:
            self.pruned += prune(self._connection, self.max_suggestions, self.max_age_s,
                                 self.max_events)
        except sqlite3.Error as error:
            self._failed(error, 0)


def open_for_reading(path: Path) -> sqlite3.Connection | None:
    """The database for `companion stats` (migrated to the current schema), or None when
    there is none yet. A corrupt file is moved aside, as the server would."""
    if not path.exists():
        return None
    return open_database(path)
