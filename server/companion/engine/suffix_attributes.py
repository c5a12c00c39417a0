"""The attribute of `self` the class needs (Python, issue 16 §3): on a blank line of a
method, an attribute that the class reads as `self.x` (in any of its methods, or below the
cursor in this one) and that nothing assigns — no `self.x =` (or `for` / `with` target,
`del`) in any method, no name at the class's top level (def, assignment, annotation), no
attribute of its bases, no `.x =` anywhere in the file — and that this method does not
read above the cursor, is what the missing line assigns. The model (no FIM) is then
started on `self.x =` (`generation.py`), as `suffix_names.py` does for a bare name.

In the repo suite, httpx's `WSGIByteStream.__init__` lost `self._close = getattr(result,
"close", None)`; `close()` reads `self._close` and nothing assigns it, and the model had
written `self.body = self.__init_subclass__()`; now it writes `self._close = False`.
Measured on the 14957 one-line statements of the methods of ten installed packages
(click, rich, jinja2, httpx, pygments, jedi, parso, httpcore, pygls, lsprotocol), each
blanked in turn where no bare name is needed: a hint at 426 (2.8 %; 411 in `__init__`),
and at 375 of them (88 %) the real line is `self.x = ...`, at 42 more `self.x: T = ...`;
where a whole compound block of a method was blanked (4671), a hint at 9, all wrong.
Cost per blank-line request, imported bases unknown: 2.1 ms p50, 15 ms p95, 66 ms at most
(the class parsed; the rest is the regular expressions' first look).

Where it is not known what the class has, no hint: a base class not defined in the file
nor a builtin (unless the caller's `bases` tells its attributes: jedi), a metaclass or
keywords, a decorator other than the dataclass kind, `__getattr__` / `setattr` /
`__dict__` in the class, a class body that does not parse, two or more such attributes.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Callable

from companion.engine.context import CursorContext
from companion.engine.names_classes import (
    OK_DECORATORS,
    UNJUDGED_CLASS,
    External,
    base_attributes,
)
from companion.engine.names_document import Document, indent
from companion.engine.names_modules import base_resolver
from companion.engine.suffix_names import DEF, block_span, code_line

MAX_CLASS_LINES = 3000  # longer classes are not parsed (time)
MAX_CANDIDATES = 8  # more unassigned reads by the expressions: not parsed (time)
_CLASS = re.compile(r"[ \t]*class[ \t]")
_OBJECT = frozenset(dir(object))
_SELF_READ = re.compile(r"self\.([^\W\d]\w*)")
_SELF_STORE = re.compile(r"self\.([^\W\d]\w*)[ \t]*(?::[^\n=]*)?"
                         r"(?:[-+*/%|&^@]|//|\*\*|>>|<<)?=(?!=)")
Bases = Callable[[str], "set[str] | None"]  # a base class expression → its attributes


def _class_span(lines: list[str], row: int) -> tuple[int, int, int, int] | None:
    """(first line, end, indentation, the method's `def` line) of the class whose method
    holds `row` directly, decorators included; None elsewhere (a class body, a function,
    a nested function)."""
    level = len(lines[row])
    method = -1
    header = None
    for index in range(row - 1, -1, -1):
        line = lines[index]
        if not code_line(line):
            continue
        width = indent(line)
        if width >= level:
            continue
        level = width
        if method < 0:
            if _CLASS.match(line):
                return None  # the cursor is in a class body
            if DEF.match(line):
                method = index
        elif _CLASS.match(line):
            header = index
            break
        else:
            return None  # a function inside a function, or a method's inner block
        if width == 0:
            return None
    if header is None:
        return None
    return (*block_span(lines, header, row), method)


def _receiver(method: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    """The name of the method's instance parameter; None for static and class methods."""
    decorators = {ast.unparse(d) for d in method.decorator_list}
    if decorators & {"staticmethod", "classmethod"}:
        return None
    arguments = [*method.args.posonlyargs, *method.args.args]
    return arguments[0].arg if arguments else None


def _walk(node: ast.AST) -> list[ast.AST]:
    """The nodes under `node`, not those in nested classes (their `self` is another)."""
    found: list[ast.AST] = []
    stack = list(ast.iter_child_nodes(node))
    while stack:
        child = stack.pop()
        if isinstance(child, ast.ClassDef):
            continue
        found.append(child)
        stack.extend(ast.iter_child_nodes(child))
    return found


def _class_level(body: list[ast.stmt]) -> set[str]:
    """The names the class body binds at its top level (defs, assignments, imports)."""
    names: set[str] = set()
    for statement in body:
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(statement.name)
            continue
        for node in [statement, *_walk(statement)]:
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.alias):
                names.add((node.asname or node.name).split(".")[0])
    return names


def needed_self_attribute(ctx: CursorContext, document: str, wait_s: float) -> str:
    """`self.x` for the cursor's blank line (see the module's docstring), or ""; an
    imported base class's attributes come from jedi, waited on at most `wait_s` a base
    (not known in time: no hint, and it is known at the next request)."""
    @functools.cache
    def document_and_jedi() -> tuple[Document, External]:  # only where a base is asked
        doc = Document.of(ctx, document)
        return doc, base_resolver(doc, ctx.path, wait_s)

    def bases(base: str) -> set[str] | None:
        doc, external = document_and_jedi()
        return base_attributes(doc, base, external=external)

    name = needed_attribute(document, ctx.line, bases)
    return f"self.{name}" if name else ""


