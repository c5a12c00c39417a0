"""`companion bench latency`: typing latency through the real server over stdio.

Opens a real ~2k-token Python file from the running interpreter's standard library,
types a new function into it one keystroke at a time (didChange + inlineCompletion), and
reports cold start, the first completion in the newly opened file, and p50/p95/max while
typing — once waiting for every answer (with where each answer's time went: context,
queue, prefill, decode, post), once cancelling the pending request on each keystroke the
way VS Code does. Then: accepting suggestions (the request right after an accept and,
when that one is empty because the accepted text ended its line, the request after the
Enter the user presses next, with the editor's indentation), and the first suggestion in
each of several more newly opened files of 1k–4k tokens.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sysconfig
import time
import uuid
from pathlib import Path
from typing import Any

from lsprotocol import types

from companion.bench.accepting import accept_pass, apply_insert
from companion.bench.floor import boundary_cost, engine_floor
from companion.engine.context import split_lines
from companion.engine.metrics import summarize
from companion.lspclient import CompanionClient, ServerGone

TYPED = (
    "def summarize(values):\n"
    '    """Mean, smallest and largest of the values."""\n'
    "    total = 0\n"
    "    for value in values:\n"
    "        total += value\n"
    "    return total / len(values), min(values), max(values)\n\n\n"
)
# More newly opened files (1k–4k tokens) for the first suggestion in a new file.
NEW_FILES = ("bisect.py", "colorsys.py", "glob.py", "fnmatch.py", "sched.py", "shlex.py",
             "queue.py")
SPLIT_PARTS = ("context", "queue", "prefill", "decode", "post", "other")
CANDIDATES = ("textwrap.py", "shlex.py", "fnmatch.py", "bisect.py", "heapq.py", "glob.py",
              "queue.py", "sched.py", "colorsys.py", "netrc.py")


def stdlib_file(target_chars: int = 7000) -> Path:
    """The stdlib module whose size is closest to ~2k tokens."""
    folder = Path(sysconfig.get_paths()["stdlib"])
    files = [folder / name for name in CANDIDATES if (folder / name).is_file()]
    return min(files, key=lambda path: abs(path.stat().st_size - target_chars))


def insertion_line(lines: list[str]) -> int:
    """A top-level `def` about two thirds into the file: we type a new function above it
    (without one, on the file's last line)."""
    defs = [index for index, line in enumerate(lines) if line.startswith("def ")]
    if not defs:
        return max(0, len(lines) - 1)
    return defs[min(len(defs) - 1, (2 * len(defs)) // 3)]


def _last_split(status: dict[str, Any], seen: int) -> tuple[dict[str, float] | None, int]:
    """The newest model suggestion's latency split from the status, if one came since
    `seen` splits were counted; and the count now."""
    kinds = status.get("latencyByKind") or {}
    total = kinds.get("splitTotal") or {}
    count = int(total.get("count") or 0)
    if count <= seen:
        return None, count
    return {part: float((kinds.get(f"split{part.title()}") or {}).get("lastMs") or 0.0)
            for part in (*SPLIT_PARTS, "total")}, count


def split_summary(rows: list[dict[str, float]]) -> dict[str, Any] | None:
    """Where the time went: the mean of each part over the median band (p40–p60 by
    total) and over the slowest 5 % (at least one), so the tail can be read as parts."""
    if not rows:
        return None
    ordered = sorted(rows, key=lambda row: row["total"])
    n = len(ordered)
    middle = ordered[int(n * 0.4): max(int(n * 0.4) + 1, int(n * 0.6))]
    tail = ordered[min(n - 1, int(n * 0.95)):]

    def mean(band: list[dict[str, float]]) -> dict[str, float]:
        return {part: round(sum(row[part] for row in band) / len(band), 1)
                for part in (*SPLIT_PARTS, "total")}

    return {"median": mean(middle), "slowest5pct": mean(tail), "count": n,
            "slowestCount": len(tail)}


async def _type(
    client: CompanionClient, uri: str, line: int, keystrokes: str, cancel_pending: bool
) -> dict[str, Any]:
    """Type `keystrokes` starting at (line, 0); returns latencies and cancel counts (and,
    waiting for each answer, each model answer's latency split)."""
    splits: list[dict[str, float]] = []
    seen = _last_split(await client.status(), 0)[1]
    latencies: list[float] = []
    cancelled = 0
    pending: tuple[str, asyncio.Future[Any]] | None = None
    row, column = line, 0
    for char in keystrokes:
        if pending is not None and cancel_pending:
            client.protocol.notify("$/cancelRequest", types.CancelParams(id=pending[0]))
            try:
                await pending[1]
            except ServerGone:
                raise
            except Exception:
                cancelled += 1
            pending = None
        client.insert(uri, row, column, char)
        if char == "\n":
            row, column = row + 1, 0
        else:
            column += 1
        params = types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=row, character=column),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Automatic
            ),
        )
        msg_id = uuid.uuid4().hex
        started = time.perf_counter()
        future = asyncio.ensure_future(client.call("inline completion",
            client.protocol.send_request_async(
                types.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id=msg_id)))
        if cancel_pending:
            pending = (msg_id, future)
            await asyncio.sleep(0.03)  # a fast typist: ~30 ms between keys
            if future.done():
                latencies.append((time.perf_counter() - started) * 1000)
                pending = None
        else:
            await future
            latencies.append((time.perf_counter() - started) * 1000)
            split, seen = _last_split(await client.status(), seen)
            if split is not None:
                splits.append(split)
    if pending is not None:
        await pending[1]
    report: dict[str, Any] = {"latency": summarize(latencies), "cancelled": cancelled,
                              "keystrokes": len(keystrokes),
                              "latenciesMs": [round(ms, 1) for ms in latencies]}
    if not cancel_pending:
        report["split"] = split_summary(splits)
    return report


