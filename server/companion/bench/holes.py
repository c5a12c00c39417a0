"""What the repo and JS suites of `bench quality` share: a hole, how it is sampled and
scored, and the naive baseline.

A hole is a statement cut out of a real source file: the document is the file without it,
the cursor sits at the statement's indentation, and the expected text is the statement
(one line: single-line; a compound statement of up to eight lines: multi-line).

Scores, per suggestion (its first line only for single-line holes):
- exact match (whitespace-normalised) and edit similarity (difflib ratio);
- first-identifier match (as CrossCodeEval counts it);
- brackets balanced: the document with the suggestion in the hole has its brackets
  balanced (the suggestion closes what it opens, as the expected text does);
- parses: the document with the suggestion in the hole parses (Python: `ast`; JavaScript:
  tree-sitter, no ERROR or MISSING node);
- the suite's own check (Python: a name that does not exist at that point).

The naive baseline is the same model file called directly (llama.cpp in this process):
the raw prefix without the hole's trailing indentation, greedy, and the first non-empty
line (multi-line holes: that line and the lines below it indented deeper, i.e. the block
it opens, plus a closing `}` line for brace languages), as CrossCodeEval-style benches cut.
"""

from __future__ import annotations

import ast
import difflib
import functools
import random
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_MULTI_LINES = 8
MIN_PREFIX_LINES = 30
MAX_FILES_PER_PACKAGE = 4  # the tabs a user has open: holes come from this many files
OPENERS, CLOSERS = "([{", ")]}"


@dataclass(frozen=True)
class Hole:
    """One hole in one file of a package."""

    package: str
    path: str  # the real file
    category: str  # "single-line" | "multi-line"
    before: str  # the file up to the hole, ending with the hole's indentation
    expected: str
    after: str  # the file after the hole (from the next line)
    open_files: tuple[str, ...] = ()  # other files of the package open in the editor
    language: str = "python"

    @property
    def line(self) -> int:
        """The hole's line (0-based)."""
        return self.before.count("\n")

    @property
    def indent(self) -> str:
        return self.before[self.before.rfind("\n") + 1 :]

    @property
    def document(self) -> str:
        """The file as the editor holds it: the hole's line empty but for the indent."""
        return self.before + "\n" + self.after

    @property
    def original(self) -> str:
        return self.before + self.expected + "\n" + self.after

    @property
    def name(self) -> str:
        parts = Path(self.path).parts
        tail = self.package.split("/")[-1]
        start = len(parts) - parts[::-1].index(tail) if tail in parts else len(parts) - 1
        return f"{self.package}:{'/'.join(parts[start:])}:{self.line + 1}"


# -- sampling ----------------------------------------------------------------------------