def needed_attribute(document: str, line: int, bases: Bases) -> str | None:
    """The one attribute the class reads as `self.x` and nothing assigns, where `line` is
    a blank line of one of its methods; None otherwise. `bases` tells a base class's
    attributes (None: not known, so no hint)."""
    lines = document.split("\n")
    if not 0 <= line < len(lines) or lines[line].strip():
        return None
    span = _class_span(lines, line)
    if span is None or span[1] - span[0] > MAX_CLASS_LINES:
        return None
    start, end, width, method = span
    body = [text[width:] if text[:width].strip() == "" else text
            for text in lines[start:end]]
    body[line - start] = lines[line][width:] + "pass"
    source = "\n".join(body)
    names = _candidates(source, "\n".join(lines[method:line]), document)
    if not names:
        return None
    found = _class_needs(source, line - start + 1, names)
    if found is None:
        return None
    reads, base_list = found
    if not reads:
        return None
    inherited: set[str] = set()
    for base in base_list:
        known = bases(base)
        if known is None:
            return None
        inherited |= known
    left = [(name, above) for name, above in reads if name not in inherited]
    if len(left) != 1 or left[0][1]:
        return None  # none or two; or one this method reads before the cursor
    return left[0][0]


def _assigned_outside(name: str, document: str) -> bool:
    """`.name =` (or `+=`, `: T =`) somewhere in the document: set from outside the class,
    or in a way the class's own reads do not show."""
    return re.search(rf"\.\s*{re.escape(name)}\s*(?:[-+*/|&]?=(?!=)|:[^\n=]*=)",
                     document) is not None


def _candidates(source: str, above: str, document: str) -> frozenset[str]:
    """The attributes read as `self.x` that nothing may assign, found with regular
    expressions (a fraction of a parse): most classes assign all they read, and those are
    not parsed. They are the parse's candidates or more (`self.` in a string, a tuple
    target taken for a read), so none here means none there. Empty too when there are
    too many to end with one, or when this method reads all of them before the cursor
    (`above`: its lines up to the cursor)."""
    reads = set(_SELF_READ.findall(source))
    if not reads:
        return frozenset()
    reads -= set(_SELF_STORE.findall(source))
    level = re.search(r"^([ \t]+)\S", source, re.MULTILINE)  # the body's indentation
    if level is None:
        return frozenset()
    bound = re.compile(rf"^{level.group(1)}(?:(?:async[ \t]+)?(?:def|class)[ \t]+)?"
                       r"([^\W\d]\w*)", re.MULTILINE)
    reads -= set(bound.findall(source))
    found = frozenset(name for name in reads - _OBJECT
                      if not _assigned_outside(name, document))
    if len(found) > MAX_CANDIDATES or found <= set(_SELF_READ.findall(above)):
        return frozenset()
    return found


@functools.lru_cache(maxsize=16)
def _class_needs(source: str, row: int, names: frozenset[str]
                 ) -> tuple[tuple[tuple[str, bool], ...], tuple[str, ...]] | None:
    """The attributes of `names` that the class reads and nothing in it assigns, each
    with whether the method at `row` (1-based) reads it above that row, and the class's
    base expressions; None where the class is not judged. `source`: the class, dedented,
    the cursor's line `pass`. Cached: a line's requests (typing, the grow, the shortcut)
    share it. Only the statements where `names` are spelled are looked at."""
    if any(marker in source for marker in UNJUDGED_CLASS):
        return None
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    node = next((n for n in tree.body if isinstance(n, ast.ClassDef)), None)
    if node is None or node.keywords or any(
            ast.unparse(d) not in OK_DECORATORS for d in node.decorator_list):
        return None
    method = _method_at(node, row)
    if method is None:
        return None
    lines = source.split("\n")
    bound = _class_level(node.body)
    read: dict[str, bool] = {}  # attribute → read above the cursor in this method
    stored: set[str] = set()
    for name in names - bound:
        for match in re.finditer(rf"\bself\.{re.escape(name)}\b", source):
            line = source.count("\n", 0, match.start()) + 1
            column = match.start() - source.rfind("\n", 0, match.start()) - 1
            found = _attribute_at(node, line, len(lines[line - 1][:column].encode()), name)
            if found is None:
                continue  # in a string or a comment, a nested class, a static method
            owner, attribute = found
            if not isinstance(attribute.ctx, ast.Load):
                stored.add(name)
            else:
                above = owner is method and line < row
                read[name] = read.get(name, False) or above
    return (tuple((name, above) for name, above in sorted(read.items()) if name not in stored),
            tuple(ast.unparse(base) for base in node.bases))


def _method_at(node: ast.ClassDef, line: int) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    """The class's method (with `self`) whose lines hold `line`."""
    method = next((n for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
                   and n.lineno <= line <= (n.end_lineno or n.lineno)), None)
    return method if method is not None and _receiver(method) == "self" else None


def _attribute_at(node: ast.ClassDef, line: int, column: int, name: str
                  ) -> tuple[ast.FunctionDef | ast.AsyncFunctionDef, ast.Attribute] | None:
    """The method and the `self.name` node whose `self` is at (line, column: UTF-8
    bytes), found by going down the statements that hold the line."""
    method = _method_at(node, line)
    if method is None:
        return None
    current: ast.AST = method
    while True:
        inner = next((child for child in ast.iter_child_nodes(current)
                      if isinstance(child, ast.stmt)
                      and child.lineno <= line <= (child.end_lineno or child.lineno)), None)
        if inner is None:
            break
        if isinstance(inner, ast.ClassDef):
            return None  # its `self` is another
        current = inner
    for child in ast.walk(current):
        if (isinstance(child, ast.Attribute) and child.attr == name
                and isinstance(child.value, ast.Name) and child.value.id == "self"
                and child.value.lineno == line and child.value.col_offset == column):
            return method, child
    return None
