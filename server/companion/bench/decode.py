"""`companion bench decode`: decode tokens/s of the llama.cpp engine with prompt-lookup
drafting (backends/llamacpp_lookup.py) off and on, at the same spots, in the same run.

Spots are cursor positions in real files (by default standard-library modules: difflib,
argparse, …), the line under the cursor cut where a typist would be, with prompt windows
of 1k–4k tokens built by the engine's own prompt layout. At each spot every mode runs in
turn (the order rotates from spot to spot, so contention on a shared machine hits all of
them alike): a one-token call first (the prefill, timed on the spot's first call), then
the timed decode of `--tokens` tokens on the cached prompt. The plain run's text is the
reference each lookup run is compared with.
"""

from __future__ import annotations

import argparse
import json
import sysconfig
import time
from pathlib import Path
from typing import Any

from companion.engine.metrics import percentile

FILES = ("difflib.py", "argparse.py", "textwrap.py", "json/decoder.py")
WINDOWS = (1024, 2048, 3072, 4000)  # prompt prefix tokens, cycled over the spots
DRAFTS = (2, 4, 8)
MIN_NGRAM = 2


def default_files() -> list[Path]:
    folder = Path(sysconfig.get_paths()["stdlib"])
    return [folder / name for name in FILES if (folder / name).is_file()]


