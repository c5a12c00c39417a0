"""`companion stats`: duration parsing, aggregation, the text and JSON output, and the
self-contained HTML report."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import astuple
from html.parser import HTMLParser
from pathlib import Path

import pytest

from companion.cli import main
from companion.history.report import latency_points, render_html
from companion.history.stats import collect, format_stats, parse_duration
from companion.history.store import (
    INSERT_EVENT,
    INSERT_RETENTION,
    INSERT_SUGGESTION,
    RetentionRow,
    open_database,
)
from tests.unit.test_history_store import row

NOW = 2_000_000_000.0


@pytest.mark.parametrize(("text", "seconds"), [
    ("30m", 1800), ("12h", 43200), ("7d", 604800), ("2w", 1209600), ("45s", 45),
    ("1h30m", 5400), (" 1.5h ", 5400), ("7D", 604800),
])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "7", "d", "7x", "-1d", "0d", "1d garbage", "1y"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def sample_database(path: Path) -> sqlite3.Connection:
    connection = open_database(path)
    rows = [
        # python via llamacpp: 4 shown, 2 accepted, 1 partial, 1 rejected
        row("p1", NOW - 100, chars=10, total_ms=100, tokens=10,
            decode_ms=100),
        row("p2", NOW - 90, chars=20, total_ms=200, tokens=10, decode_ms=100),
        row("p3", NOW - 80, chars=30, total_ms=300, tokens=20, decode_ms=200),
        row("p4", NOW - 70, chars=40, total_ms=400, source="cache", tokens=0, decode_ms=0),
        # rust via templates, while the model loaded
        row("r1", NOW - 60, language="rust", backend="templates", model="",
            source="templates", fallback_reason="model loading", total_ms=2, chars=5,
            tokens=0, decode_ms=0, trigger="automatic"),
        row("r2", NOW - 50, language="rust", backend="templates", model="",
            source="templates", fallback_reason="model loading", total_ms=4, chars=5,
            tokens=0, decode_ms=0, trigger="automatic"),
        # long ago: outside --since 1h
        row("old", NOW - 7200, chars=99, total_ms=5000),
    ]
    connection.execute("BEGIN")
    for suggestion in rows:
        connection.execute(INSERT_SUGGESTION, astuple(suggestion))
    for suggestion_id, outcome, chars in [("p1", "accepted", 10), ("p2", "accepted", 20),
                                          ("p3", "partial", 7), ("p4", "rejected", 0),
                                          ("r1", "rejected", 0)]:
        connection.execute("UPDATE suggestions SET outcome = ?, accepted_chars = ? WHERE id = ?",
                           (outcome, chars, suggestion_id))
    connection.execute(INSERT_EVENT, (NOW - 200, "fallback", "llamacpp", "", "qwen too big", None))
    connection.execute(INSERT_EVENT, (NOW - 150, "load", "llamacpp", "smollm2", "ready: ok", 1.5))
    connection.execute(INSERT_EVENT, (NOW - 40, "model-error", "llamacpp", "smollm2", "boom", None))
    connection.execute("COMMIT")
    return connection


def test_collect_aggregates_outcomes_latency_and_fallbacks(tmp_path: Path) -> None:
    connection = sample_database(tmp_path / "history.sqlite3")
    report = collect(connection, since=NOW - 3600, now=NOW, database="db")
    totals = report["suggestions"]
    assert (totals["shown"], totals["accepted"], totals["partiallyAccepted"],
            totals["rejected"], totals["undecided"]) == (6, 2, 1, 2, 1)
    assert totals["acceptanceRate"] == 0.5
    assert totals["acceptedChars"] == 37 and totals["suggestedChars"] == 110
    assert report["byLanguage"]["python"]["acceptanceRate"] == 0.75
    assert report["byLanguage"]["rust"]["acceptanceRate"] == 0.0
    assert set(report["byTrigger"]) == {"automatic", "invoked"}
    llama, templates = report["latency"]
    assert (llama["backend"], llama["model"], llama["suggestions"]) == ("llamacpp", "smollm2", 4)
    # nearest rank (engine/metrics.py): the 2nd and 4th of 100, 200, 300, 400
    assert (llama["p50Ms"], llama["p95Ms"]) == (200, 400)
    assert llama["tokensPerSecond"] == 100.0  # 40 tokens in 0.4 s, model rows only
    assert llama["bySource"] == {"model": 3, "cache": 1}
    assert templates["tokensPerSecond"] is None
    fallbacks = report["fallbacks"]
    assert fallbacks["templateSuggestions"] == 2
    assert fallbacks["reasons"] == {"model loading": 2}
    assert {(e["kind"], e["detail"]) for e in fallbacks["events"]} == {
        ("fallback", "qwen too big"), ("model-error", "boom")}
    assert [(load["model"], load["seconds"]) for load in report["loads"]] == [("smollm2", 1.5)]
    # Without a period, the old row counts too.
    assert collect(connection, now=NOW)["suggestions"]["shown"] == 7
    text = format_stats(report)
    for part in ("Suggestions shown   6", "Acceptance rate     50 %", "37 of 110",
                 "llamacpp · smollm2", "100.0 tokens/s", "2 × model loading"):
        assert part in text, part
    connection.close()


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += attrs


def test_the_html_report_is_self_contained(tmp_path: Path) -> None:
    connection = sample_database(tmp_path / "history.sqlite3")
    connection.execute(INSERT_SUGGESTION, astuple(row(
        "x", NOW - 30, language="<script>alert(1)</script>")))
    report = collect(connection, since=NOW - 3600, now=NOW)
    page = render_html(report, latency_points(connection, NOW - 3600, NOW))
    connection.close()
    parser = Tags()
    parser.feed(page)
    assert parser.tags.count("svg") == 2
    assert "circle" in parser.tags and "rect" in parser.tags and "path" in parser.tags
    assert not {"script", "link", "img", "iframe", "object", "embed"} & set(parser.tags)
    assert not [name for name, _ in parser.attributes if name in ("src", "href")
                or name.startswith("on")]
    lowered = page.lower()
    for forbidden in ("http:", "https:", "url(", "@import", "//cdn"):
        assert forbidden not in lowered, forbidden
    assert "&lt;script&gt;" in page
    assert "<td>Acceptance rate</td><td>43 %</td>" in page  # 3 kept of 7
    assert "75 % of 4" in page  # python's bar


def test_stats_command_json_since_and_html(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COMPANION_DATA_DIR", str(tmp_path))
    connection = open_database(tmp_path / "history.sqlite3")
    now = time.time()
    connection.execute(INSERT_SUGGESTION, astuple(row("recent", now - 60)))
    connection.execute(INSERT_SUGGESTION, astuple(row("older", now - 3 * 86400)))
    connection.execute("UPDATE suggestions SET outcome = 'accepted', accepted_chars = 12")
    connection.close()
    assert main(["stats", "--json", "--since", "1d"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["suggestions"]["shown"] == 1
    assert report["suggestions"]["acceptanceRate"] == 1.0
    assert main(["stats", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["suggestions"]["shown"] == 2
    assert main(["stats"]) == 0
    assert "Acceptance rate     100 %" in capsys.readouterr().out
    out = tmp_path / "report.html"
    assert main(["stats", "--html", str(out)]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert main(["stats", "--since", "soon"]) == 2
    assert "not a duration" in capsys.readouterr().err


def test_stats_without_a_database_reports_zeros_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COMPANION_DATA_DIR", str(tmp_path / "none"))
    assert main(["stats", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["suggestions"]["shown"] == 0
    assert report["suggestions"]["acceptanceRate"] is None
    assert not (tmp_path / "none").exists()


def add_checks(connection: sqlite3.Connection) -> None:
    checks = [
        RetentionRow(NOW - 95, "p1", "30s", 30.0, "checked", 1.0, True, 0.0),
        RetentionRow(NOW - 85, "p2", "30s", 30.0, "checked", 0.2, False, 0.0),
        RetentionRow(NOW - 84, "p3", "30s", 30.0, "closed"),
        RetentionRow(NOW - 20, "p1", "2m", 120.0, "checked", 0.8, True, 0.0),
        RetentionRow(NOW - 7000, "old", "30s", 30.0, "checked", 0.0, False, 0.0),
    ]
    connection.execute("BEGIN")
    for check in checks:
        connection.execute(INSERT_RETENTION, astuple(check))
    connection.execute("COMMIT")


def test_retention_per_checkpoint_in_text_json_and_html(tmp_path: Path) -> None:
    connection = sample_database(tmp_path / "history.sqlite3")
    add_checks(connection)
    report = collect(connection, since=NOW - 3600, now=NOW, database="db")
    retention = report["retention"]
    assert [(c["after"], c["afterS"], c["rate"], c["checked"], c["kept"], c["unknown"],
             c["meanScore"]) for c in retention["checkpoints"]] == [
        ("30s", 30.0, 0.5, 2, 1, 1, 0.6), ("2m", 120.0, 1.0, 1, 1, 0, 0.8),
        ("10m", 600.0, None, 0, 0, 0, None)]
    assert retention["keptAt"] == 0.5
    everything = collect(connection, now=NOW)["retention"]["checkpoints"]
    assert everything[0]["checked"] == 3  # and the old one
    text = format_stats(report)
    assert "after 30s     50 % kept of 2  mean similarity 0.60, 1 unknown (document closed)" \
        in text
    assert "after 2m     100 % kept of 1  mean similarity 0.80" in text
    assert "after 10m" not in text  # nothing checked there yet
    page = render_html(report, latency_points(connection, NOW - 3600, NOW))
    assert "<td>after 30s</td><td>50 %</td><td>2</td><td>0.60</td><td>1</td>" in page
    connection.close()


def test_injected_delays_have_their_own_checkpoints_after_the_usual_ones(
        tmp_path: Path) -> None:
    connection = open_database(tmp_path / "history.sqlite3")
    connection.execute(INSERT_RETENTION, astuple(
        RetentionRow(NOW, "x", "0.3s", 0.3, "checked", 1.0, True, 0.0)))
    checkpoints = collect(connection, now=NOW)["retention"]["checkpoints"]
    assert [c["after"] for c in checkpoints] == ["0.3s", "30s", "2m", "10m"]
    assert checkpoints[0]["rate"] == 1.0
    assert "No accepted suggestion checked yet" in render_html(
        collect(connection, since=NOW - 1, now=NOW - 0.5), [])
    connection.close()
