"""Retention of accepted suggestions: the edit distance, the span matching on real code
edits (lines inserted above, partial edits, a rename inside the accepted text, deletion),
the kept threshold, and the tracker's timers (injected delays, closed documents, bounds)."""

from __future__ import annotations

import asyncio
import random
import re
import threading
from collections.abc import Callable

import pytest

from companion.history import retention
from companion.history.retention import (
    CHECKED,
    CLOSED,
    DEFAULT_DELAYS_S,
    KEPT_AT,
    Check,
    RetentionTracker,
    checkpoint_label,
    parse_delays,
)
from companion.history.text_match import edit_distance, match_at, retention_score

URI = "file:///work/project/orders.py"

# A real-looking module; the suggestion is the body line of `total` (█ marks where the
# ghost text was shown).
BEFORE = '''"""Orders and their totals."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Line:
    sku: str
    quantity: int
    unit_price: float

    def amount(self) -> float:
        return self.quantity * self.unit_price


@dataclass
class Order:
    customer: str
    lines: list[Line] = field(default_factory=list)

    def add(self, line: Line) -> None:
        self.lines.append(line)

    def total(self, discount: float = 0.0) -> float:
        █
        return subtotal * (1 - discount)

    def is_empty(self) -> bool:
        return not self.lines
'''
SUGGESTION = "subtotal = sum(line.amount() for line in self.lines)"


def _levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


def best_prefix_score(accepted: str, now: str) -> float:
    """The score of the prefix of `now` closest to `accepted` (what follows the accepted
    text — code typed after it — is no edit of it)."""
    distance = min(_levenshtein(accepted, now[:end]) for end in range(len(now) + 1))
    return retention_score(distance, len(accepted))


class FakeHandle:
    def __init__(self, delay: float, callback: Callable[..., object], args: tuple[object, ...]
                 ) -> None:
        self.delay, self.callback, self.args = delay, callback, args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeLoop:
    """call_later recorded, run by hand: what the tracker asks of the event loop."""

    def __init__(self) -> None:
        self.handles: list[FakeHandle] = []

    @property
    def timers(self) -> list[FakeHandle]:
        return [handle for handle in self.handles if not handle.cancelled]

    def call_later(self, delay: float, callback: Callable[..., object], *args: object
                   ) -> FakeHandle:
        handle = FakeHandle(delay, callback, args)
        self.handles.append(handle)
        return handle

    def run_next(self) -> float:
        handle = self.timers[0]
        self.handles.remove(handle)
        handle.callback(*handle.args)
        return handle.delay


def accept(text: str = SUGGESTION, document: str = BEFORE,
           tracker: RetentionTracker | None = None, suggestion_id: str = "s1",
           chars: int | None = None) -> tuple[RetentionTracker, FakeLoop, dict[str, str | None]]:
    """Show `text` at █ of `document`, insert it as the editor would, accept it."""
    tracker = tracker or RetentionTracker(delays=DEFAULT_DELAYS_S)
    offset = document.index("█")
    tracker.shown(suggestion_id, URI, offset, text)
    documents: dict[str, str | None] = {URI: document.replace("█", text)}
    loop = FakeLoop()
    why = tracker.accepted(suggestion_id, len(text) if chars is None else chars,
                           documents.get, loop)  # type: ignore[arg-type]
    assert why == "following"
    return tracker, loop, documents


def check_after(edit: Callable[[str], str], text: str = SUGGESTION,
                document: str = BEFORE) -> Check:
    """The first check's result after `edit` changed the document with the accepted text."""
    results: list[Check] = []
    tracker, loop, documents = accept(text, document)
    tracker.on_check = results.append
    current = documents[URI]
    assert current is not None
    documents[URI] = edit(current)
    loop.run_next()
    (result,) = results
    return result


# -- the distance ------------------------------------------------------------------------


def test_edit_distance_is_levenshtein() -> None:
    rng = random.Random(4)
    for _ in range(500):
        a = "".join(rng.choice("ab c(") for _ in range(rng.randint(0, 40)))
        b = "".join(rng.choice("ab c(") for _ in range(rng.randint(0, 70)))  # > 64 bits
        assert edit_distance(a, b) == _levenshtein(a, b), (a, b)
    assert edit_distance("kitten", "sitting") == 3


