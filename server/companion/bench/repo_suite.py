"""`companion bench quality --suite repo | js`: holes in real code, asked through the LSP.

repo: Python packages as installed (bench/repo_holes.py); js: npm's own JavaScript
(bench/js_holes.py). Side by side in one run, on the same holes:
- naive: the same model file called directly, the raw prefix in, greedy, the first
  non-empty line (bench/holes.py);
- pipeline: today's server with the repository context off (`repoContext: false`);
- pipelineRepo: the server with it on (jedi definitions for Python, similar code from the
  files open in the editor for every language).

Each server configuration is one session (bench/session.py): per package its files are
opened once, then the holes are asked one after another as a user who has been reading
there and presses the shortcut. Scores are in bench/holes.py; `sources` says where the
answers came from (model, cache, templates, none) and `narrowed` how many scored
requests ran the short prompt, so that a run which never reached the model shows it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from companion.bench import js_holes, repo_holes
from companion.bench.holes import Hole, NaiveBaseline, Score
from companion.bench.session import Answer, ask_all

CONFIGURATIONS = {"off": ("pipeline", False), "on": ("pipelineRepo", True)}
DEFAULT_LIMIT = 40  # ~5 s a hole and configuration on two cores: ~8 min for the three
CATEGORIES = ("single-line", "multi-line")
Check = Callable[[Hole, str], "list[str] | None"]
SUITES: dict[str, tuple[Callable[[int], list[Hole]], Check | None]] = {
    "repo": (repo_holes.collect, repo_holes.undefined_names),
    "js": (js_holes.collect, None),
}


def score(answers: list[tuple[Hole, str, float, str]], check: Check | None
          ) -> tuple[dict[str, Score], list[dict[str, Any]]]:
    scores = {category: Score() for category in CATEGORIES}
    examples = [scores[hole.category].add(hole, text, seconds, source, check)
                for hole, text, seconds, source in answers]
    return scores, examples


def naive_answers(holes: list[Hole], model_path: str, progress: bool
                  ) -> list[tuple[Hole, str, float, str]]:
    baseline = NaiveBaseline(model_path, 2048)
    answers = []
    for number, hole in enumerate(holes):
        started = time.perf_counter()
        text = baseline.complete(hole.before, hole.category, hole.language)
        answers.append((hole, text, time.perf_counter() - started, "model" if text else ""))
        if progress:
            sys.stderr.write(f"\rnaive {number + 1}/{len(holes)}")
    return answers


def _server_answers(answers: list[Answer]) -> list[tuple[Hole, str, float, str]]:
    return [(a.hole, a.text, a.seconds, a.source) for a in answers]


async def run(args: argparse.Namespace, suite: str = "repo") -> dict[str, Any]:
    from companion.bench.quality import _model_path

    started = time.perf_counter()
    collect, check = SUITES[suite]
    holes = collect(DEFAULT_LIMIT if args.limit is None else args.limit)
    settings = json.loads(args.settings) if args.settings else {}
    wanted = ["off", "on"] if args.context == "both" else [args.context]
    report: dict[str, Any] = {"suite": suite, "holes": {
        **{category: sum(h.category == category for h in holes) for category in CATEGORIES},
        "packages": sorted({h.package for h in holes}),
        "files": len({h.path for h in holes}),
    }}
    examples: dict[str, list[dict[str, Any]]] = {}
    status: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    for key in wanted:
        label, repo = CONFIGURATIONS[key]
        began = time.perf_counter()
        answers, status, counters = await ask_all(
            holes, {**settings, "repoContext": repo}, label if args.progress else "")
        scores, examples[label] = score(_server_answers(answers), check)
        report[label] = {category: scores[category].summary() for category in CATEGORIES}
        report[label]["narrowed"] = sum(a.narrowed for a in answers)
        report[label]["counters"] = counters
        seconds[label] = round(time.perf_counter() - began, 1)
    report["backend"], report["model"] = status.get("backend"), status.get("model")
    model_path = _model_path(status) if status else None
    if model_path:
        began = time.perf_counter()
        scores, examples["naive"] = score(naive_answers(holes, model_path, args.progress),
                                          check)
        report["naive"] = {category: scores[category].summary() for category in CATEGORIES}
        seconds["naive"] = round(time.perf_counter() - began, 1)
    report["ratio"] = ratios(report)
    seconds["total"] = round(time.perf_counter() - started, 1)
    seconds["perHoleAndConfiguration"] = round(
        sum(seconds.get(label, 0.0) for label, _ in CONFIGURATIONS.values())
        / max(1, len(holes) * len(wanted)), 1)
    report["seconds"] = seconds
    if args.examples:
        report["examples"] = examples
    return report


def ratios(report: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """Each pipeline configuration over naive, per category, for the issue's targets."""
    found: dict[str, dict[str, float | None]] = {}
    naive = report.get("naive")
    if not naive:
        return found
    for label, _ in CONFIGURATIONS.values():
        for category in CATEGORIES:
            if label not in report:
                continue
            row: dict[str, float | None] = {}
            for metric in ("exactMatch", "editSimilarity"):
                base = naive[category][metric]
                row[metric] = round(report[label][category][metric] / base, 2) if base else None
            found[f"{label}/naive {category}"] = row
    return found


