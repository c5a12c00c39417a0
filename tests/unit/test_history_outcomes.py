"""Outcomes of shown suggestions (Continue's rule) and the server-side recorder."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from companion.engine.completer import Suggestion
from companion.history.outcomes import OutcomeTracker
from companion.history.recorder import History


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_accept_marks_accepted_and_a_repeat_changes_nothing() -> None:
    clock = Clock()
    tracker = OutcomeTracker(clock)
    tracker.shown("a", "file:///x.py", "invoked", 20)
    decision = tracker.accepted("a")
    assert decision is not None and (decision.outcome, decision.previous) == ("accepted", "shown")
    assert decision.accepted_chars == 20
    again = tracker.accepted("a")
    assert again is not None and again.outcome == again.previous == "accepted"
    assert tracker.accepted("never-shown") is None


def test_a_newer_suggestion_rejects_one_seen_for_250_ms_or_more() -> None:
    clock = Clock()
    tracker = OutcomeTracker(clock)
    tracker.shown("a", "file:///x.py", "automatic", 10)
    clock.now += 0.1
    assert tracker.shown("b", "file:///x.py", "automatic", 10) == []  # seen too briefly
    assert tracker.outcome("a") == "shown"
    clock.now += 0.25
    decisions = tracker.shown("c", "file:///x.py", "automatic", 10)
    assert [(d.id, d.outcome) for d in decisions] == [("b", "rejected")]
    # Another document, or the completion list, does not replace ghost text.
    clock.now += 1
    assert tracker.shown("d", "file:///other.py", "automatic", 10) == []
    assert tracker.shown("e", "file:///x.py", "completion-item", 10) == []
    assert tracker.outcome("c") == "shown"


def test_ten_seconds_without_accept_is_a_rejection() -> None:
    clock = Clock()
    tracker = OutcomeTracker(clock)
    tracker.shown("a", "file:///x.py", "invoked", 10)
    clock.now += 9.9
    assert tracker.expire() == []
    clock.now += 0.1
    assert [(d.id, d.outcome) for d in tracker.expire()] == [("a", "rejected")]
    assert tracker.expire() == []  # decided once


def test_partial_accepts_grow_survive_expiry_and_upgrade_to_full() -> None:
    clock = Clock()
    tracker = OutcomeTracker(clock)
    tracker.shown("a", "file:///x.py", "invoked", 30)
    first = tracker.accepted("a", 5)
    assert first is not None and (first.outcome, first.accepted_chars) == ("partial", 5)
    second = tracker.accepted("a", 3)  # a smaller count never shrinks what was kept
    assert second is not None and second.accepted_chars == 5
    clock.now += 11
    assert tracker.expire() == []
    assert tracker.outcome("a") == "partial"
    full = tracker.accepted("a", 30)
    assert full is not None and (full.outcome, full.previous) == ("accepted", "partial")


def test_a_late_accept_overrides_a_rejection() -> None:
    clock = Clock()
    tracker = OutcomeTracker(clock)
    tracker.shown("a", "file:///x.py", "invoked", 10)
    clock.now += 12
    tracker.expire()
    decision = tracker.accepted("a")
    assert decision is not None and (decision.outcome, decision.previous) == (
        "accepted", "rejected")


def suggestion(text: str = "return 42\n", source: str = "model") -> Suggestion:
    return Suggestion(text, source, 120.0, tokens=4, prompt_tokens=90, context_ms=2.0,
                      prefill_ms=50.0, decode_ms=60.0)


def test_recorder_counts_transitions_and_the_acceptance_rate(tmp_path: Path) -> None:
    clock = Clock()
    history = History(clock=clock, directory=tmp_path)
    history.configure(enabled=False, keep_text=False)
    a = history.shown("file:///x.py", suggestion(), "invoked")
    clock.now += 1
    b = history.shown("file:///x.py", suggestion(), "invoked")  # rejects a
    history.accepted(b, 3)
    assert history.summary() == {"shown": 2, "accepted": 0, "partiallyAccepted": 1,
                                 "rejected": 1, "acceptanceRate": 0.5}
    history.accepted(a)  # late accept: rejected → accepted
    history.accepted(b)  # partial → accepted
    assert history.summary() == {"shown": 2, "accepted": 2, "partiallyAccepted": 0,
                                 "rejected": 0, "acceptanceRate": 1.0}
    assert history.summary("completion")["acceptanceRate"] is None
    assert not (tmp_path / "history.sqlite3").exists()  # disabled: no file at all


def stored(path: Path) -> list[sqlite3.Row]:
    connection = sqlite3.connect(path)
    connection.row_factory = sqlite3.Row
    try:
        return connection.execute("SELECT * FROM suggestions ORDER BY rowid").fetchall()
    finally:
        connection.close()


def test_recorder_writes_rows_and_keeps_text_only_when_asked(tmp_path: Path) -> None:
    history = History(directory=tmp_path)
    history.configure(enabled=True, keep_text=False)
    secret = "password = 'hunter2'\n"
    first = history.shown("file:///x.py", suggestion(secret), "automatic", "python",
                          "llamacpp", "smollm2")
    history.accepted(first)
    history.configure(enabled=True, keep_text=True)
    history.shown("file:///y.py", suggestion("kept()\n", source="templates"), "invoked",
                  "python", "templates", "", fallback_reason="model loading")
    history.event("load", "llamacpp", "smollm2", "ready: fits", 1.5)
    store = history.store
    assert store is not None and store.flush()
    history.close()
    rows = stored(tmp_path / "history.sqlite3")
    assert [(r["outcome"], r["text"]) for r in rows] == [("accepted", None),
                                                          ("shown", "kept()\n")]
    assert rows[0]["accepted_chars"] == len(secret)
    assert (rows[0]["language"], rows[0]["backend"], rows[0]["model"], rows[0]["trigger"]) == (
        "python", "llamacpp", "smollm2", "automatic")
    assert (rows[0]["prefill_ms"], rows[0]["decode_ms"], rows[0]["total_ms"]) == (50, 60, 120)
    assert rows[1]["fallback_reason"] == "model loading"
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"hunter2" not in raw


def test_turning_history_off_stops_the_writer(tmp_path: Path) -> None:
    history = History(directory=tmp_path)
    history.configure(enabled=True, keep_text=False)
    store = history.store
    assert store is not None
    history.configure(enabled=False, keep_text=False)
    assert history.store is None
    store.close(timeout=5)
    history.shown("file:///x.py", suggestion(), "invoked")
    assert store.written == 0 and store.pending == 0
