"""Holes cut from real JavaScript: npm's own sources, found where Node.js put them.

npm is on every machine with Node.js: its CLI (`lib/`, the package "npm") and the
packages it bundles (`node_modules/`: @npmcli/arborist, pacote, cacache, ...), all
multi-file CommonJS code nobody here wrote. A hole is a statement inside a function body
(a function declaration or expression, an arrow function or a method), read from the
tree-sitter tree: a single-line declaration, expression, `return` or `throw`, or a
compound statement (`if`, `for`, `while`, `try`, `switch`) of two to eight lines. The
file's `require('./x')`s are the files open beside it; files whose original text does not
parse cleanly, and minified ones, give no holes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from companion.bench.holes import (
    MAX_MULTI_LINES,
    MIN_PREFIX_LINES,
    Hole,
    prefix_lines,
    spread,
    ts_parser,
)

# The CLI itself, then bundled packages of several files each.
PACKAGES = ("npm", "@npmcli/arborist", "pacote", "cacache", "@npmcli/config",
            "npm-registry-fetch")
_FUNCTIONS = frozenset({"function_declaration", "function_expression", "arrow_function",
                        "method_definition", "generator_function_declaration",
                        "generator_function"})
_SINGLE = frozenset({"expression_statement", "lexical_declaration", "variable_declaration",
                     "return_statement", "throw_statement"})
_COMPOUND = frozenset({"if_statement", "for_statement", "for_in_statement",
                       "while_statement", "do_statement", "try_statement",
                       "switch_statement"})
_REQUIRE = re.compile(r"""require\(\s*['"](\.{1,2}/[^'"]+)['"]\s*\)"""
                      r"""|from\s+['"](\.{1,2}/[^'"]+)['"]""")


def npm_dir() -> Path | None:
    """npm's installed package folder (`COMPANION_NPM_DIR` overrides)."""
    override = os.environ.get("COMPANION_NPM_DIR")
    candidates = [Path(override)] if override else []
    npm = shutil.which("npm")
    if npm:
        candidates.append(Path(os.path.realpath(npm)).parent.parent)
        try:
            root = subprocess.run([npm, "root", "-g"], capture_output=True, text=True,
                                  timeout=20).stdout.strip()
            if root:
                candidates.append(Path(root) / "npm")
        except (OSError, subprocess.SubprocessError):
            pass
    for candidate in candidates:
        manifest = candidate / "package.json"
        try:
            if json.loads(manifest.read_text(encoding="utf-8")).get("name") == "npm":
                return candidate
        except (OSError, ValueError):
            continue
    return None


def package_root(npm: Path, name: str) -> Path:
    return npm / "lib" if name == "npm" else npm / "node_modules" / name


def package_files(root: Path) -> list[Path]:
    """The package's JavaScript sources, without nested dependencies, tests and
    minified or generated files."""
    files = []
    for path in sorted(root.rglob("*")):
        if path.suffix not in (".js", ".cjs", ".mjs") or not path.is_file():
            continue
        relative = path.relative_to(root).parts
        if any(part in ("node_modules", "test", "tests", "dist", "vendor") for part in
               relative):
            continue
        files.append(path)
    return files


def required_neighbours(path: Path, text: str, limit: int = 3) -> tuple[str, ...]:
    """The files `path` requires (or imports) by a relative path, the first `limit`."""
    found: list[str] = []
    for match in _REQUIRE.finditer(text):
        target = path.parent / (match.group(1) or match.group(2))
        for candidate in (target, target.with_name(target.name + ".js"),
                          target / "index.js"):
            if candidate.is_file() and candidate != path:
                if str(candidate.resolve()) not in found:
                    found.append(str(candidate.resolve()))
                break
        if len(found) == limit:
            break
    return tuple(found)


def _inside_function(node: Any) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.type in _FUNCTIONS:
            return True
        parent = parent.parent
    return False


def cut_holes(path: Path, package: str) -> tuple[list[Hole], list[Hole]]:
    """All single-line and multi-line hole candidates in one file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return [], []
    lines = text.split("\n")
    if "\r" in text or any(len(line) > 300 for line in lines) or len(text) > 300_000:
        return [], []
    if any(mark in text for mark in ("\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85",
                                     "\u2028", "\u2029")):
        return [], []
    source = text.encode("utf-8")
    tree = ts_parser("javascript").parse(source)
    if tree.root_node.has_error:
        return [], []
    neighbours = required_neighbours(path, text)
    single: list[Hole] = []
    multi: list[Hole] = []
    pending = [tree.root_node]
    while pending:
        node = pending.pop()
        pending.extend(reversed(node.children))
        if node.type not in _SINGLE and node.type not in _COMPOUND:
            continue
        if node.parent is None or node.parent.type not in ("statement_block",
                                                           "switch_case"):
            continue
        first, last = node.start_point[0], node.end_point[0]
        if first < MIN_PREFIX_LINES or not _inside_function(node):
            continue
        line = lines[first]
        indent = line[: len(line) - len(line.lstrip())]
        if node.start_point[1] != len(indent) or not line[len(indent):].strip():
            continue
        if lines[last][node.end_point[1]:].strip():
            continue  # something else on the statement's last line
        # The node's columns are bytes: the slices above are exact for ASCII lines only.
        if not all(line.isascii() for line in lines[first : last + 1]):
            continue
        before = prefix_lines(lines, first, indent)
        after = "\n".join(lines[last + 1 :])
        if node.type in _SINGLE and first == last and 8 <= len(line.strip()) <= 100:
            single.append(Hole(package, str(path), "single-line", before, line.strip(),
                               after, neighbours, "javascript"))
        elif node.type in _COMPOUND and 2 <= last - first + 1 <= MAX_MULTI_LINES:
            block = "\n".join(each[len(indent):] if each.startswith(indent) else each
                              for each in lines[first : last + 1])
            multi.append(Hole(package, str(path), "multi-line", before, block.strip(),
                              after, neighbours, "javascript"))
    return single, multi


def collect(limit: int, packages: tuple[str, ...] = PACKAGES, seed: int = 17) -> list[Hole]:
    """About `limit` holes spread evenly over npm and the packages it bundles."""
    npm = npm_dir()
    if npm is None:
        raise SystemExit("bench quality --suite js: npm's sources were not found (install "
                         "Node.js with npm, or set COMPANION_NPM_DIR to npm's folder)")
    per_package: dict[str, tuple[list[Hole], list[Hole]]] = {}
    for name in packages:
        root = package_root(npm, name)
        if not root.is_dir():
            continue
        single: list[Hole] = []
        multi: list[Hole] = []
        for path in package_files(root):
            found_single, found_multi = cut_holes(path, name)
            single += found_single
            multi += found_multi
        if single or multi:
            per_package[name] = (single, multi)
    return spread(per_package, limit, seed)
