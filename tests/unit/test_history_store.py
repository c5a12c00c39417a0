"""The history store: concurrent writers, pruning, migration, corruption, and a writer
that never makes its caller wait."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import astuple
from pathlib import Path

import pytest

from companion.history import store as store_module
from companion.history.schema import MIGRATIONS, SCHEMA_VERSION, migrate, version_of
from companion.history.store import (
    EventRow,
    HistoryStore,
    OutcomeUpdate,
    RetentionRow,
    SuggestionRow,
    open_database,
    prune,
)


def row(suggestion_id: str, created: float | None = None, **fields: object) -> SuggestionRow:
    values: dict[str, object] = {
        "id": suggestion_id, "created": time.time() if created is None else created,
        "language": "python", "backend": "llamacpp", "model": "smollm2", "trigger": "invoked",
        "source": "model", "prompt_tokens": 120, "tokens": 8, "cached_tokens": 0,
        "context_ms": 1.5, "prefill_ms": 40.0, "decode_ms": 60.0, "total_ms": 105.0,
        "chars": 12,
    }
    values.update(fields)
    return SuggestionRow(**values)  # type: ignore[arg-type]


def rows_in(path: Path, table: str = "suggestions") -> list[sqlite3.Row]:
    connection = sqlite3.connect(path)
    connection.row_factory = sqlite3.Row
    try:
        return connection.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
    finally:
        connection.close()


def store_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "companion.history.store" and r.levelno >= logging.WARNING]


def test_many_threads_write_concurrently_without_losing_a_row(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    store = HistoryStore(path, queue_size=100_000)
    threads, per_thread = 16, 400

    def write(worker: int) -> None:
        for i in range(per_thread):
            suggestion_id = f"{worker}-{i}"
            store.add_suggestion(row(suggestion_id))
            if i % 2 == 0:
                store.set_outcome(OutcomeUpdate(suggestion_id, "accepted", 12, time.time()))
            if i % 100 == 0:
                store.add_event(EventRow(time.time(), "load", "llamacpp", "m", f"w{worker}"))

    workers = [threading.Thread(target=write, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert store.flush(timeout=30)
    store.close()
    assert store.dropped == 0 and store.failed == 0
    found = rows_in(path)
    assert len(found) == threads * per_thread
    assert sum(r["outcome"] == "accepted" for r in found) == threads * per_thread // 2
    assert len(rows_in(path, "events")) == threads * (per_thread // 100)
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    connection.close()


def test_prune_keeps_the_newest_rows_and_drops_old_ones(tmp_path: Path) -> None:
    connection = open_database(tmp_path / "history.sqlite3")
    now = 1_000_000_000.0
    connection.execute("BEGIN")
    for i in range(300):
        connection.execute(store_module.INSERT_SUGGESTION,
                           astuple(row(f"s{i}", created=now - 300 + i)))
    for i in range(20):  # older than the age limit, whatever their number
        connection.execute(store_module.INSERT_EVENT, (now - 10_000 + i, "load", "", "", "", None))
    connection.execute("COMMIT")
    removed = prune(connection, max_suggestions=100, max_age_s=5_000, max_events=50, now=now)
    ids = [r[0] for r in connection.execute("SELECT id FROM suggestions ORDER BY rowid")]
    assert ids == [f"s{i}" for i in range(200, 300)]
    assert connection.execute("SELECT count(*) FROM events").fetchone()[0] == 0
    assert removed == 200 + 20
    # By age: everything older than max_age_s goes.
    prune(connection, max_suggestions=1000, max_age_s=50, now=now)
    assert connection.execute("SELECT count(*) FROM suggestions").fetchone()[0] == 50
    connection.close()


def test_the_writer_prunes_as_it_goes(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    store = HistoryStore(path, max_suggestions=50, prune_every=20)
    for i in range(400):
        store.add_suggestion(row(f"s{i:03}"))
        if i % 40 == 0:
            assert store.flush()
    assert store.flush()
    store.close()
    ids = [r["id"] for r in rows_in(path)]
    assert len(ids) <= 50 + 20 + store_module.BATCH_SIZE
    assert "s000" not in ids and "s399" in ids
    assert store.pruned >= 400 - len(ids)


def test_a_v1_database_is_migrated_to_the_current_schema(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    old = sqlite3.connect(path, isolation_level=None)
    migrate(old, target=1)
    assert version_of(old) == 1
    old.execute(
        "INSERT INTO suggestions (id, created, language, backend, model, trigger, source, "
        "tokens, total_ms, chars, outcome, accepted_chars) "
        "VALUES ('old', ?, 'python', 'llamacpp', 'm', 'invoked', 'model', 5, 99, 10, "
        "'accepted', 10)", (time.time() - 3600,)
    )
    old.close()

    connection = open_database(path)
    assert version_of(connection) == SCHEMA_VERSION == len(MIGRATIONS) >= 2
    columns = {r[1] for r in connection.execute("PRAGMA table_info(suggestions)")}
    assert {"fallback_reason", "finish_reason", "cached_tokens"} <= columns
    kept = connection.execute(
        "SELECT outcome, accepted_chars, fallback_reason FROM suggestions WHERE id = 'old'"
    ).fetchone()
    assert kept == ("accepted", 10, "")
    indexes = {r[1] for r in connection.execute("PRAGMA index_list(events)")}
    assert "events_created" in indexes
    connection.close()
    # The store writes v2 rows into the migrated file.
    store = HistoryStore(path)
    store.add_suggestion(row("new", fallback_reason="model loading", source="templates"))
    assert store.flush()
    store.close()
    assert [r["id"] for r in rows_in(path)] == ["old", "new"]


def test_a_newer_database_is_left_alone(tmp_path: Path, caplog: pytest.LogCaptureFixture
                                         ) -> None:
    path = tmp_path / "history.sqlite3"
    newer = sqlite3.connect(path, isolation_level=None)
    migrate(newer)
    newer.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    newer.close()
    with caplog.at_level(logging.WARNING):
        store = HistoryStore(path)
        for i in range(10):
            store.add_suggestion(row(f"s{i}"))
        assert store.flush()
        store.close()
    assert store.disabled and store.written == 0 and store.failed == 10
    assert len(store_warnings(caplog)) == 1
    assert rows_in(path) == []
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 5
    check.close()


def test_a_corrupt_file_is_moved_aside_and_a_fresh_one_started(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    garbage = b"this is not a database at all\n" * 200
    path.write_bytes(garbage)
    warnings: list[str] = []
    store = HistoryStore(path, warn=warnings.append)
    store.add_suggestion(row("after"))
    store.add_suggestion(row("again"))
    assert store.flush()
    store.close()
    assert len(warnings) == 1 and "corrupt" in warnings[0]
    aside = list(tmp_path.glob("history.sqlite3.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == garbage
    assert [r["id"] for r in rows_in(path)] == ["after", "again"]


def test_a_damaged_page_counts_as_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    store = HistoryStore(path)
    for i in range(500):
        store.add_suggestion(row(f"s{i}", text="x" * 200))
    assert store.flush()
    store.close()
    data = bytearray(path.read_bytes())
    page = 4096
    data[page * 3: page * 6] = b"\xff" * (page * 3)  # smash pages in the middle
    path.write_bytes(bytes(data))
    warnings: list[str] = []
    store = HistoryStore(path, warn=warnings.append)
    store.add_suggestion(row("fresh"))
    assert store.flush()
    store.close()
    assert len(warnings) == 1
    assert [r["id"] for r in rows_in(path)] == ["fresh"]


def test_a_locked_database_never_blocks_the_caller(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "history.sqlite3"
    open_database(path).close()
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    with caplog.at_level(logging.WARNING):
        store = HistoryStore(path, busy_timeout_s=0.3, queue_size=1000)
        # The caller writes 5000 rows while the lock is held: if a write waited on the
        # database, this thread would never finish before the lock is released below.
        caller = threading.Thread(
            target=lambda: [store.add_suggestion(row(f"s{i}")) for i in range(5000)])
        caller.start()
        caller.join(timeout=60)
        returned_under_the_lock = not caller.is_alive()
        deadline = time.monotonic() + 60
        while store.failed == 0 and time.monotonic() < deadline:  # the writer meets the lock
            time.sleep(0.05)
        assert store.failed > 0, "the writer met the lock"
        locker.execute("ROLLBACK")
        locker.close()
        store.add_suggestion(row("after-unlock"))
        assert store.flush(timeout=30)
        store.close()
    caller.join()
    assert returned_under_the_lock, "a write waited on the locked database"
    assert store.dropped >= 5000 - 1000 - store_module.BATCH_SIZE
    assert len(store_warnings(caplog)) == 1, store_warnings(caplog)
    assert "after-unlock" in [r["id"] for r in rows_in(path)]


def test_an_unwritable_directory_never_blocks_the_caller(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    path = blocker / "sub" / "history.sqlite3"
    with caplog.at_level(logging.WARNING):
        store = HistoryStore(path)
        # Every call returns (nothing raises at the caller); the rows are counted, not lost
        # silently. That a write never waits on the disk is the locked-database test's.
        for i in range(2000):
            store.add_suggestion(row(f"s{i}"))
            store.add_event(EventRow(time.time(), "load"))
        assert store.flush(timeout=30)
        store.close()
    assert store.written == 0 and store.failed + store.dropped == 4000
    assert len(store_warnings(caplog)) == 1
    assert store.last_error


def test_a_full_disk_costs_one_log_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real_connect = store_module.connect

    def small_disk(path: Path, timeout: float = 2.0) -> sqlite3.Connection:
        connection = real_connect(path, timeout)
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
        connection.execute(f"PRAGMA max_page_count = {pages + 12}")
        return connection

    monkeypatch.setattr(store_module, "connect", small_disk)
    path = tmp_path / "history.sqlite3"
    with caplog.at_level(logging.WARNING):
        store = HistoryStore(path, queue_size=100_000)
        for i in range(3000):
            store.add_suggestion(row(f"s{i}", text="y" * 300))
            if i % 300 == 0:
                store.flush()
        assert store.flush(timeout=30)
        store.close()
    assert store.failed > 0 and "full" in store.last_error
    assert len(store_warnings(caplog)) == 1, store_warnings(caplog)


def test_a_v2_database_gets_the_retention_table_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    old = sqlite3.connect(path, isolation_level=None)
    migrate(old, target=2)
    old.execute(INSERT_SUGGESTION_V2, astuple(row("v2"))[:-1])
    old.close()
    connection = open_database(path)
    assert version_of(connection) == SCHEMA_VERSION >= 3
    columns = [r[1] for r in connection.execute("PRAGMA table_info(retention)")]
    assert columns == ["id", "created", "suggestion", "checkpoint", "after_s", "state",
                       "score", "kept", "baseline"]
    assert "text" not in columns  # numbers only
    assert connection.execute("SELECT id FROM suggestions").fetchall() == [("v2",)]
    connection.close()


INSERT_SUGGESTION_V2 = (
    "INSERT INTO suggestions (id, created, language, backend, model, trigger, source, "
    "prompt_tokens, tokens, cached_tokens, context_ms, prefill_ms, decode_ms, total_ms, "
    "chars, finish_reason, fallback_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
    "?, ?, ?)"
)


def test_retention_rows_are_written_and_pruned(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    store = HistoryStore(path)
    now = time.time()
    store.add_suggestion(row("s1"))
    store.add_retention(RetentionRow(now, "s1", "30s", 30.0, "checked", 0.9, True, 0.1))
    store.add_retention(RetentionRow(now, "s1", "2m", 120.0, "closed"))
    store.add_retention(RetentionRow(now - 10_000, "s0", "10m", 600.0, "checked", 0.2, False,
                                     0.0))
    assert store.flush()
    store.close()
    rows = [tuple(r)[2:] for r in rows_in(path, "retention")]
    assert rows == [("s1", "30s", 30.0, "checked", 0.9, 1, 0.1),
                    ("s1", "2m", 120.0, "closed", None, None, None),
                    ("s0", "10m", 600.0, "checked", 0.2, 0, 0.0)]
    connection = open_database(path)
    prune(connection, max_age_s=5_000, now=now)
    assert [r[0] for r in connection.execute("SELECT suggestion FROM retention")] == ["s1", "s1"]
    prune(connection, max_retention=1, now=now)
    assert [r[0] for r in connection.execute("SELECT checkpoint FROM retention")] == ["2m"]
    connection.close()