async def _new_files(client: CompanionClient, skip: Path) -> dict[str, Any]:
    """The first suggestion in each of several newly opened 1k–4k-token files, asked
    right after opening (and the editor's focus there, as the extension reports it) at a
    line two thirds in (the same spot the typing pass uses)."""
    folder = Path(sysconfig.get_paths()["stdlib"])
    rows: list[dict[str, Any]] = []
    for name in NEW_FILES:
        path = folder / name
        if not path.is_file() or path.resolve() == skip.resolve():
            continue
        text = path.read_text(encoding="utf-8")
        if not 3200 <= len(text) <= 14000:
            continue
        uri = client.open(path, text)
        line = insertion_line(split_lines(text))
        client.focus(uri, line)  # as the extension does when the editor shows the file
        client.insert(uri, line, 0, "\n")
        started = time.perf_counter()
        items = await client.inline(uri, line, 0)
        rows.append({"file": name, "tokensApprox": round(len(text) / 3.2),
                     "ms": round((time.perf_counter() - started) * 1000, 1),
                     "answered": bool(items)})
        client.close_document(uri)
    times = [row["ms"] for row in rows]
    return {"files": rows, "medianMs": summarize(times)["p50Ms"]}


async def _recovery(client: CompanionClient, uri: str, line: int) -> float | None:
    """SIGKILL the engine host, then type until a suggestion comes from the model again
    (tokens generated by a new host): the seconds that took, or None without a host."""
    before = await client.status()
    pid = (before.get("host") or {}).get("pid")
    if not pid:
        return None
    os.kill(pid, signal.SIGKILL)
    killed = time.perf_counter()
    client.insert(uri, line, 0, "value = \n")
    column = len("value = ")
    while time.perf_counter() - killed < 60:
        client.insert(uri, line, column, "x")
        column += 1
        await client.inline(uri, line, column)
        now = await client.status()
        host = now.get("host") or {}
        if host.get("pid") not in (None, pid) and now["generatedTokens"] > before[
                "generatedTokens"]:
            return round(time.perf_counter() - killed, 2)
        await asyncio.sleep(0.05)
    return None