def test_match_at_finds_the_closest_span_from_a_start_or_an_end() -> None:
    rng = random.Random(5)
    for _ in range(300):
        accepted = "".join(rng.choice("xy z") for _ in range(rng.randint(1, 30)))
        document = "".join(rng.choice("xy z") for _ in range(rng.randint(0, 80)))
        start = rng.randint(0, len(document))
        found = match_at(document, accepted, starts=[start], tolerance=0)
        # The span starts at `start`; no prefix of the rest is closer.
        assert found.start == start or found.distance == len(accepted)
        best = min(_levenshtein(accepted, document[start:end])
                   for end in range(start, min(len(document), start + 2 * len(accepted)) + 1))
        assert found.distance == best
        assert _levenshtein(accepted, document[found.start:found.end]) == found.distance
        end = rng.randint(0, len(document))
        back = match_at(document, accepted, ends=[end], tolerance=0)
        assert back.end == end or back.distance == len(accepted)
        assert _levenshtein(accepted, document[back.start:back.end]) == back.distance


def test_the_score_is_one_minus_the_normalized_distance() -> None:
    assert retention_score(0, 10) == 1.0
    assert retention_score(3, 12) == 0.75
    assert retention_score(12, 12) == 0.0
    assert retention_score(5, 0) == 0.0


# -- real code edits -------------------------------------------------------------------


def test_left_alone_it_is_kept_whole() -> None:
    result = check_after(lambda text: text)
    assert (result.state, result.score, result.kept) == (CHECKED, 1.0, True)
    assert result.baseline is not None and result.baseline < KEPT_AT


def test_lines_inserted_above_shift_it_and_it_is_still_found() -> None:
    imports = "import logging\nimport math\n\nlog = logging.getLogger(__name__)\n" * 20
    result = check_after(lambda text: imports + text)
    assert (result.score, result.kept) == (1.0, True)


def test_found_after_edits_above_and_below_and_a_new_method_right_before_it() -> None:
    def edit(text: str) -> str:
        text = text.replace('"""Orders and their totals."""',
                            '"""Orders, their lines and totals."""\n\nimport math\n' * 10)
        text = text.replace("        return not self.lines\n",
                            "        return not self.lines\n\n    def size(self) -> int:\n"
                            "        return len(self.lines)\n" * 30)
        return text

    result = check_after(edit)
    assert (result.score, result.kept) == (1.0, True)


def test_a_partial_edit_keeps_most_of_it() -> None:
    # The user replaced the generator by a loop over amounts with a rounding.
    edited = "subtotal = round(sum(line.amount() for line in self.lines), 2)"
    result = check_after(lambda text: text.replace(SUGGESTION, edited))
    assert result.score == best_prefix_score(SUGGESTION, edited)
    assert result.score < retention_score(0, 1) and result.kept
    assert result.score > retention_score(edit_distance(SUGGESTION, edited), len(SUGGESTION))


def test_an_identifier_renamed_inside_the_accepted_text_is_still_kept() -> None:
    # Renamed everywhere in the file (the editor's rename): `line` → `item`, `subtotal`
    # → `gross`: the document's length changed above and inside the suggestion.
    def rename(text: str) -> str:
        return re.sub(r"\bsubtotal\b", "gross", re.sub(r"\bline\b", "item", text))

    result = check_after(rename)
    renamed = rename(SUGGESTION)
    assert result.score == best_prefix_score(SUGGESTION, renamed)
    assert 0.6 < result.score < 0.9 and result.kept


def test_deleted_it_is_not_kept() -> None:
    result = check_after(lambda text: text.replace(SUGGESTION, ""))
    assert result.state == CHECKED and result.kept is False
    assert result.score is not None and result.score < KEPT_AT


def test_replaced_by_other_code_it_is_not_kept() -> None:
    other = "raise NotImplementedError(f'total of {self.customer}')"
    result = check_after(lambda text: text.replace(SUGGESTION, other))
    assert result.kept is False and result.score is not None and result.score < 0.4


def test_rewritten_by_hand_the_same_idea_is_borderline() -> None:
    # Character-level similarity of two ways to write the same sum: about half. What the
    # score measures is the suggestion's characters, not its idea.
    rewritten = "total = 0.0\n        for x in self.lines:\n            total += x.amount()"
    result = check_after(lambda text: text.replace(SUGGESTION, rewritten))
    assert result.score is not None and 0.4 < result.score < 0.6


