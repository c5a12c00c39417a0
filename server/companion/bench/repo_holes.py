"""Holes cut from real Python packages, and how a suggestion for one is scored.

The packages are third-party libraries nobody here wrote, installed in the venv (click,
rich, jinja2, httpx, pygments). A hole is a statement inside a function: one line
(single-line) or a compound statement with its body of up to eight lines (multi-line).
The cursor sits at the statement's indentation; the rest of the file is the document
and the rest of the package is the workspace (the files the hole's file imports are open
in the editor, everything else is on disk).

Scores, per suggestion (the first line only for single-line holes):
- exact match (whitespace-normalised) and edit similarity (difflib ratio);
- first-identifier match: the first identifier of the suggestion is the expected one's;
- undefined name: it uses a name that exists nowhere at that point: a bare name not bound
  in the file or the builtins (nor by the suggestion itself), or an attribute no file of
  the package spells;
- parses: the file with the suggestion in the hole is valid Python.
"""

from __future__ import annotations

import ast
import builtins
import difflib
import importlib.util
import keyword
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PACKAGES = ("click", "rich", "jinja2", "httpx", "pygments")
MAX_MULTI_LINES = 8
MIN_PREFIX_LINES = 30
_IDENTIFIER = re.compile(r"(\.\s*)?\b([A-Za-z_][A-Za-z0-9_]*)\b")
_STRING = re.compile(r"(?s)[rbfuRBFU]*('''.*?'''|\"\"\".*?\"\"\"|'[^'\n]*'|\"[^\"\n]*\")")
_KNOWN = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | frozenset(dir(builtins))


@dataclass(frozen=True)
class RepoCase:
    """One hole in one file of a package."""

    package: str
    path: str  # the real file
    category: str  # "single-line" | "multi-line"
    before: str  # the file up to the hole, ending with the hole's indentation
    expected: str
    after: str  # the file after the hole (from the next line)
    open_files: tuple[str, ...]  # other files of the package open in the editor

    @property
    def name(self) -> str:
        line = self.before.count("\n") + 1
        parts = Path(self.path).parts
        relative = "/".join(parts[len(parts) - parts[::-1].index(self.package) :])
        return f"{self.package}/{relative}:{line}"


def package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def package_files(root: Path) -> list[Path]:
    """The package's modules, without vendored tables and generated lexers."""
    files = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).parts
        if any(part in ("lexers", "tests", "vendor", "_vendor") for part in relative):
            continue
        if "_mapping" in path.name or "_codes" in path.name:
            continue
        files.append(path)
    return files


def _imported_neighbours(path: Path, text: str, root: Path, limit: int = 3) -> tuple[str, ...]:
    """The package files that `path` imports (relative or absolute), the first `limit`."""
    found: list[str] = []
    package = root.name
    for match in re.finditer(rf"^\s*from\s+(\.+|{package}\.)([\w.]*)\s+import", text,
                             re.MULTILINE):
        dots, module = match.groups()
        base = path.parent if dots.startswith(".") else root
        if dots.startswith(".") and len(dots) > 1:
            for _ in range(len(dots) - 1):
                base = base.parent
        target = base.joinpath(*module.split(".")) if module else base / "__init__"
        for candidate in (target.with_suffix(".py"), target / "__init__.py"):
            if candidate.exists() and candidate != path and str(candidate) not in found:
                found.append(str(candidate))
                break
        if len(found) == limit:
            break
    return tuple(found)


def _statements(tree: ast.Module) -> list[ast.stmt]:
    """Statements inside function bodies (not docstrings, not `pass`)."""
    found: list[ast.stmt] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.stmt) and inner is not node and not (
                    isinstance(inner, ast.Expr) and isinstance(inner.value, ast.Constant)
                ) and not isinstance(inner, ast.Pass | ast.FunctionDef | ast.AsyncFunctionDef
                                     | ast.ClassDef):
                    found.append(inner)
    return found


def cut_holes(path: Path, root: Path, package: str) -> tuple[list[RepoCase], list[RepoCase]]:
    """All single-line and multi-line hole candidates in one file."""
    text = path.read_text(encoding="utf-8")
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return [], []
    lines = text.split("\n")
    neighbours = _imported_neighbours(path, text, root)
    single: list[RepoCase] = []
    multi: list[RepoCase] = []
    seen: set[int] = set()
    for node in _statements(tree):
        first, last = node.lineno - 1, (node.end_lineno or node.lineno) - 1
        if first < MIN_PREFIX_LINES or first in seen:
            continue
        source = lines[first]
        indent = source[: len(source) - len(source.lstrip())]
        before = "\n".join(lines[:first]) + "\n" + indent
        if first == last and 8 <= len(source.strip()) <= 100 \
                and not isinstance(node, ast.If | ast.For | ast.While | ast.With | ast.Try):
            seen.add(first)
            single.append(RepoCase(package, str(path), "single-line", before, source.strip(),
                                   "\n".join(lines[last + 1 :]), neighbours))
        elif isinstance(node, ast.If | ast.For | ast.While | ast.With | ast.Try) \
                and 2 <= last - first + 1 <= MAX_MULTI_LINES:
            block = "\n".join(lines[first : last + 1])
            multi.append(RepoCase(package, str(path), "multi-line", before, block.strip(),
                                  "\n".join(lines[last + 1 :]), neighbours))
    return single, multi