def spots_in(text: str, count: int) -> list[tuple[int, int]]:
    """`count` cursor spots (line, column) spread over the second half of `text`: code
    lines with some content, the cursor a third of the way into the line's code."""
    lines = text.split("\n")
    candidates = [index for index, line in enumerate(lines)
                  if index > len(lines) // 3 and len(line.strip()) >= 12
                  and not line.strip().startswith(("#", '"', "'"))]
    if not candidates:
        return []
    step = max(1, len(candidates) // max(1, count))
    chosen = candidates[step // 2 :: step][:count]
    spots = []
    for index in chosen:
        line = lines[index]
        indent = len(line) - len(line.lstrip())
        spots.append((index, indent + max(1, (len(line) - indent) // 3)))
    return spots


def _prompts(settings: Any, spec: Any, files: list[Path], count: int) -> list[dict[str, Any]]:
    """The spots' prompts, built by the engine's context and prompt layout."""
    from companion.engine.completer import Engine
    from companion.engine.prompts import build_prompt

    engine = Engine(settings)  # for the cursor contexts only: it loads nothing
    per_file = max(1, -(-count // max(1, len(files))))
    found: list[dict[str, Any]] = []
    try:
        for path in files:
            text = path.read_text(encoding="utf-8")
            lines = text.split("\n")
            for line, column in spots_in(text, per_file):
                cut = "\n".join([*lines[:line], lines[line][:column], *lines[line + 1 :]])
                window = WINDOWS[len(found) % len(WINDOWS)]
                ctx = engine.context_at(cut, line, column, prefix_tokens=window)
                found.append({"file": path.name, "line": line + 1, "window": window,
                              "prompt": build_prompt(ctx, spec.family, spec.fim).text})
    finally:
        engine.scheduler.shutdown()
    return found[:count]


def _run(backend: Any, prompt: str, tokens: int) -> tuple[str, int, float, float | None]:
    """One generation: (text, tokens, seconds, prefill ms of its first chunk)."""
    from companion.backends.base import GenerationRequest

    pieces: list[str] = []
    produced = 0
    prefill: float | None = None
    started = time.perf_counter()
    for chunk in backend.stream(GenerationRequest(prompt=prompt, max_tokens=tokens)):
        pieces.append(chunk.text)
        produced += chunk.tokens
        if chunk.prefill_ms is not None and prefill is None:
            prefill = chunk.prefill_ms
    return "".join(pieces), produced, time.perf_counter() - started, prefill


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from companion.backends.llamacpp_lookup import LookupSettings
    from companion.backends.registry import load_with_fallback
    from companion.config import parse_settings

    raw = json.loads(args.settings) if getattr(args, "settings", None) else {}
    raw = {"backend": "llamacpp", "contextTokens": 4608, **raw}
    settings = parse_settings(raw)[0]
    result = load_with_fallback(settings)
    backend: Any = result.backend  # LlamaCppBackend: its lookup switch, tokenize
    spec = result.spec
    if spec is None or not hasattr(backend, "lookup"):
        return {"error": f"bench decode needs the llama.cpp engine; got {backend.name}",
                "steps": result.steps}
    files = [Path(name) for name in args.file] if getattr(args, "file", None) \
        else default_files()
    tokens = max(2, int(args.tokens))
    drafts = [int(value) for value in getattr(args, "drafts", None) or DRAFTS]
    modes: list[tuple[str, LookupSettings]] = [("plain", LookupSettings(enabled=False))]
    modes += [(f"lookup-{draft}", LookupSettings(enabled=True, draft=draft,
                                                  min_ngram=MIN_NGRAM)) for draft in drafts]
    modes += [(f"lookup-{DRAFTS[1]}-n1",
               LookupSettings(enabled=True, draft=DRAFTS[1], min_ngram=1)),
              (f"lookup-{DRAFTS[1]}-n3",
               LookupSettings(enabled=True, draft=DRAFTS[1], min_ngram=3)),
              (f"lookup-{DRAFTS[-1]}-adaptive",
               LookupSettings(enabled=True, draft=DRAFTS[-1], min_ngram=MIN_NGRAM,
                              adaptive=True))]
    rows: dict[str, dict[str, Any]] = {
        name: {"tokens": 0, "seconds": 0.0, "rates": [], "identical": 0, "steps": 0,
               "draftedSteps": 0, "drafted": 0, "accepted": 0, "batch": {}}
        for name, _ in modes}
    spots: list[dict[str, Any]] = []
    try:
        prompts = _prompts(settings, spec, files, max(1, int(args.spots)))
        for index, spot in enumerate(prompts):
            prompt = spot["prompt"]
            backend.lookup = LookupSettings(enabled=False)
            _, _, _, prefill = _run(backend, prompt, 1)  # the prefill, off the clock
            texts: dict[str, str] = {}
            order = modes[index % len(modes):] + modes[: index % len(modes)]
            for name, lookup in order:
                backend.lookup = LookupSettings(enabled=False)
                _run(backend, prompt, 1)  # back to the prompt's own KV state
                backend.lookup = lookup
                decoder = backend.lookup_decoder() if lookup.enabled else None
                before = _snapshot(decoder)
                text, produced, seconds, _ = _run(backend, prompt, tokens)
                texts[name] = text
                row = rows[name]
                row["tokens"] += produced
                row["seconds"] += seconds
                row["rates"].append(produced / seconds if seconds > 0 else 0.0)
                if decoder is not None:
                    _add_stats(row, before, _snapshot(decoder))
            for name, _ in modes:
                rows[name]["identical"] += texts[name] == texts["plain"]
            spots.append({"file": spot["file"], "line": spot["line"], "window": spot["window"],
                          "promptTokens": len(backend.tokenize(prompt)),
                          "prefillMs": round(prefill or 0.0, 1),
                          "differs": [name for name in texts if texts[name] != texts["plain"]],
                          "plain": texts["plain"][:80]})
    finally:
        backend.unload()
    plain_rate = _rate(rows["plain"])
    report_modes = {}
    for name, lookup in modes:
        row = rows[name]
        rate = _rate(row)
        entry: dict[str, Any] = {
            "draft": lookup.draft if lookup.enabled else 0,
            "minNgram": lookup.min_ngram if lookup.enabled else None,
            "adaptive": lookup.adaptive if lookup.enabled else None,
            "tokensPerS": round(rate, 1),
            "medianTokensPerS": round(percentile(row["rates"], 0.5) or 0.0, 1),
            "speedup": round(rate / plain_rate, 2) if plain_rate else None,
            "identical": f"{row['identical']}/{len(spots)}",
        }
        if lookup.enabled and row["steps"]:
            entry.update({
                "acceptance": (round(row["accepted"] / row["drafted"], 3)
                               if row["drafted"] else None),
                "draftsPerStep": round(row["draftedSteps"] / row["steps"], 2),
                "draftTokensPerStep": round(row["drafted"] / row["steps"], 2),
                "tokensPerStep": round(row["tokens"] / row["steps"], 2),
                "batchMs": {str(size): round(1000 * seconds / count, 1)
                            for size, (count, seconds) in sorted(row["batch"].items())},
            })
        report_modes[name] = entry
    return {"model": spec.name, "safeMode": spec.safe_mode, "spots": len(spots),
            "tokensPerSpot": tokens, "files": [path.name for path in files],
            "prefillMsP50": round(percentile([s["prefillMs"] for s in spots], 0.5) or 0.0, 1),
            "modes": report_modes, "perSpot": spots}


def _snapshot(decoder: Any) -> dict[str, Any]:
    if decoder is None:
        return {}
    stats = decoder.stats
    return {"steps": stats.steps, "draftedSteps": stats.drafted_steps,
            "drafted": stats.drafted, "accepted": stats.accepted,
            "batch": {size: tuple(value) for size, value in stats.batch.items()}}


def _add_stats(row: dict[str, Any], before: dict[str, Any], after: dict[str, Any]) -> None:
    for key in ("steps", "draftedSteps", "drafted", "accepted"):
        row[key] += after[key] - before[key]
    for size, (count, seconds) in after["batch"].items():
        old_count, old_seconds = before["batch"].get(size, (0, 0.0))
        have_count, have_seconds = row["batch"].get(size, (0, 0.0))
        row["batch"][size] = (have_count + count - old_count,
                              have_seconds + seconds - old_seconds)
    row["batch"] = {size: value for size, value in row["batch"].items() if value[0]}


def _rate(row: dict[str, Any]) -> float:
    seconds: float = row["seconds"]
    return row["tokens"] / seconds if seconds > 0 else 0.0


def format_report(report: dict[str, Any]) -> str:
    if "error" in report:
        return f"bench decode: {report['error']}"
    lines = [f"decode, {report['model']} (safe mode {report['safeMode']}): "
             f"{report['spots']} spots × {report['tokensPerSpot']} tokens in "
             f"{', '.join(report['files'])}; prefill p50 {report['prefillMsP50']} ms",
             f"{'mode':<18}{'tok/s':>8}{'median':>8}{'×':>6}{'same':>7}{'accept':>8}"
             f"{'drafts/step':>12}{'tok/step':>9}  batch ms by size"]
    for name, mode in report["modes"].items():
        accept = mode.get("acceptance")
        lines.append(
            f"{name:<18}{mode['tokensPerS']:>8}{mode['medianTokensPerS']:>8}"
            f"{mode['speedup'] or 0:>6}{mode['identical']:>7}"
            f"{'' if accept is None else accept:>8}{mode.get('draftsPerStep', ''):>12}"
            f"{mode.get('tokensPerStep', ''):>9}  "
            + " ".join(f"{size}:{ms}" for size, ms in mode.get("batchMs", {}).items()))
    for spot in report["perSpot"]:
        if spot["differs"]:
            lines.append(f"  differs at {spot['file']}:{spot['line']}: "
                         f"{', '.join(spot['differs'])}")
    return "\n".join(lines)
