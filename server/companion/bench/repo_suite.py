"""`companion bench quality --suite repo`: holes in real packages, asked through the LSP.

Side by side in one run, on the same holes (bench/repo_holes.py):
- naive: the same model file called directly, the raw prefix in, greedy, the first line;
- pipeline: today's server with the repository context off (`repoContext: false`);
- pipeline+repo: the server with it on (definitions from jedi, similar code from the
  files open in the editor).

Each hole is asked like a user who has been reading there: the hole's file and the files
it imports are opened (at their real paths, so jedi sees the package on disk), one
as-you-type request on the hole's line, a pause (the server processes the full window and
the repository context), then an explicit request at the hole, which is scored (the whole
inline deadline: scores that do not depend on how loaded the machine is; `bench latency`
measures typing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from lsprotocol import types

from companion.bench.repo_holes import (
    RepoCase,
    RepoScore,
    collect,
    naive_prefix,
    package_names,
)
from companion.lspclient import CompanionClient

PAUSE_S = 1.2  # the user reads the code at the hole (the grow prefill runs meanwhile)
CONFIGURATIONS = {"off": ("pipeline", False), "on": ("pipelineRepo", True)}


async def _invoked(client: CompanionClient, uri: str, line: int, character: int
                   ) -> list[types.InlineCompletionItem]:
    """An explicit request (the whole inline deadline, not the typing budget: scores do
    not depend on how loaded the machine is)."""
    result = await client.call("inline completion", client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=line, character=character),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Invoked),
        )))
    if result is None:
        return []
    return list(result.items if isinstance(result, types.InlineCompletionList) else result)


async def _ask(client: CompanionClient, case: RepoCase) -> tuple[str, float]:
    opened = [client.open(path, Path(path).read_text(encoding="utf-8"))
              for path in case.open_files]
    uri = client.open(case.path, case.before + "\n" + case.after)
    lines = case.before.split("\n")
    try:
        await client.idle()
        # The keystroke that brought the cursor here (column 0: not the scored prefix,
        # which the result cache would answer), then the pause.
        await client.inline(uri, len(lines) - 1, 0)
        await asyncio.sleep(PAUSE_S)
        await client.idle()
        started = time.perf_counter()
        items = await _invoked(client, uri, len(lines) - 1, len(lines[-1]))
        seconds = time.perf_counter() - started
    finally:
        for each in [uri, *opened]:
            client.close_document(each)
    if not items:
        return "", seconds
    ghost = items[0].insert_text
    return (ghost if isinstance(ghost, str) else ghost.value), seconds


async def _server_run(cases: list[RepoCase], settings: dict[str, Any], repo: bool,
                      names: dict[str, set[str]], progress: str
                      ) -> tuple[dict[str, RepoScore], list[dict[str, Any]], dict[str, Any]]:
    client = CompanionClient()
    scores = {"single-line": RepoScore(), "multi-line": RepoScore()}
    examples: list[dict[str, Any]] = []
    try:
        await client.start({**settings, "repoContext": repo})
        status = await client.wait_ready()
        for number, case in enumerate(cases):
            suggestion, seconds = await _ask(client, case)
            examples.append(scores[case.category].add(case, suggestion, seconds,
                                                      names[case.package]))
            if progress:
                sys.stderr.write(f"\r{progress} {number + 1}/{len(cases)}")
    finally:
        await client.close()
    return scores, examples, status


def _naive(cases: list[RepoCase], model_path: str, names: dict[str, set[str]]
           ) -> tuple[dict[str, RepoScore], list[dict[str, Any]]]:
    from companion.bench.quality import NaiveBaseline

    baseline = NaiveBaseline(model_path, 2048)
    scores = {"single-line": RepoScore(), "multi-line": RepoScore()}
    examples = []
    for case in cases:
        started = time.perf_counter()
        raw = baseline.complete(naive_prefix(case.before))
        examples.append(scores[case.category].add(case, raw, time.perf_counter() - started,
                                                  names[case.package]))
    return scores, examples


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from companion.bench.quality import _model_path

    started = time.perf_counter()
    limit = 40 if args.limit is None else args.limit
    cases = collect(limit)
    names = package_names(cases)
    settings = json.loads(args.settings) if args.settings else {}
    wanted = ["off", "on"] if args.context == "both" else [args.context]
    report: dict[str, Any] = {"suite": "repo", "holes": {
        "single-line": sum(c.category == "single-line" for c in cases),
        "multi-line": sum(c.category == "multi-line" for c in cases),
        "packages": sorted({c.package for c in cases}),
    }}
    examples: dict[str, list[dict[str, Any]]] = {}
    status: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    for key in wanted:
        label, repo = CONFIGURATIONS[key]
        began = time.perf_counter()
        scores, examples[label], status = await _server_run(
            cases, settings, repo, names, label if args.progress else "")
        report[label] = {k: v.summary() for k, v in scores.items()}
        seconds[label] = round(time.perf_counter() - began, 1)
    report["backend"], report["model"] = status.get("backend"), status.get("model")
    model_path = _model_path(status) if status else None
    if model_path:
        began = time.perf_counter()
        scores, examples["naive"] = _naive(cases, model_path, names)
        report["naive"] = {k: v.summary() for k, v in scores.items()}
        seconds["naive"] = round(time.perf_counter() - began, 1)
    seconds["total"] = round(time.perf_counter() - started, 1)
    report["seconds"] = seconds
    if args.examples:
        report["examples"] = examples
    return report


WHO = ("naive", "pipeline", "pipelineRepo")
METRICS = (("exactMatch", "exact", "%"), ("editSimilarity", "edit sim", "f"),
           ("firstIdentifier", "1st ident", "%"), ("undefinedName", "undefined", "%"),
           ("parses", "parses", "%"), ("p50Ms", "p50 ms", "d"))


def format_report(report: dict[str, Any]) -> str:
    holes = report["holes"]
    lines = [f"{report['backend']} · {report['model']} — holes in "
             f"{', '.join(holes['packages'])} ({holes['single-line']} single-line, "
             f"{holes['multi-line']} multi-line)"]
    lines.append(f"{'':<20}" + "".join(f"{title:>10}" for _, title, _ in METRICS))
    for who in WHO:
        for category, row in (report.get(who) or {}).items():
            cells = []
            for key, _, kind in METRICS:
                value = row.get(key)
                cells.append(f"{'-':>10}" if value is None else f"{value:>10.1%}"
                             if kind == "%" else f"{value:>10.3f}" if kind == "f"
                             else f"{value:>10}")
            lines.append(f"{who + ' ' + category[:6]:<20}" + "".join(cells))
    lines.append("seconds: " + ", ".join(f"{k} {v}" for k, v in report["seconds"].items()))
    return "\n".join(lines)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    report = asyncio.run(run(args))
    if args.progress:
        sys.stderr.write("\n")
    return report