def collect(limit: int, packages: tuple[str, ...] = PACKAGES, seed: int = 16,
            multi_share: float = 0.4) -> list[RepoCase]:
    """About `limit` holes spread evenly over the installed packages (deterministic):
    `multi_share` of them multi-line."""
    roots = [(name, root) for name in packages if (root := package_dir(name)) is not None]
    if not roots:
        raise SystemExit("bench quality --suite repo: none of "
                         f"{', '.join(packages)} is installed (pip install click rich ...)")
    per_package = max(1, -(-limit // len(roots)))
    cases: list[RepoCase] = []
    for name, root in roots:
        single: list[RepoCase] = []
        multi: list[RepoCase] = []
        for path in package_files(root):
            found_single, found_multi = cut_holes(path, root, name)
            single += found_single
            multi += found_multi
        chooser = random.Random(f"{seed}-{name}")
        multi_count = min(len(multi), round(per_package * multi_share))
        cases += chooser.sample(single, min(len(single), per_package - multi_count))
        cases += chooser.sample(multi, multi_count)
    return cases[:limit] if limit > 0 else cases


def naive_prefix(before: str, max_chars: int = 5000) -> str:
    """The raw prefix for the baseline: the file's last `max_chars` before the hole,
    from a line start (the baseline's context is 2048 tokens)."""
    if len(before) <= max_chars:
        return before
    cut = before[-max_chars:]
    return cut[cut.find("\n") + 1 :]


def normalise(text: str) -> str:
    return " ".join(text.split())


def first_identifier(text: str) -> str:
    match = re.search(r"[A-Za-z_][A-Za-z0-9_]*", _STRING.sub("''", text))
    return match.group() if match else ""


def file_names(text: str) -> set[str]:
    """Every identifier the text spells (bound names, attributes, imports alike)."""
    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))


def undefined_names(suggestion: str, in_file: set[str], in_package: set[str]) -> list[str]:
    """Names the suggestion uses that exist nowhere at that point (see the module doc)."""
    code = _STRING.sub("''", suggestion.split("#")[0] if "'" not in suggestion
                       and '"' not in suggestion else suggestion)
    # Names the suggestion binds (targets, loop variables, keyword arguments, ...).
    bound = set(re.findall(r"\b([A-Za-z_]\w*)\s*(?<![=!<>])=(?!=)", code))
    targets = re.findall(r"^\s*([\w\s,()\[\]*]+?)\s*=(?!=)", code, re.MULTILINE)
    targets += re.findall(r"\b(?:for|with|as|lambda|import|except)\s+([\w\s,()*]+?)"
                          r"\s*(?:\bin\b|:|$|\bas\b)", code, re.MULTILINE)
    targets += re.findall(r"\b(?:def|class)\s+(\w+)|\bdef\s+\w+\(([^)]*)", code)
    bound |= set(re.findall(r"\bas\s+([A-Za-z_]\w*)", code))
    for target in targets:
        bound |= file_names(target if isinstance(target, str) else " ".join(target))
    missing = []
    for match in _IDENTIFIER.finditer(code):
        dot, name = match.groups()
        if dot:
            if name not in in_package:
                missing.append("." + name)
        elif name not in _KNOWN and name not in in_file and name not in bound:
            missing.append(name)
    return missing


def splice(case: RepoCase, suggestion: str) -> str:
    filling = suggestion.split("\n")[0] if case.category == "single-line" else suggestion
    return case.before + filling + "\n" + case.after


def parses(source: str) -> bool:
    try:
        ast.parse(source)
    except (SyntaxError, ValueError):
        return False
    return True


@dataclass
class RepoScore:
    """Sums over the cases of one category for one configuration."""

    count: int = 0
    answered: int = 0
    exact: int = 0
    similarity: float = 0.0
    identifier: int = 0
    undefined: int = 0
    parsed: int = 0
    seconds: list[float] = field(default_factory=list)

    def add(self, case: RepoCase, suggestion: str, seconds: float, in_package: set[str]
            ) -> dict[str, Any]:
        got = suggestion.split("\n")[0] if case.category == "single-line" else suggestion
        expected = case.expected
        exact = normalise(got) == normalise(expected)
        similarity = difflib.SequenceMatcher(None, got.strip(), expected).ratio()
        identifier = bool(got.strip()) and first_identifier(got) == first_identifier(expected)
        in_file = file_names(case.before + "\n" + case.expected + "\n" + case.after)
        missing = undefined_names(got, in_file, in_package) if got.strip() else []
        parsed = bool(got.strip()) and parses(splice(case, suggestion))
        self.count += 1
        self.answered += bool(got.strip())
        self.exact += exact
        self.similarity += similarity
        self.identifier += identifier
        self.undefined += bool(missing)
        self.parsed += parsed
        self.seconds.append(seconds)
        return {"case": case.name, "got": got[:200], "exact": exact,
                "similarity": round(similarity, 3), "undefined": missing}

    def summary(self) -> dict[str, Any]:
        n = max(1, self.count)
        answered = max(1, self.answered)
        ordered = sorted(self.seconds)
        return {
            "cases": self.count,
            "answered": round(self.answered / n, 4),
            "exactMatch": round(self.exact / n, 4),
            "editSimilarity": round(self.similarity / n, 4),
            "firstIdentifier": round(self.identifier / n, 4),
            # shares of the non-empty suggestions
            "undefinedName": round(self.undefined / answered, 4),
            "parses": round(self.parsed / answered, 4),
            "p50Ms": round(ordered[len(ordered) // 2] * 1000) if ordered else None,
        }


def package_names(cases: list[RepoCase]) -> dict[str, set[str]]:
    """Every identifier each package's files spell (the attribute check)."""
    names: dict[str, set[str]] = {}
    for package in {case.package for case in cases}:
        root = package_dir(package)
        found: set[str] = set()
        for path in package_files(root) if root else []:
            found |= file_names(path.read_text(encoding="utf-8"))
        names[package] = found
    return names