def sample_package(single: list[Hole], multi: list[Hole], count: int, seed: str,
                   multi_share: float = 0.4) -> list[Hole]:
    """`count` holes of one package (deterministic for `seed`), `multi_share` of them
    multi-line, from at most MAX_FILES_PER_PACKAGE files (a user's open tabs), a third of
    them at most from one file while others have some; in file and line order (the
    order a reader goes through them)."""
    chooser = random.Random(seed)
    files = sorted({hole.path for hole in single + multi})
    chooser.shuffle(files)
    files = files[:MAX_FILES_PER_PACKAGE]
    pools = {kind: {path: chooser.sample(found, len(found)) for path in files
                    if (found := [h for h in holes if h.path == path])}
             for kind, holes in (("multi", multi), ("single", single))}
    wanted = {"multi": round(count * multi_share), "single": count}
    chosen: list[Hole] = []
    per_file = max(2, -(-count // 3))
    for cap in (per_file, count):  # spread over the files first, then what is left
        for path in files:
            taken = sum(h.path == path for h in chosen)
            for kind in ("multi", "single"):
                pool = pools[kind].get(path, [])
                while pool and taken < cap and wanted[kind] > 0 and len(chosen) < count:
                    chosen.append(pool.pop(0))
                    wanted[kind] -= 1
                    taken += 1
    return sorted(chosen, key=lambda h: (h.path, h.line))


def spread(per_package: dict[str, tuple[list[Hole], list[Hole]]], limit: int,
           seed: int) -> list[Hole]:
    """About `limit` holes spread evenly over the packages (0: every hole)."""
    if limit <= 0:
        return [h for single, multi in per_package.values() for h in single + multi]
    count = max(1, -(-limit // max(1, len(per_package))))
    holes: list[Hole] = []
    for package, (single, multi) in per_package.items():
        holes += sample_package(single, multi, count, f"{seed}-{package}")
    return holes[:limit]


def prefix_lines(lines: list[str], first: int, indent: str) -> str:
    return "\n".join(lines[:first]) + "\n" + indent


# -- scoring -----------------------------------------------------------------------------


def normalise(text: str) -> str:
    return " ".join(text.split())


def similarity(got: str, expected: str) -> float:
    return difflib.SequenceMatcher(None, normalise(got), normalise(expected)).ratio()


_STRINGS = {
    "python": re.compile(r"(?s)[rbfuRBFU]*('''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\\n])*'"
                         r"|\"(?:\\.|[^\"\\\n])*\")|#[^\n]*"),
    "javascript": re.compile(r"(?s)`(?:\\.|[^`\\])*`|'(?:\\.|[^'\\\n])*'"
                             r"|\"(?:\\.|[^\"\\\n])*\"|//[^\n]*|/\*.*?\*/"),
}


def code_only(text: str, language: str) -> str:
    """`text` with its strings emptied and comments dropped (brackets and names in them
    do not count)."""
    pattern = _STRINGS.get(language, _STRINGS["javascript"])
    return pattern.sub(lambda m: "''" if m.group()[:1] not in "#/" else "", text)


def first_identifier(text: str, language: str = "python") -> str:
    match = re.search(r"[A-Za-z_$][A-Za-z0-9_$]*", code_only(text, language))
    return match.group() if match else ""


def bracket_residue(text: str, language: str) -> str:
    """The brackets of `text` left once every matched pair is cancelled (`)` before `(`
    stays: it closes something outside); "!" marks a mismatched pair."""
    stack: list[str] = []
    for char in code_only(text, language):
        if char in OPENERS:
            stack.append(char)
        elif char in CLOSERS:
            opener = OPENERS[CLOSERS.index(char)]
            if stack and stack[-1] in OPENERS:
                if stack.pop() != opener:
                    return "!"
            else:
                stack.append(char)
    return "".join(stack)


def brackets_balanced(fill: str, expected: str, language: str) -> bool:
    """The document stays balanced with `fill` in place of `expected` (the real file is):
    both leave the same unmatched brackets."""
    residue = bracket_residue(fill, language)
    return residue != "!" and residue == bracket_residue(expected, language)


@functools.cache
def ts_parser(language: str) -> Any:
    from tree_sitter_language_pack import get_parser

    return get_parser(language)  # type: ignore[arg-type]


def parses(source: str, language: str) -> bool:
    """The document parses: Python's own parser; tree-sitter for other languages."""
    if language == "python":
        try:
            ast.parse(source)
        except (SyntaxError, ValueError):
            return False
        return True
    tree = ts_parser(language).parse(source.encode("utf-8"))
    return not tree.root_node.has_error


def fill_of(hole: Hole, suggestion: str) -> str:
    """What is scored: the first line for single-line holes, all of it otherwise."""
    text = suggestion.strip("\n")
    return text.split("\n")[0] if hole.category == "single-line" else text.rstrip()


def splice(hole: Hole, fill: str) -> str:
    return hole.before + fill + "\n" + hole.after


# -- the naive baseline ------------------------------------------------------------------


def naive_prompt(before: str, max_chars: int = 5000) -> str:
    """The raw prefix: the file's last `max_chars` before the hole from a line start,
    without the hole line's indentation (a prompt ending in spaces splits the model's
    indentation token, and it answers with a line end)."""
    text = before[: before.rfind("\n") + 1]
    if len(text) > max_chars:
        text = text[-max_chars:]
        text = text[text.find("\n") + 1 :]
    return text


def _block(lines: list[str], language: str) -> int:
    """How many of `lines` (the first non-empty) make the block the first one opens:
    the lines below indented deeper, and a closing-brace line at its indent for brace
    languages (`} else {` goes on)."""
    width = len(lines[0]) - len(lines[0].lstrip())
    taken = 1
    for line in lines[1:]:
        depth = len(line) - len(line.lstrip())
        if not line.strip() or depth > width:
            taken += 1
            continue
        if language != "python" and depth == width and line.lstrip()[:1] in CLOSERS:
            taken += 1
            if re.match(r"\s*[)\]}]+\s*(else|catch|finally|while)\b", line):
                continue
        break
    return taken


def _from_first(raw: str) -> list[str]:
    lines = raw.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    return lines


def naive_fill(raw: str, category: str, language: str) -> str:
    """The baseline's answer from its raw output: the first non-empty line, dedented;
    multi-line: with the block it opens (see `_block`)."""
    lines = _from_first(raw)
    if not lines:
        return ""
    if category == "single-line":
        return lines[0].strip()
    width = len(lines[0]) - len(lines[0].lstrip())
    block = lines[: _block(lines, language)]
    return "\n".join(line[width:] if not line[:width].strip() else line.strip()
                     for line in block).strip()


def naive_done(raw: str, category: str, language: str) -> bool:
    """The baseline can stop generating: its answer cannot change any more (only whole
    lines count)."""
    lines = _from_first(raw[: raw.rfind("\n")] if "\n" in raw else "")
    if category == "single-line" or not lines:
        return bool(lines)
    return len(lines) > _block(lines, language)


class NaiveBaseline:
    """The same model file, the raw prefix in, greedy; see `naive_fill`."""

    def __init__(self, model_path: str, context: int = 2048) -> None:
        from llama_cpp import Llama

        self.llm = Llama(model_path=model_path, n_ctx=context, verbose=False)

    def generate(self, prompt: str, done: Callable[[str], bool], max_tokens: int) -> str:
        text = ""
        stream: Iterable[Any] = self.llm.create_completion(
            prompt, max_tokens=max_tokens, temperature=0.0, top_k=1, stream=True)
        for chunk in stream:
            text += chunk["choices"][0]["text"]
            if done(text):
                break
        return text

    def complete(self, before: str, category: str, language: str = "python") -> str:
        max_tokens = 48 if category == "single-line" else 160
        raw = self.generate(naive_prompt(before),
                            lambda text: naive_done(text, category, language), max_tokens)
        return naive_fill(raw, category, language)


# -- sums --------------------------------------------------------------------------------


@dataclass
class Score:
    """Sums over the holes of one category for one configuration."""

    count: int = 0
    answered: int = 0
    exact: int = 0
    similarity: float = 0.0
    identifier: int = 0
    balanced: int = 0
    parsed: int = 0
    undefined: int = 0
    checked: int = 0  # answers the suite's own check ran on
    seconds: list[float] = field(default_factory=list)
    sources: Counter[str] = field(default_factory=Counter)

    def add(self, hole: Hole, suggestion: str, seconds: float, source: str = "",
            check: Callable[[Hole, str], list[str] | None] | None = None) -> dict[str, Any]:
        got = fill_of(hole, suggestion)
        answered = bool(got.strip())
        exact = normalise(got) == normalise(hole.expected)
        ratio = similarity(got, hole.expected)
        identifier = answered and first_identifier(got, hole.language) == first_identifier(
            hole.expected, hole.language)
        balanced = answered and brackets_balanced(got, hole.expected, hole.language)
        parsed = answered and parses(splice(hole, got), hole.language)
        missing = check(hole, got) if check is not None and answered else None
        self.count += 1
        self.answered += answered
        self.exact += exact
        self.similarity += ratio
        self.identifier += identifier
        self.balanced += balanced
        self.parsed += parsed
        if missing is not None:
            self.checked += 1
            self.undefined += bool(missing)
        self.seconds.append(seconds)
        self.sources[source or ("none" if not answered else "model")] += 1
        example: dict[str, Any] = {
            "hole": hole.name, "category": hole.category, "expected": hole.expected[:300],
            "got": got[:300], "exact": exact, "similarity": round(ratio, 3),
            "balanced": balanced, "parses": parsed, "source": source,
            "ms": round(seconds * 1000)}
        if missing:
            example["undefined"] = missing
        return example

    def summary(self) -> dict[str, Any]:
        n = max(1, self.count)
        answered = max(1, self.answered)
        ordered = sorted(self.seconds)
        row: dict[str, Any] = {
            "cases": self.count,
            "answered": round(self.answered / n, 4),
            "exactMatch": round(self.exact / n, 4),
            "editSimilarity": round(self.similarity / n, 4),
            "firstIdentifier": round(self.identifier / n, 4),
            # shares of the non-empty suggestions
            "balanced": round(self.balanced / answered, 4),
            "parses": round(self.parsed / answered, 4),
            "undefinedName": round(self.undefined / self.checked, 4) if self.checked else None,
            "p50Ms": round(ordered[len(ordered) // 2] * 1000) if ordered else None,
            "sources": dict(self.sources),
        }
        return row
