"""Read what a scaffold needs from a Python document: classes, fields, functions, params.

Documents being edited often do not parse. When the whole module is a syntax error we cut
out the block around the cursor by indentation and parse that alone, dropping lines from
its end until it parses, so a half-typed method does not hide the class around it.
"""

from __future__ import annotations

import ast
import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass

_NEARLY_EMPTY_CODE_LINES = 5
_CLASS_HEADER = re.compile(r"^(?P<indent>[ \t]*)class\s+(?P<name>\w+)")
_DEF_HEADER = re.compile(r"^(?P<indent>[ \t]*)(?:async\s+)?def\s+(?P<name>\w+)")
# Bases whose constructors accept the fields as keywords although the class has no __init__.
_KEYWORD_BASES = {"BaseModel", "NamedTuple", "TypedDict", "Struct", "SQLModel"}


@dataclass(frozen=True)
class Field:
    """An attribute a scaffold can read and set; `default` is literal source text or None."""

    name: str
    annotation: str | None
    default: str | None


@dataclass(frozen=True)
class ClassInfo:
    name: str
    fields: tuple[Field, ...]
    keyword_init: bool  # ClassName(**{field: value}) builds an instance
    first_line: int  # 0-based, decorators included
    last_line: int  # 0-based, inclusive


@dataclass(frozen=True)
class Param:
    name: str
    annotation: str | None
    has_default: bool
    keyword_only: bool


@dataclass(frozen=True)
class FunctionInfo:
    name: str
    params: tuple[Param, ...]
    returns: str | None
    is_async: bool
    first_line: int
    last_line: int


def parse(text: str) -> ast.Module | None:
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError):  # ValueError: null bytes
        return None


def _is_docstring(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def has_module_docstring(text: str) -> bool:
    tree = parse(text)
    return bool(tree and tree.body and _is_docstring(tree.body[0]))


def is_nearly_empty(text: str) -> bool:
    """Only comments, a docstring, imports and fewer than 5 other code lines, no def/class."""
    tree = parse(text)
    if tree is None:
        code = [
            line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
        ]
        if any(_CLASS_HEADER.match(line) or _DEF_HEADER.match(line) for line in code):
            return False
        return len(code) < _NEARLY_EMPTY_CODE_LINES
    other_lines = 0
    for index, node in enumerate(tree.body):
        if (index == 0 and _is_docstring(node)) or isinstance(
            node, (ast.Import, ast.ImportFrom, ast.Pass)
        ):
            continue
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return False
        other_lines += (node.end_lineno or node.lineno) - node.lineno + 1
    return other_lines < _NEARLY_EMPTY_CODE_LINES


def _first_line(node: ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    decorators = [decorator.lineno for decorator in node.decorator_list]
    return min([node.lineno, *decorators]) - 1


def _literal(node: ast.expr | None) -> str | None:
    """Source text of a default value when it is a plain literal (safe to copy elsewhere)."""
    if node is None:
        return None
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    return ast.unparse(node)


def _decorator_name(node: ast.expr) -> str:
    target = node.func if isinstance(node, ast.Call) else node
    if isinstance(target, ast.Attribute):
        return target.attr
    return target.id if isinstance(target, ast.Name) else ""


def _base_name(node: ast.expr) -> str:
    if isinstance(node, ast.Subscript):
        node = node.value
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def _annotated_fields(node: ast.ClassDef) -> list[Field]:
    fields = []
    for statement in node.body:
        if not (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)):
            continue
        annotation = ast.unparse(statement.annotation)
        if annotation.startswith(("ClassVar", "typing.ClassVar", "InitVar")):
            continue
        fields.append(Field(statement.target.id, annotation, _literal(statement.value)))
    return fields


def _init_fields(init: ast.FunctionDef) -> tuple[list[Field], bool]:
    """Fields from __init__'s parameters, and whether keywords alone can call it."""
    arguments = init.args
    positional = [*arguments.posonlyargs, *arguments.args][1:]  # drop self
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(arguments.defaults)) + list(
        arguments.defaults
    )
    if len(arguments.defaults) > len(positional):  # self had a default: malformed, ignore
        defaults = [None] * len(positional)
    params = [(arg, default) for arg, default in zip(positional, defaults, strict=True)] + list(
        zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True)
    )
    stored = {
        target.attr
        for statement in ast.walk(init)
        if isinstance(statement, (ast.Assign, ast.AnnAssign))
        for target in (
            statement.targets if isinstance(statement, ast.Assign) else [statement.target]
        )
        if isinstance(target, ast.Attribute)
        and isinstance(target.value, ast.Name)
        and target.value.id == "self"
    }
    fields = [
        Field(arg.arg, ast.unparse(arg.annotation) if arg.annotation else None, _literal(default))
        for arg, default in params
        if arg.arg in stored
    ]
    field_names = {field.name for field in fields}
    required = {arg.arg for arg, default in params if default is None}
    positional_only_required = any(arg.arg in required for arg in arguments.posonlyargs[1:])
    keyword_init = required <= field_names and not positional_only_required
    return fields, keyword_init