async def run(args: argparse.Namespace) -> dict[str, Any]:
    path = Path(args.file) if args.file else stdlib_file()
    text = path.read_text(encoding="utf-8")
    lines = split_lines(text)
    settings = json.loads(args.settings) if args.settings else {}
    client = CompanionClient()
    process_started = time.perf_counter()
    try:
        await client.start(settings)
        status = await client.wait_ready()
        uri = client.open(path, text)
        line = insertion_line(lines)
        client.focus(uri, line)
        client.insert(uri, line, 0, "\n")
        started = time.perf_counter()
        await client.inline(uri, line, 0)
        first_ms = (time.perf_counter() - started) * 1000
        cold_s = time.perf_counter() - process_started
        keystrokes = TYPED[: args.keystrokes]
        sequential = await _type(client, uri, line, keystrokes, cancel_pending=False)
        # The second pass types the same text again, below the first copy.
        line2 = line + keystrokes.count("\n") + 1
        client.insert(uri, line2, 0, "\n")
        cancelling = await _type(client, uri, line2, keystrokes, cancel_pending=True)
        line3 = line2 + keystrokes.count("\n") + 1
        typed = list(lines)  # the document now: both passes typed on fresh lines
        for at in (line, line2):
            apply_insert(typed, at, 0, "\n")
            apply_insert(typed, at, 0, keystrokes)
        accepting = await accept_pass(client, uri, "\n".join(typed), line3)
        new_files = await _new_files(client, path)
        final = await client.status()
        recovery = await _recovery(client, uri, line2)
    finally:
        await client.close()
    answered = max(1, sequential["latency"]["count"] or 1)
    tokens = round(final["generatedTokens"] / max(1, final["requests"].get("inline", answered)))
    floor = engine_floor(text, line, keystrokes, tokens, settings) if args.floor else None
    boundary = boundary_cost(settings) if args.floor else None
    ours = sequential["latency"]["p50Ms"]
    ratio = round(ours / floor["p50Ms"], 2) if floor and floor["p50Ms"] and ours else None
    return {
        "file": str(path),
        "fileChars": len(text),
        "fileTokensApprox": round(len(text) / 3.2),
        "backend": status["backend"],
        "model": status["model"],
        "coldStartS": round(cold_s, 2),
        "modelLoadS": status["loadSeconds"],
        "firstCompletionMs": round(first_ms, 1),
        "typing": sequential,
        "typingWithCancel": cancelling,
        "accepting": accepting,
        "newFiles": new_files,
        "speculated": final["requests"].get("speculated", 0),
        "serverMemoryMB": final["memoryMB"],
        "hostMemoryMB": (final.get("host") or {}).get("memoryMB"),
        "processBoundary": boundary,
        "recoveryAfterKillS": recovery,
        "generatedTokens": final["generatedTokens"],
        "tokensPerSecond": final["tokensPerSecond"],
        "cacheHits": final["requests"].get("cacheHits", 0),
        "engineFloor": floor,
        "p50OverFloor": ratio,
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    return asyncio.run(run(args))


def format_report(result: dict[str, Any]) -> str:
    typing, cancel = result["typing"], result["typingWithCancel"]
    lines = [
        f"file: {result['file']} ({result['fileChars']} chars, ~{result['fileTokensApprox']} "
        f"tokens); {result['backend']} · {result['model']}",
        f"cold start (process start → first completion): {result['coldStartS']} s "
        f"(model load {result['modelLoadS']} s)",
        f"first completion in the newly opened file: {result['firstCompletionMs']} ms",
    ]
    lat = typing["latency"]
    lines.append(f"typing, waiting for each answer ({lat['count']} keystrokes): "
                 f"p50 {lat['p50Ms']} ms, p95 {lat['p95Ms']} ms, max {lat['maxMs']} ms")
    lat = cancel["latency"]
    lines.append(f"typing at 30 ms/key, cancelling stale requests: {cancel['cancelled']} "
                 f"cancelled, {lat['count']} answered in time: p50 {lat['p50Ms']} ms, "
                 f"p95 {lat['p95Ms']} ms")
    split = typing.get("split")
    if split:
        for band, label in (("median", "median band"), ("slowest5pct", "slowest 5 %")):
            parts = split[band]
            lines.append(f"  split, {label}: " + ", ".join(
                f"{part} {parts[part]}" for part in (*SPLIT_PARTS, "total")) + " ms")
    accepting = result.get("accepting")
    if accepting:
        lat, enter = accepting["afterAccept"], accepting["afterEnter"]
        lines.append(f"request right after an accept ({accepting['accepted']} of "
                     f"{accepting['spots']} accepted): p50 {lat['p50Ms']} ms, p95 "
                     f"{lat['p95Ms']} ms, {accepting['empty']} empty; after the Enter that "
                     f"follows an empty one ({enter['count']}): p50 {enter['p50Ms']} ms, "
                     f"max {enter['maxMs']} ms; {result.get('speculated', 0)} speculative "
                     f"suggestions made")
    new_files = result.get("newFiles")
    if new_files:
        lines.append(f"first suggestion in {len(new_files['files'])} more new files: median "
                     f"{new_files['medianMs']} ms (" + ", ".join(
                         f"{row['file']} {row['ms']}" for row in new_files["files"]) + ")")
    floor = result["engineFloor"]
    if floor:
        lines.append(f"engine floor (same model direct, warm, {floor['tokensPerRequest']} "
                     f"tokens): p50 {floor['p50Ms']} ms, p95 {floor['p95Ms']} ms; "
                     f"ours/floor p50 = {result['p50OverFloor']}")
    boundary = result.get("processBoundary")
    if boundary:
        lines.append(f"process boundary: {boundary['costMs']} ms per request (p50 "
                     f"{boundary['hostP50Ms']} ms through the engine host vs "
                     f"{boundary['directP50Ms']} ms in-process, {boundary['rounds']} rounds)")
    recovery = result.get("recoveryAfterKillS")
    lines.append(f"engine host memory {result.get('hostMemoryMB')} MB; after a SIGKILL of "
                 f"the host, the next model suggestion came in {recovery} s")
    lines.append(f"server memory {result['serverMemoryMB']} MB, {result['generatedTokens']} "
                 f"tokens generated at {result['tokensPerSecond']} tokens/s, "
                 f"{result['cacheHits']} cache hits")
    return "\n".join(lines)
