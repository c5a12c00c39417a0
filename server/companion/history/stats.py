"""`companion stats`: what the history database says about a period.

Pure functions over a sqlite3 connection: `collect` returns a JSON-ready dict, and
`format_stats` the text the command prints.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

from companion.engine.metrics import percentile
from companion.history.outcomes import ACCEPTED, PARTIAL, REJECTED, SHOWN
from companion.history.recorder import acceptance_rate
from companion.history.retention import (
    CLOSED,
    DEFAULT_DELAYS_S,
    KEPT_AT,
    checkpoint_label,
    retention_report,
)
from companion.history.schema import migrate, version_of

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration(text: str) -> float:
    """Seconds in a duration like `30m`, `12h`, `7d`, `2w` or `1h30m`."""
    compact = text.strip().lower().replace(" ", "")
    parts = _PART.findall(compact)
    if not compact or "".join(number + unit for number, unit in parts) != compact:
        raise ValueError(f"not a duration: {text!r} (expected e.g. 30m, 12h, 7d)")
    seconds = sum(float(number) * _UNITS[unit] for number, unit in parts)
    if seconds <= 0:
        raise ValueError(f"the duration must be positive: {text!r}")
    return seconds


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def _ms(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


def _outcomes(rows: list[sqlite3.Row]) -> dict[str, Any]:
    outcomes = Counter(row["outcome"] for row in rows)
    kept = outcomes[ACCEPTED] + outcomes[PARTIAL]
    return {
        "shown": len(rows),
        "accepted": outcomes[ACCEPTED],
        "partiallyAccepted": outcomes[PARTIAL],
        "rejected": outcomes[REJECTED],
        "undecided": outcomes[SHOWN],  # seen too briefly, or still on screen
        "acceptanceRate": acceptance_rate(len(rows), kept),
        "acceptedChars": sum(row["accepted_chars"] for row in rows),
        "suggestedChars": sum(row["chars"] for row in rows),
    }


def _latency(rows: list[sqlite3.Row]) -> dict[str, Any]:
    """Latency and speed of one backend · model: totals over every suggestion it showed,
    the split and tokens/s over those the model generated (not cache or templates)."""
    totals = [row["total_ms"] for row in rows]
    generated = [row for row in rows if row["source"] == "model"]
    decode_s = sum(row["decode_ms"] for row in generated) / 1000
    tokens = sum(row["tokens"] for row in generated)
    return {
        "suggestions": len(rows),
        "generated": len(generated),
        "p50Ms": _ms(percentile(totals, 0.5)),
        "p95Ms": _ms(percentile(totals, 0.95)),
        "contextP50Ms": _ms(percentile([row["context_ms"] for row in generated], 0.5)),
        "prefillP50Ms": _ms(percentile([row["prefill_ms"] for row in generated], 0.5)),
        "decodeP50Ms": _ms(percentile([row["decode_ms"] for row in generated], 0.5)),
        "promptTokensP50": percentile([row["prompt_tokens"] for row in generated], 0.5),
        "tokensPerSecond": round(tokens / decode_s, 1) if decode_s > 0 else None,
        "bySource": dict(Counter(row["source"] for row in rows)),
    }


def _retention(connection: sqlite3.Connection, start: float, now: float) -> dict[str, Any]:
    """Retention checks made in the period, per checkpoint (30s, 2m, 10m first)."""
    totals: dict[str, list[float]] = {checkpoint_label(d): [d, 0, 0, 0, 0.0]
                                      for d in DEFAULT_DELAYS_S}
    for checkpoint, after_s, state, score, kept in connection.execute(
            "SELECT checkpoint, after_s, state, score, kept FROM retention "
            "WHERE created >= ? AND created <= ?", (start, now)):
        entry = totals.setdefault(checkpoint, [after_s, 0, 0, 0, 0.0])
        if state == CLOSED:
            entry[3] += 1
        else:
            entry[1] += 1
            entry[2] += 1 if kept else 0
            entry[4] += score or 0.0
    rows = [(label, e[0], int(e[1]), int(e[2]), int(e[3]), e[4])
            for label, e in sorted(totals.items(), key=lambda item: item[1][0])]
    return retention_report(rows, KEPT_AT)


def collect(connection: sqlite3.Connection, since: float | None = None,
            now: float | None = None, database: str = "") -> dict[str, Any]:
    """Everything `companion stats` reports, for suggestions and events since `since`
    (unix time; None = all the history kept)."""
    now = time.time() if now is None else now
    start = since if since is not None else 0.0
    connection.row_factory = sqlite3.Row
    rows: list[sqlite3.Row] = connection.execute(
        "SELECT * FROM suggestions WHERE created >= ? AND created <= ? ORDER BY created",
        (start, now),
    ).fetchall()
    events: list[sqlite3.Row] = connection.execute(
        "SELECT * FROM events WHERE created >= ? AND created <= ? ORDER BY created",
        (start, now),
    ).fetchall()

    by_trigger: dict[str, list[sqlite3.Row]] = defaultdict(list)
    by_language: dict[str, list[sqlite3.Row]] = defaultdict(list)
    by_model: dict[tuple[str, str], list[sqlite3.Row]] = defaultdict(list)
    for row in rows:
        by_trigger[row["trigger"] or "?"].append(row)
        by_language[row["language"] or "?"].append(row)
        by_model[(row["backend"], row["model"])].append(row)

    templates = [row for row in rows if row["source"] == "templates"]
    fallback_events = Counter(
        (event["kind"], event["detail"]) for event in events
        if event["kind"] in ("fallback", "load-failed", "model-error", "hang")
    )
    loads = [event for event in events if event["kind"] == "load"]
    return {
        "database": database,
        "schemaVersion": version_of(connection),
        "since": _iso(since),
        "until": _iso(now),
        "first": _iso(rows[0]["created"]) if rows else None,
        "last": _iso(rows[-1]["created"]) if rows else None,
        "suggestions": _outcomes(rows),
        "retention": _retention(connection, start, now),
        "byTrigger": {key: _outcomes(group) for key, group in sorted(by_trigger.items())},
        "byLanguage": {
            key: _outcomes(group)
            for key, group in sorted(by_language.items(), key=lambda item: -len(item[1]))
        },
        "latency": [
            {"backend": backend, "model": model, **_latency(group)}
            for (backend, model), group in sorted(by_model.items(), key=lambda i: -len(i[1]))
        ],
        "fallbacks": {
            "templateSuggestions": len(templates),
            "reasons": dict(Counter(row["fallback_reason"] or "unknown" for row in templates)
                            .most_common()),
            "events": [
                {"kind": kind, "detail": detail, "count": count}
                for (kind, detail), count in fallback_events.most_common()
            ],
        },
        "loads": [
            {"time": _iso(event["created"]), "backend": event["backend"],
             "model": event["model"], "seconds": _ms(event["seconds"]),
             "detail": event["detail"]}
            for event in loads[-10:]
        ],
    }


def empty_report(database: str, since: float | None, now: float | None = None
                 ) -> dict[str, Any]:
    """What `collect` says about a database that does not exist yet."""
    connection = sqlite3.connect(":memory:", isolation_level=None)
    try:
        migrate(connection)
        return collect(connection, since, now, database)
    finally:
        connection.close()


def fmt_rate(value: float | None) -> str:
    return f"{100 * value:.0f} %" if value is not None else "—"


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


def format_retention(retention: dict[str, Any]) -> list[str]:
    """Lines on whether accepted code was still there, per checkpoint checked."""
    checkpoints = [c for c in retention["checkpoints"] if c["checked"] or c["unknown"]]
    if not checkpoints:
        return []
    lines = ["", "Accepted code still there (retention; kept: similar ≥ "
             f"{100 * retention['keptAt']:.0f} %)"]
    for c in checkpoints:
        mean = c["meanScore"]
        lines.append(
            f"  after {c['after']:<6} {fmt_rate(c['rate']):>5} kept of {c['checked']}"
            f"  mean similarity {f'{mean:.2f}' if mean is not None else '—'}"
            + (f", {c['unknown']} unknown (document closed)" if c["unknown"] else ""))
    return lines


def format_stats(report: dict[str, Any]) -> str:
    """The report as text for a terminal."""
    totals = report["suggestions"]
    period = f"since {report['since']}" if report["since"] else "all history kept"
    lines = [
        f"Companion history ({period}) — {report['database']}",
        "",
        f"Suggestions shown   {totals['shown']}",
        f"  accepted          {totals['accepted']}",
        f"  partly accepted   {totals['partiallyAccepted']}",
        f"  rejected          {totals['rejected']}",
        f"  undecided         {totals['undecided']}",
        f"Acceptance rate     {fmt_rate(totals['acceptanceRate'])}",
        f"Accepted characters {totals['acceptedChars']} of {totals['suggestedChars']} suggested",
    ]
    lines += format_retention(report["retention"])
    if report["byTrigger"]:
        lines += ["", "By trigger"]
        for trigger, group in report["byTrigger"].items():
            lines.append(f"  {trigger:<16} shown {group['shown']:>6}  "
                         f"kept {fmt_rate(group['acceptanceRate']):>5}")
    if report["byLanguage"]:
        lines += ["", "By language"]
        for language, group in report["byLanguage"].items():
            lines.append(f"  {language:<16} shown {group['shown']:>6}  "
                         f"kept {fmt_rate(group['acceptanceRate']):>5}  "
                         f"{group['acceptedChars']} chars")
    if report["latency"]:
        lines += ["", "Latency by backend · model (p50 / p95; split p50 for generated ones)"]
        for entry in report["latency"]:
            speed = entry["tokensPerSecond"]
            lines.append(
                f"  {entry['backend']} · {entry['model'] or '-'}: {entry['suggestions']} shown, "
                f"p50 {fmt_ms(entry['p50Ms'])}, p95 {fmt_ms(entry['p95Ms'])}; "
                f"context {fmt_ms(entry['contextP50Ms'])}, "
                f"prefill {fmt_ms(entry['prefillP50Ms'])}, "
                f"decode {fmt_ms(entry['decodeP50Ms'])}; "
                f"{f'{speed} tokens/s' if speed else 'no generation timed'}"
            )
    fallbacks = report["fallbacks"]
    if fallbacks["templateSuggestions"] or fallbacks["events"]:
        lines += ["", f"Fallbacks to templates: {fallbacks['templateSuggestions']} suggestions"]
        for reason, count in fallbacks["reasons"].items():
            lines.append(f"  {count:>6} × {reason}")
        for event in fallbacks["events"]:
            lines.append(f"  {event['count']:>6} × {event['kind']}: {event['detail']}")
    if report["loads"]:
        lines += ["", "Model loads (latest last)"]
        for load in report["loads"]:
            lines.append(f"  {load['time']}  {load['backend']} · {load['model'] or '-'} "
                         f"in {load['seconds']} s ({load['detail']})")
    lines += ["", "Kept on this machine only; nothing is sent anywhere."]
    return "\n".join(lines)