WHO = ("naive", "pipeline", "pipelineRepo")
METRICS = (("answered", "answered", "%"), ("exactMatch", "exact", "%"),
           ("editSimilarity", "edit sim", "f"), ("firstIdentifier", "1st ident", "%"),
           ("undefinedName", "undefined", "%"), ("balanced", "balanced", "%"),
           ("parses", "parses", "%"), ("p50Ms", "p50 ms", "d"))


def format_report(report: dict[str, Any]) -> str:
    holes = report["holes"]
    what = "npm's JavaScript" if report["suite"] == "js" else "Python packages"
    lines = [f"{report['backend']} · {report['model']} — holes in {what}: "
             f"{', '.join(holes['packages'])} ({holes['single-line']} single-line, "
             f"{holes['multi-line']} multi-line, {holes['files']} files)"]
    shown = [m for m in METRICS if m[0] != "undefinedName" or report["suite"] == "repo"]
    lines.append(f"{'':<20}" + "".join(f"{title:>10}" for _, title, _ in shown))
    for who in WHO:
        for category in CATEGORIES:
            row = (report.get(who) or {}).get(category)
            if row is None:
                continue
            cells = []
            for key, _, kind in shown:
                value = row.get(key)
                cells.append(f"{'-':>10}" if value is None else f"{value:>10.1%}"
                             if kind == "%" else f"{value:>10.3f}" if kind == "f"
                             else f"{value:>10}")
            lines.append(f"{who + ' ' + category[:6]:<20}" + "".join(cells))
    for who in WHO[1:]:
        if who in report:
            sources: Counter[str] = sum((Counter(report[who][c]["sources"])
                                         for c in CATEGORIES), Counter())
            lines.append(f"{who}: answers from {dict(sources)}, narrowed "
                         f"{report[who]['narrowed']}, server counters {report[who]['counters']}")
    for who in WHO[1:]:
        counters = report.get(who, {}).get("counters", {})
        if counters.get("modelHangs") or counters.get("engineCrashes"):
            lines.append(f"NOT VALID for {who}: the server marked the model hung "
                         f"{counters.get('modelHangs', 0)}× / its engine crashed "
                         f"{counters.get('engineCrashes', 0)}× (answers after that are "
                         "templates or empty; see `sources`)")
    for name, row in report.get("ratio", {}).items():
        lines.append(f"{name}: " + ", ".join(f"{k} ×{v}" for k, v in row.items()))
    lines.append("seconds: " + ", ".join(f"{k} {v}" for k, v in report["seconds"].items()))
    return "\n".join(lines)


def measure(args: argparse.Namespace, suite: str = "repo") -> dict[str, Any]:
    report = asyncio.run(run(args, suite))
    if args.progress:
        sys.stderr.write("\n")
    return report
