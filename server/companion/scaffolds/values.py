"""Code fragments the scaffold templates are filled with: default bodies, sample arguments
for generated tests, pydantic field lines. Each fragment is valid on its own, so every
rendered scaffold compiles even when a model never touches it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from companion.scaffolds.document import ClassInfo, Field, FunctionInfo

# `$body` defaults: what the scaffold does until a model (or the user) writes the real thing.
DEFAULT_BODIES = {
    "cli_argparse": (
        'greeting = f"Hello, {args.name}!"\n'
        "print(greeting.upper() if args.shout else greeting)\n"
        "return 0"
    ),
    "package_main": 'print("Hello from $package")\nreturn 0',
}

# Sample argument per annotation, after `typing.` and generic arguments are stripped.
_SAMPLES = {
    "int": "1",
    "float": "1.5",
    "complex": "1j",
    "str": '"text"',
    "bytes": 'b"data"',
    "bool": "True",
    "None": "None",
    "Any": "None",
    "object": "object()",
    "Path": "Path(__file__)",  # the generated test file imports Path already
    "list": "[]",
    "List": "[]",
    "Sequence": "[]",
    "Iterable": "[]",
    "dict": "{}",
    "Dict": "{}",
    "Mapping": "{}",
    "set": "set()",
    "Set": "set()",
    "frozenset": "frozenset()",
    "tuple": "()",
    "Tuple": "()",
}
_LIST_LIKE = {"list", "List", "Sequence", "Iterable"}
_DICT_LIKE = {"dict", "Dict", "Mapping"}
# isinstance() checks a generated test may assert on a declared return type.
_RETURN_CHECKS = {
    "int": "int",
    "float": "(int, float)",  # an int is a valid float return
    "str": "str",
    "bytes": "bytes",
    "bool": "bool",
    "list": "list",
    "List": "list",
    "dict": "dict",
    "Dict": "dict",
    "set": "set",
    "Set": "set",
    "tuple": "tuple",
    "Tuple": "tuple",
}
# Names pydantic can resolve in the generated router module without extra imports.
_PYDANTIC_SAFE = {
    "str",
    "int",
    "float",
    "bool",
    "bytes",
    "list",
    "dict",
    "set",
    "tuple",
    "None",
    "Any",
}
_TEXT_WORDS = (
    "name",
    "text",
    "path",
    "word",
    "msg",
    "message",
    "title",
    "key",
    "label",
    "prefix",
    "suffix",
    "url",
)
_LIST_WORDS = ("items", "values", "numbers", "nums", "xs", "seq", "list", "elements")


def block(text: str, indent: int) -> str:
    """Indent every line but the first, for a placeholder already at `indent` columns."""
    pad = " " * indent
    return "\n".join(
        line if index == 0 or not line else pad + line
        for index, line in enumerate(text.splitlines())
    )


def tuple_literal(names: list[str]) -> str:
    if not names:
        return "()"
    quoted = ", ".join(f'"{name}"' for name in names)
    return f"({quoted},)" if len(names) == 1 else f"({quoted})"


def _annotation_node(annotation: str) -> ast.expr | None:
    try:
        node = ast.parse(annotation.strip("'\""), mode="eval").body
    except SyntaxError:
        return None
    return node


def _name_of(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):  # typing.List -> List
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Constant) and node.value is None:
        return "None"
    return ""


def _sample_node(node: ast.expr) -> str | None:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):  # X | None
        return (
            "None"
            if "None" in (_name_of(node.left), _name_of(node.right))
            else _sample_node(node.left)
        )
    if isinstance(node, ast.Subscript):
        base = _name_of(node.value)
        arguments = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if base == "Optional":
            return "None"
        if base == "Union":
            return _sample_node(arguments[0])
        if base in _LIST_LIKE:
            element = _sample_node(arguments[0])
            return f"[{element}]" if element else "[]"
        if base in _DICT_LIKE and len(arguments) == 2:
            key, value = _sample_node(arguments[0]), _sample_node(arguments[1])
            return f"{{{key}: {value}}}" if key and value else "{}"
        return _SAMPLES.get(base)
    return _SAMPLES.get(_name_of(node))


def sample_value(annotation: str | None, name: str) -> tuple[str, bool]:
    """(argument source, confident). Unannotated parameters are guessed from their names;
    an annotated type we cannot build gives ("None", False)."""
    if annotation is None:
        lowered = name.lower()
        if lowered.startswith(("is_", "has_", "use_")) or lowered in ("flag", "enabled", "verbose"):
            return "True", True
        if any(word in lowered for word in _LIST_WORDS):
            return "[1, 2, 3]", True
        if any(word in lowered for word in _TEXT_WORDS) or lowered == "s":
            return '"text"', True
        return "1", True
    node = _annotation_node(annotation)
    sample = _sample_node(node) if node is not None else None
    return (sample, True) if sample is not None else ("None", False)


@dataclass(frozen=True)
class GeneratedTest:
    body: str
    decorator: str
    imports: tuple[str, ...]


def generated_test(func: FunctionInfo) -> GeneratedTest:
    """One test that calls `func` with sample arguments and checks the declared return type.

    When an argument cannot be built from its annotation, the test is marked skip with the
    reason, instead of failing on a guess.
    """
    arguments: list[str] = []
    missing: list[str] = []
    for param in func.params:
        if param.has_default or param.name in ("self", "cls"):
            continue
        value, confident = sample_value(param.annotation, param.name)
        if not confident:
            missing.append(f"{param.name}: {param.annotation}")
        arguments.append(f"{param.name}={value}" if param.keyword_only else value)
    call = f"{func.name}({', '.join(arguments)})"
    imports: list[str] = []
    if func.is_async:
        imports.append("asyncio")
        call = f"asyncio.run({call})"
    returns = _annotation_node(func.returns) if func.returns else None
    check = None
    if returns is not None:  # list[int] is checked as list
        base = returns.value if isinstance(returns, ast.Subscript) else returns
        check = _RETURN_CHECKS.get(_name_of(base))
    if returns is not None and _name_of(returns) == "None":
        body = f"result = {call}\nassert result is None"
    elif check:
        body = f"result = {call}\nassert isinstance(result, {check})"
    else:
        body = f"# The call must complete; assert on its result once you know it.\n{call}"
    decorator = ""
    if missing:
        imports.append("pytest")
        reason = "needs sample values for " + ", ".join(missing)
        decorator = f"@pytest.mark.skip(reason={reason!r})\n"

    return GeneratedTest(body=body, decorator=decorator, imports=tuple(imports))


def _pydantic_annotation(annotation: str | None) -> str:
    """The field's annotation when pydantic can resolve it in the router module, else Any."""
    node = _annotation_node(annotation) if annotation else None
    if node is None:
        return "Any"
    allowed = (ast.Name, ast.Subscript, ast.Tuple, ast.BinOp, ast.BitOr, ast.Load, ast.Constant)
    for part in ast.walk(node):
        if not isinstance(part, allowed):
            return "Any"
        if isinstance(part, ast.Name) and part.id not in _PYDANTIC_SAFE:
            return "Any"
        if isinstance(part, ast.Constant) and part.value is not None:
            return "Any"
    return ast.unparse(node)


def pydantic_fields(fields: tuple[Field, ...]) -> str:
    """Body lines of the pydantic input model (4-space indented); "" when there are none."""
    lines = []
    for field in fields:
        line = f"    {field.name}: {_pydantic_annotation(field.annotation)}"
        if field.default is not None:
            line += f" = {field.default}"
        lines.append(line)
    return "\n".join(lines)


def build_body(cls: ClassInfo) -> str:
    """How the router turns validated input into an instance of the user's class."""
    if cls.keyword_init:
        return f"return {cls.name}(**data)"
    # No constructor that takes the fields: make a bare instance and set them.
    return (
        f"item = {cls.name}.__new__({cls.name})\n"
        "for name, value in data.items():\n"
        "    setattr(item, name, value)\n"
        "return item"
    )