def test_a_deleted_line_among_similar_lines_is_not_kept() -> None:
    # Repetitive code: the lines left around it look like it; the code that preceded and
    # followed it, now adjacent, say it is gone.
    table = "COLOURS = {\n    'red': (255, 0, 0),\n    █\n    'blue': (0, 0, 255),\n}\n"
    text = "'green': (0, 255, 0),"
    result = check_after(lambda doc: doc.replace("    " + text + "\n", ""), text, table)
    assert (result.score, result.kept) == (0.0, False)
    darker = "'green': (0, 128, 0),"
    edited = check_after(lambda doc: doc.replace(text, darker), text, table)
    assert edited.kept is True
    assert edited.score == retention_score(edit_distance(text, darker), len(text)) == 0.8571


def test_kept_needs_half_the_characters_at_least() -> None:
    short = SUGGESTION[: len(SUGGESTION) // 2 - 2]
    result = check_after(lambda text: text.replace(SUGGESTION, short))
    assert result.score == retention_score(len(SUGGESTION) - len(short), len(SUGGESTION))
    assert result.score < KEPT_AT and result.kept is False
    longer = SUGGESTION[: len(SUGGESTION) // 2 + 2]
    result = check_after(lambda text: text.replace(SUGGESTION, longer))
    assert result.score is not None and result.score >= KEPT_AT and result.kept is True


def test_a_repeated_line_is_told_apart_by_the_code_around_it() -> None:
    document = "values = [\n    1,\n    █\n    1,\n    1,\n]\n"
    kept = check_after(lambda text: text, "1,", document)
    assert (kept.score, kept.kept, kept.baseline) == (1.0, True, 0.0)
    gone = check_after(lambda text: text.replace("    1,\n", "", 1), "1,", document)
    assert (gone.score, gone.kept) == (0.0, False)


def test_a_suggestion_that_looks_the_same_deleted_is_not_followed() -> None:
    # The last line of a file, the same as the line before: nothing follows it to tell
    # the two apart.
    document = "x = 1\nx = 1\n█"
    tracker = RetentionTracker(delays=(1.0,))
    tracker.shown("dup", URI, document.index("█"), "x = 1\n")
    loop = FakeLoop()
    assert tracker.accepted("dup", 6, {URI: document.replace("█", "x = 1\n")}.get,
                            loop) == "indistinct"  # type: ignore[arg-type]
    assert loop.timers == [] and tracker.summary()["notFollowed"]["indistinct"] == 1


# -- the tracker ---------------------------------------------------------------------------


def test_checks_at_each_delay_and_a_closed_document_is_unknown() -> None:
    results: list[Check] = []
    tracker, loop, documents = accept()
    tracker.on_check = results.append
    assert loop.run_next() == 30.0
    documents[URI] = None  # closed
    assert loop.run_next() == 90.0  # 2 min after the accept
    current = BEFORE.replace("█", "")
    documents[URI] = current  # reopened without it
    assert loop.run_next() == 480.0  # 10 min after the accept
    assert loop.timers == [] and tracker.pending == 0
    assert [(r.checkpoint, r.state, r.kept) for r in results] == [
        ("30s", CHECKED, True), ("2m", CLOSED, None), ("10m", CHECKED, False)]
    summary = tracker.summary()
    assert summary["checkpoints"] == [
        {"after": "30s", "afterS": 30.0, "rate": 1.0, "checked": 1, "kept": 1, "unknown": 0,
         "meanScore": 1.0},
        {"after": "2m", "afterS": 120.0, "rate": None, "checked": 0, "kept": 0, "unknown": 1,
         "meanScore": None},
        {"after": "10m", "afterS": 600.0, "rate": 0.0, "checked": 1, "kept": 0, "unknown": 0,
         "meanScore": results[2].score},
    ]
    assert summary["keptAt"] == KEPT_AT and summary["pending"] == 0


def test_a_partial_accept_follows_the_accepted_characters_only() -> None:
    tracker = RetentionTracker(delays=(1.0,))
    results: list[Check] = []
    tracker.on_check = results.append
    word = "subtotal = "
    offset = BEFORE.index("█")
    tracker.shown("p", URI, offset, SUGGESTION)
    documents = {URI: BEFORE.replace("█", word)}
    loop = FakeLoop()
    assert tracker.accepted("p", len(word), documents.get, loop) == "following"  # type: ignore[arg-type]
    assert tracker.accepted("p", len(word), documents.get, loop) == "already"  # type: ignore[arg-type]
    documents[URI] = BEFORE.replace("█", SUGGESTION)  # then the rest of it
    assert tracker.accepted("p", len(SUGGESTION), documents.get, loop) == "following"  # type: ignore[arg-type]
    assert len(loop.timers) == 1  # the first follow's timer was cancelled
    loop.run_next()
    assert [r.score for r in results] == [1.0]


def test_unknown_ids_closed_documents_blank_text_and_the_bound() -> None:
    tracker = RetentionTracker(delays=(1.0,), max_pending=2)
    loop = FakeLoop()
    text_of = {URI: BEFORE.replace("█", SUGGESTION)}.get
    assert tracker.accepted("nope", 5, text_of, loop) == "unknown"  # type: ignore[arg-type]
    tracker.shown("blank", URI, 0, "\n    ")
    assert tracker.accepted("blank", 5, text_of, loop) == "empty"  # type: ignore[arg-type]
    tracker.shown("gone", "file:///closed.py", 0, SUGGESTION)
    assert tracker.accepted("gone", 5, text_of, loop) == "closed"  # type: ignore[arg-type]
    for name in ("a", "b", "c"):
        tracker.shown(name, URI, BEFORE.index("█"), SUGGESTION)
    assert tracker.accepted("a", len(SUGGESTION), text_of, loop) == "following"  # type: ignore[arg-type]
    assert tracker.accepted("b", len(SUGGESTION), text_of, loop) == "following"  # type: ignore[arg-type]
    assert tracker.accepted("c", len(SUGGESTION), text_of, loop) == "full"  # type: ignore[arg-type]
    assert len(loop.timers) == 2 and tracker.summary()["notFollowed"]["full"] == 1


async def test_real_timers_on_the_running_loop_and_no_thread() -> None:
    threads = threading.active_count()
    tracker = RetentionTracker(delays=(0.05, 0.1, 0.15))
    results: list[Check] = []
    tracker.on_check = results.append
    documents = {URI: BEFORE.replace("█", SUGGESTION)}
    for index in range(20):
        tracker.shown(f"t{index}", URI, BEFORE.index("█"), SUGGESTION)
        assert tracker.accepted(f"t{index}", len(SUGGESTION), documents.get) == "following"
    assert threading.active_count() == threads
    await asyncio.sleep(0.4)
    assert len(results) == 60 and all(r.kept for r in results)
    assert tracker.pending == 0
    summary = tracker.summary()
    assert [(c["after"], c["checked"], c["rate"]) for c in summary["checkpoints"]] == [
        ("0.05s", 20, 1.0), ("0.1s", 20, 1.0), ("0.15s", 20, 1.0)]


async def test_close_cancels_what_is_pending() -> None:
    tracker = RetentionTracker(delays=(0.05,))
    results: list[Check] = []
    tracker.on_check = results.append
    tracker.shown("x", URI, BEFORE.index("█"), SUGGESTION)
    tracker.accepted("x", len(SUGGESTION), {URI: BEFORE.replace("█", SUGGESTION)}.get)
    tracker.close()
    await asyncio.sleep(0.1)
    assert results == [] and tracker.pending == 0


@pytest.mark.parametrize(("text", "delays"), [
    (None, DEFAULT_DELAYS_S), ("", DEFAULT_DELAYS_S), ("0.3,0.6,0.9", (0.3, 0.6, 0.9)),
    ("0.9, 0.3", (0.3, 0.9)), ("abc", DEFAULT_DELAYS_S), ("-1,2", DEFAULT_DELAYS_S),
    ("0", DEFAULT_DELAYS_S),
])
def test_delays_from_the_environment(text: str | None, delays: tuple[float, ...]) -> None:
    assert parse_delays(text) == delays


def test_the_tracker_reads_the_delays_where_it_is_built(monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    monkeypatch.setenv(retention.DELAYS_ENV, "0.3,0.6,0.9")
    assert RetentionTracker().delays == (0.3, 0.6, 0.9)
    monkeypatch.delenv(retention.DELAYS_ENV)
    assert RetentionTracker().delays == (30.0, 120.0, 600.0)


def test_checkpoint_labels() -> None:
    assert [checkpoint_label(d) for d in (30, 120, 600, 0.3, 90, 15)] == [
        "30s", "2m", "10m", "0.3s", "90s", "15s"]
