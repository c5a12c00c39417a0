"""`companion stats --html FILE`: one self-contained HTML page.

No JavaScript, no external CSS, fonts or images, nothing fetched: the charts are inline SVG
drawn here, so the page opens offline and shows nothing but what the database holds.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from html import escape
from typing import Any

from companion.engine.metrics import percentile
from companion.history.stats import fmt_ms, fmt_rate

PALETTE = ["#3b82f6", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#06b6d4"]
MAX_POINTS = 2000  # scatter points drawn; medians use every row
SLICES = 40  # time slices of the median lines
WIDTH, HEIGHT = 760, 280
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 36

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 820px;
       color: #1f2937; background: #fff; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 2em; }
table { border-collapse: collapse; } td, th { padding: 2px 10px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr:nth-child(even) td { background: #f3f4f6; }
svg { display: block; } .axis { stroke: #9ca3af; } .grid { stroke: #e5e7eb; }
svg text { font: 11px system-ui, sans-serif; fill: #4b5563; }
.note { color: #6b7280; font-size: 0.9em; }
"""


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M")


def latency_points(connection: sqlite3.Connection, since: float, now: float
                   ) -> list[tuple[float, float, str]]:
    """(time, total ms, backend · model) of every suggestion in the period."""
    return [
        (row[0], row[1], f"{row[2]} · {row[3]}" if row[3] else row[2])
        for row in connection.execute(
            "SELECT created, total_ms, backend, model FROM suggestions "
            "WHERE created >= ? AND created <= ? ORDER BY created", (since, now))
    ]


