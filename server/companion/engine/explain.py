"""Hover explanations: the static facts about a symbol and the model's explanation.

`find_definition` locates the definition of the name under the cursor in the document.
In Python (functions, classes, methods, assignments, parameters, imports) it reads the
`ast`, falling back to an indentation scan while the file does not parse (as it often
does mid-typing); in every other language the tree-sitter tree (`engine.definitions`:
signature, doc comment, imports).
`Explainer` caches the model's explanations keyed by the definition's text, so the next
hover on an unchanged definition is instant, and finishes explanations that missed the
hover deadline in the background.
"""

from __future__ import annotations

import ast
import hashlib
import keyword
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass

from companion.engine import definitions
from companion.engine.context import split_lines
from companion.engine.languages import LanguageSpec, spec_for

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEADER = re.compile(r"^(\s*)(?:async\s+def|def|class)\s+(\w+)")
MAX_SOURCE_CHARS = 2400


@dataclass(frozen=True)
class Definition:
    """What the hover is about."""

    name: str
    kind: str  # "function" | "method" | "class" | "variable" | "parameter" | "import"
    signature: str  # the header line(s), or the assignment / import line
    docstring: str
    source: str  # the definition's full text, capped
    line: int  # 0-based line of the definition
    use_line: str  # the line under the cursor when it is a use, not the definition
    language: str = "python"  # the spec id (`engine.languages`)

    @property
    def cache_key(self) -> str:
        return hashlib.sha256(f"{self.kind}\0{self.source}".encode()).hexdigest()


def word_at(line: str, column: int) -> str:
    """The identifier touching `column` (str index) in `line`, or ""."""
    for match in _WORD.finditer(line):
        if match.start() <= column <= match.end():
            return match.group(0)
    return ""


def _segment(lines: list[str], node: ast.AST) -> str:
    start = getattr(node, "lineno", 1) - 1
    end = getattr(node, "end_lineno", start + 1)
    return "\n".join(lines[start:end])[:MAX_SOURCE_CHARS]