def class_info(node: ast.ClassDef, line_offset: int = 0) -> ClassInfo:
    is_dataclass = any(_decorator_name(d) == "dataclass" for d in node.decorator_list)
    keyword_base = any(_base_name(base) in _KEYWORD_BASES for base in node.bases)
    init = next(
        (s for s in node.body if isinstance(s, ast.FunctionDef) and s.name == "__init__"), None
    )
    if is_dataclass or keyword_base or init is None:
        fields = _annotated_fields(node)
        keyword_init = is_dataclass or keyword_base or not fields
    else:
        fields, keyword_init = _init_fields(init)
        if not fields:
            fields = _annotated_fields(node)
            keyword_init = False
    return ClassInfo(
        name=node.name,
        fields=tuple(fields),
        keyword_init=keyword_init,
        first_line=_first_line(node) + line_offset,
        last_line=(node.end_lineno or node.lineno) - 1 + line_offset,
    )


def function_info(
    node: ast.FunctionDef | ast.AsyncFunctionDef, line_offset: int = 0
) -> FunctionInfo:
    arguments = node.args
    positional = [*arguments.posonlyargs, *arguments.args]
    first_default = len(positional) - len(arguments.defaults)
    params = [
        Param(
            arg.arg,
            ast.unparse(arg.annotation) if arg.annotation else None,
            index >= first_default,
            keyword_only=False,
        )
        for index, arg in enumerate(positional)
    ]
    params += [
        Param(
            arg.arg,
            ast.unparse(arg.annotation) if arg.annotation else None,
            default is not None,
            keyword_only=True,
        )
        for arg, default in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True)
    ]
    return FunctionInfo(
        name=node.name,
        params=tuple(params),
        returns=ast.unparse(node.returns) if node.returns else None,
        is_async=isinstance(node, ast.AsyncFunctionDef),
        first_line=_first_line(node) + line_offset,
        last_line=(node.end_lineno or node.lineno) - 1 + line_offset,
    )


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip())


def _block_around(lines: list[str], line: int, header: re.Pattern[str]) -> Iterator[int]:
    """0-based header lines of blocks (matching `header`) that contain `line`, innermost first."""
    line = min(max(line, 0), len(lines) - 1)
    for start in range(line, -1, -1):
        match = header.match(lines[start])
        if not match:
            continue
        indent = _indent_of(lines[start])
        inside = all(
            not text.strip() or _indent_of(text) > indent for text in lines[start + 1 : line + 1]
        )
        if inside:
            yield start


def _parse_block(lines: list[str], start: int) -> tuple[ast.Module, int] | None:
    """Parse the block whose header is `lines[start]` on its own; (tree, first line)."""
    indent = _indent_of(lines[start])
    first = start
    while (
        first > 0
        and lines[first - 1].strip().startswith("@")
        and _indent_of(lines[first - 1]) == indent
    ):
        first -= 1
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or _indent_of(lines[end]) > indent):
        end += 1
    block = lines[first:end]
    for stop in range(len(block), start - first, -1):
        candidate = textwrap.dedent("\n".join(block[:stop]))
        for attempt in (candidate, candidate + "\n    pass"):
            tree = parse(attempt)
            if tree is not None and tree.body:
                return tree, first
    return None


def classes(text: str) -> list[ClassInfo]:
    """Every class in the document (nested ones too), in source order."""
    tree = parse(text)
    if tree is None:
        return []
    nodes = [node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    return [class_info(node) for node in sorted(nodes, key=lambda node: node.lineno)]


def class_at(text: str, line: int) -> ClassInfo | None:
    """The innermost class whose lines (decorators included) contain `line` (0-based)."""
    tree = parse(text)
    if tree is not None:
        inside = [info for info in classes(text) if info.first_line <= line <= info.last_line]
        return min(inside, key=lambda info: info.last_line - info.first_line, default=None)
    lines = text.splitlines()
    for start in _block_around(lines, line, _CLASS_HEADER) if lines else ():
        parsed = _parse_block(lines, start)
        if parsed and isinstance(parsed[0].body[0], ast.ClassDef):
            return class_info(parsed[0].body[0], line_offset=parsed[1])
    return None


def function_at(text: str, line: int) -> FunctionInfo | None:
    """The module-level function whose lines contain `line`; methods are left to the
    class scaffolds."""
    tree = parse(text)
    if tree is not None:
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                info = function_info(node)
                if info.first_line <= line <= info.last_line:
                    return info
        return None
    lines = text.splitlines()
    for start in _block_around(lines, line, _DEF_HEADER) if lines else ():
        if _indent_of(lines[start]):
            continue  # a method or nested function
        parsed = _parse_block(lines, start)
        candidate = parsed[0].body[0] if parsed else None
        if parsed and isinstance(candidate, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return function_info(candidate, line_offset=parsed[1])
    return None