def latency_chart(points: list[tuple[float, float, str]]) -> str:
    """Scatter of suggestion latency over time, one colour per backend · model, with the
    median of each of SLICES time slices as a line per backend · model."""
    if not points:
        return '<p class="note">No suggestions in this period.</p>'
    times = [p[0] for p in points]
    values = [p[1] for p in points]
    t0, t1 = min(times), max(times)
    span = max(t1 - t0, 1.0)
    top = max(1.0, percentile(values, 0.99) or 1.0) * 1.1  # outliers sit on the top edge
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(t: float) -> float:
        return LEFT + (t - t0) / span * plot_w

    def y(ms: float) -> float:
        return TOP + plot_h - min(ms, top) / top * plot_h

    series = sorted({p[2] for p in points}, key=lambda name: -sum(p[2] == name for p in points))
    colour = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(series)}
    parts = [f'<svg width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="latency over time">']
    for i in range(5):
        ms = top * i / 4
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(ms):.1f}" '
                     f'y2="{y(ms):.1f}"/><text x="{LEFT - 6}" y="{y(ms) + 4:.1f}" '
                     f'text-anchor="end">{escape(fmt_ms(ms))}</text>')
    parts.append(f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + plot_h}" '
                 f'y2="{TOP + plot_h}"/>')
    for t, anchor in ((t0, "start"), (t0 + span / 2, "middle"), (t1, "end")):
        parts.append(f'<text x="{x(t):.1f}" y="{HEIGHT - 12}" text-anchor="{anchor}">'
                     f'{escape(_when(t))} UTC</text>')
    step = max(1, len(points) // MAX_POINTS)
    for t, ms, name in points[::step]:
        parts.append(f'<circle cx="{x(t):.1f}" cy="{y(ms):.1f}" r="2.2" '
                     f'fill="{colour[name]}" fill-opacity="0.55"/>')
    for name in series:  # one median line per backend · model: cache hits sit apart
        slices: dict[int, list[float]] = {}
        for t, ms, point_series in points:
            if point_series == name:
                slices.setdefault(min(SLICES - 1, int((t - t0) / span * SLICES)), []).append(ms)
        median_path = " ".join(
            f"{'M' if i == 0 else 'L'}{x(t0 + (index + 0.5) * span / SLICES):.1f},"
            f"{y(percentile(group, 0.5) or 0.0):.1f}"
            for i, (index, group) in enumerate(sorted(slices.items()))
        )
        parts.append(f'<path d="{median_path}" fill="none" stroke="{colour[name]}" '
                     'stroke-width="2"/>')
    parts.append("</svg>")
    legend = " ".join(
        f'<span style="color:{colour[name]}">●</span> {escape(name)}' for name in series
    )
    return "".join(parts) + f'<p class="note">{legend} — lines: medians per time slice</p>'


def acceptance_chart(by_language: dict[str, dict[str, Any]]) -> str:
    """Horizontal bars: the share of suggestions kept, per language."""
    if not by_language:
        return '<p class="note">No suggestions in this period.</p>'
    rows = list(by_language.items())[:20]
    bar_h, label_w, width = 22, 120, WIDTH
    height = bar_h * len(rows) + 8
    plot_w = width - label_w - 140
    parts = [f'<svg width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="acceptance by language">']
    for i, (language, group) in enumerate(rows):
        rate = group["acceptanceRate"] or 0.0
        top = 4 + i * bar_h
        parts.append(
            f'<text x="{label_w - 8}" y="{top + 15}" text-anchor="end">{escape(language)}</text>'
            f'<rect x="{label_w}" y="{top + 3}" width="{plot_w}" height="{bar_h - 8}" '
            f'fill="#e5e7eb"/>'
            f'<rect x="{label_w}" y="{top + 3}" width="{rate * plot_w:.1f}" '
            f'height="{bar_h - 8}" fill="#10b981"/>'
            f'<text x="{label_w + plot_w + 8}" y="{top + 15}">'
            f'{escape(fmt_rate(group["acceptanceRate"]))} of {group["shown"]}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(report: dict[str, Any], points: list[tuple[float, float, str]]) -> str:
    """The whole page for a `stats.collect` report and its latency points."""
    totals = report["suggestions"]
    period = f"since {report['since']}" if report["since"] else "all history kept"
    summary = _table(["", ""], [
        ["Suggestions shown", str(totals["shown"])],
        ["Accepted", str(totals["accepted"])],
        ["Partly accepted", str(totals["partiallyAccepted"])],
        ["Rejected", str(totals["rejected"])],
        ["Acceptance rate", fmt_rate(totals["acceptanceRate"])],
        ["Accepted characters", f"{totals['acceptedChars']} of {totals['suggestedChars']}"],
    ])
    models = _table(
        ["Backend · model", "Shown", "p50", "p95", "Prefill p50", "Decode p50", "Tokens/s"],
        [[f"{e['backend']} · {e['model'] or '-'}", str(e["suggestions"]), fmt_ms(e["p50Ms"]),
          fmt_ms(e["p95Ms"]), fmt_ms(e["prefillP50Ms"]), fmt_ms(e["decodeP50Ms"]),
          str(e["tokensPerSecond"] or "—")] for e in report["latency"]],
    )
    retention_rows = [
        [f"after {c['after']}", fmt_rate(c["rate"]), str(c["checked"]),
         f"{c['meanScore']:.2f}" if c["meanScore"] is not None else "—", str(c["unknown"])]
        for c in report["retention"]["checkpoints"] if c["checked"] or c["unknown"]
    ]
    fallbacks = report["fallbacks"]
    fallback_rows = [[reason, str(count)] for reason, count in fallbacks["reasons"].items()]
    fallback_rows += [[f"{e['kind']}: {e['detail']}", str(e["count"])]
                      for e in fallbacks["events"]]
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>Companion history</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>Companion history</h1><p class=\"note\">{escape(period)} · until "
        f"{escape(str(report['until']))}</p>",
        summary,
        "<h2>Latency over time</h2>",
        latency_chart(points),
        "<h2>Acceptance by language</h2>",
        acceptance_chart(report["byLanguage"]),
        "<h2>Accepted code still there</h2>",
        _table(["", "Kept", "Checked", "Mean similarity", "Unknown (closed)"], retention_rows)
        if retention_rows else '<p class="note">No accepted suggestion checked yet.</p>',
        "<h2>Backends and models</h2>",
        models if report["latency"] else '<p class="note">None.</p>',
        "<h2>Fallbacks to templates</h2>",
        _table(["Why", "Count"], fallback_rows) if fallback_rows
        else '<p class="note">None.</p>',
        '<p class="note">Made from the local history database; nothing was sent anywhere.</p>',
        "</body></html>",
    ])