def _header(lines: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> str:
    start = node.lineno - 1
    body_start = node.body[0].lineno - 1 if node.body else start + 1
    header = [line for line in lines[start : max(start + 1, body_start)] if line.strip()]
    return "\n".join(line.strip() if i == 0 else line for i, line in enumerate(header)).strip()


def _from_ast(tree: ast.Module, lines: list[str], name: str, line: int) -> Definition | None:
    candidates: list[tuple[int, Definition]] = []
    use_line = lines[line].strip() if 0 <= line < len(lines) else ""
    parents: dict[ast.AST, ast.AST] = {}
    for parent in ast.walk(tree):
        for child in ast.iter_child_nodes(parent):
            parents[child] = parent
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if node.name != name:
                continue
            kind = "class" if isinstance(node, ast.ClassDef) else (
                "method" if isinstance(parents.get(node), ast.ClassDef) else "function")
            candidates.append((node.lineno - 1, Definition(
                name, kind, _header(lines, node), ast.get_docstring(node) or "",
                _segment(lines, node), node.lineno - 1, use_line)))
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = {
                leaf.id for target in targets for leaf in ast.walk(target)
                if isinstance(leaf, ast.Name)
            }
            names |= {target.attr for target in targets if isinstance(target, ast.Attribute)}
            if name in names:
                text = _segment(lines, node).strip()
                candidates.append((node.lineno - 1, Definition(
                    name, "variable", text.split("\n")[0], "", text, node.lineno - 1, use_line)))
        elif isinstance(node, ast.arg) and node.arg == name:
            function = parents.get(parents.get(node, node), node)
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                annotation = f": {ast.unparse(node.annotation)}" if node.annotation else ""
                candidates.append((node.lineno - 1, Definition(
                    name, "parameter", f"{name}{annotation}  (parameter of {function.name})",
                    "", _segment(lines, function), node.lineno - 1, use_line)))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if (alias.asname or alias.name.split(".")[0]) == name:
                    text = _segment(lines, node).strip()
                    candidates.append((node.lineno - 1, Definition(
                        name, "import", text, "", text, node.lineno - 1, use_line)))
    if not candidates:
        return None
    # The definition on the cursor's line wins; otherwise the nearest one above the
    # cursor; otherwise the first one below (a function used before it is defined).
    for defined_at, definition in candidates:
        if defined_at == line:
            return _as_definition_site(definition)
    above = [c for c in candidates if c[0] < line]
    chosen = max(above, key=lambda c: c[0]) if above else min(candidates, key=lambda c: c[0])
    return chosen[1]


def _as_definition_site(definition: Definition) -> Definition:
    return Definition(definition.name, definition.kind, definition.signature,
                      definition.docstring, definition.source, definition.line, "",
                      definition.language)


def _from_scan(lines: list[str], name: str, line: int) -> Definition | None:
    """Indentation scan for `def name`/`class name` when the file does not parse."""
    for index, text in enumerate(lines):
        match = _HEADER.match(text)
        if not match or match.group(2) != name:
            continue
        indent = len(match.group(1))
        end = index + 1
        while end < len(lines) and (
            not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > indent
        ):
            end += 1
        source = "\n".join(lines[index:end]).rstrip()[:MAX_SOURCE_CHARS]
        kind = "class" if "class " in text.split("(")[0] else "function"
        use_line = lines[line].strip() if index != line else ""
        docstring = _scan_docstring(lines[index + 1 : end])
        return Definition(name, kind, text.strip(), docstring, source, index, use_line)
    return None


def _scan_docstring(body: list[str]) -> str:
    """The docstring opening a body, read as text (for code that does not parse)."""
    text = "\n".join(line.strip() for line in body).strip()
    for quote in ('"""', "'''"):
        if text.startswith(quote):
            end = text.find(quote, 3)
            return text[3:end].strip() if end > 0 else ""
    return ""


def _from_tree(spec: LanguageSpec, lines: list[str], line: int,
               column: int) -> Definition | None:
    """The definition of the name at (line, column) from the tree, chosen as in Python:
    the one named on the cursor's line, else the nearest above, else the first below."""
    text = "\n".join(lines)
    name = definitions.name_at(spec, text, line, column)
    found = definitions.definitions(spec, text, name) if name else []
    if not found:
        return None
    use_line = lines[line].strip()

    def as_definition(item: definitions.Found, use: str) -> Definition:
        return Definition(item.name, item.kind, item.signature, item.doc, item.source,
                          item.line, use, spec.id)

    for item in found:
        if item.name_line == line:
            return as_definition(item, "")
    above = [item for item in found if item.name_line < line]
    chosen = max(above, key=lambda item: item.name_line) if above else found[0]
    return as_definition(chosen, use_line)


def find_definition(text: str, line: int, column: int, language: str = "python",
                    path: str = "") -> Definition | None:
    """The definition of the name at (line, column) in a document in `language` (a VS
    Code language id); None for keywords and unknowns."""
    lines = split_lines(text)
    if not 0 <= line < len(lines):
        return None
    spec = spec_for(language, path)
    if spec.id != "python":
        return _from_tree(spec, lines, line, column)
    name = word_at(lines[line], column)
    if not name or name in KEYWORDS:
        return None
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return _from_scan(lines, name, line)
    return _from_ast(tree, lines, name, line) or _from_scan(lines, name, line)


KEYWORDS = frozenset(keyword.kwlist) | {"self", "cls"}


def static_markdown(definition: Definition, path: str = "") -> str:
    """The part of the hover that needs no model: signature, docstring, location."""
    where = f"{path.rsplit('/', 1)[-1]}:" if path else "line "
    fence = spec_for(definition.language).tag
    parts = [f"```{fence}\n{definition.signature}\n```",
             f"*{definition.kind}* `{definition.name}`, defined at {where}{definition.line + 1}"]
    if definition.docstring:
        parts.append(definition.docstring.strip())
    return "\n\n".join(parts)


def explanation_question(definition: Definition, question: str = "") -> str:
    """What the model is asked about a definition, in its language's name."""
    if question:
        return question
    subject = {"function": "function", "method": "method", "class": "class"}.get(
        definition.kind, "code")
    return f"Explain briefly what this {language_name(definition.language)} {subject} does."


def language_name(language: str, path: str = "") -> str:
    """The language as a person names it ("TypeScript"), for prompts."""
    spec = spec_for(language, path)
    return spec.name if spec.id else "code"


def selection_question(language: str, path: str = "") -> str:
    """What the model is asked about selected code."""
    return f"Explain briefly what this {language_name(language, path)} code does."


class Explainer:
    """A bounded cache of explanations, keyed by definition text and question."""

    def __init__(self, size: int = 256) -> None:
        self._cache: OrderedDict[str, str] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            value = self._cache.get(key)
            if value is not None:
                self._cache.move_to_end(key)
            return value

    def put(self, key: str, explanation: str) -> None:
        with self._lock:
            self._cache[key] = explanation
            self._cache.move_to_end(key)
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
