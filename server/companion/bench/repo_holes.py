"""Holes cut from real Python packages, and the names a suggestion for one may use.

The packages are third-party libraries nobody here wrote, installed in the venv (click,
rich, jinja2, httpx, pygments). A hole is a statement inside a function: one line
(single-line) or a compound statement with its body of up to eight lines (multi-line);
see bench/holes.py for the hole, the sampling and the scores they share with the JS suite.

The undefined-name check: a suggestion uses a name that does not exist at that point —
- a bare name bound nowhere in its scope: not in the enclosing functions (parameters,
  assignments, imports, loop and `with` targets, anywhere in the function), not at module
  level, not a builtin, not bound by the suggestion itself;
- an attribute missing on a known thing: `self.x` in a method of a class whose bases are
  all in the file (x is no method, class attribute or `self.x =` of that hierarchy, and
  the suggestion has not assigned `self.x` before it reads it);
  `m.x` where m is an imported module (the module, imported here, has no x and no
  submodule x);
- any other attribute that no file of the package spells, nor any builtin type has.
"""

from __future__ import annotations

import ast
import builtins
import functools
import importlib
import importlib.util
import re
import textwrap
from pathlib import Path

from companion.bench.holes import (
    MAX_MULTI_LINES,
    MIN_PREFIX_LINES,
    Hole,
    code_only,
    prefix_lines,
    spread,
)

PACKAGES = ("click", "rich", "jinja2", "httpx", "pygments")
_COMPOUND = (ast.If, ast.For, ast.While, ast.With, ast.Try)
_BUILTIN_ATTRIBUTES = frozenset(
    name for kind in (str, bytes, list, dict, set, tuple, int, float, object, type,
                      BaseException) for name in dir(kind))
_BUILTINS = frozenset(dir(builtins)) | {"__file__", "__name__", "__doc__", "__spec__",
                                        "__package__", "__builtins__", "__debug__"}


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


def imported_neighbours(path: Path, text: str, root: Path, limit: int = 3) -> tuple[str, ...]:
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


def cut_holes(path: Path, root: Path, package: str) -> tuple[list[Hole], list[Hole]]:
    """All single-line and multi-line hole candidates in one file."""
    text = path.read_text(encoding="utf-8")
    if any(mark in text for mark in ("\r", "\x0c", "\x0b", "\x1c", "\x1d", "\x1e",
                                     "\x85", "\u2028", "\u2029")):
        return [], []  # LSP and Python count these lines differently
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return [], []
    lines = text.split("\n")
    neighbours = imported_neighbours(path, text, root)
    single: list[Hole] = []
    multi: list[Hole] = []
    seen: set[int] = set()
    for node in _statements(tree):
        first, last = node.lineno - 1, (node.end_lineno or node.lineno) - 1
        if first < MIN_PREFIX_LINES or first in seen:
            continue
        source = lines[first]
        indent = source[: len(source) - len(source.lstrip())]
        if source.lstrip().startswith(("@", "elif ")) or node.col_offset != len(indent):
            continue
        if (node.end_col_offset or 0) != len(lines[last].rstrip()):
            continue  # something else on the statement's last line (`x = 1; y = 2`)
        before = prefix_lines(lines, first, indent)
        after = "\n".join(lines[last + 1 :])
        if first == last and 8 <= len(source.strip()) <= 100 \
                and not isinstance(node, _COMPOUND):
            seen.add(first)
            single.append(Hole(package, str(path), "single-line", before, source.strip(),
                               after, neighbours))
        elif isinstance(node, _COMPOUND) and 2 <= last - first + 1 <= MAX_MULTI_LINES:
            block = "\n".join(line[len(indent):] for line in lines[first : last + 1])
            multi.append(Hole(package, str(path), "multi-line", before, block.strip(),
                              after, neighbours))
    return single, multi


def collect(limit: int, packages: tuple[str, ...] = PACKAGES, seed: int = 16) -> list[Hole]:
    """About `limit` holes spread evenly over the installed packages (deterministic)."""
    roots = [(name, root) for name in packages if (root := package_dir(name)) is not None]
    if not roots:
        raise SystemExit("bench quality --suite repo: none of "
                         f"{', '.join(packages)} is installed (pip install click rich ...)")
    per_package: dict[str, tuple[list[Hole], list[Hole]]] = {}
    for name, root in roots:
        single: list[Hole] = []
        multi: list[Hole] = []
        for path in package_files(root):
            found_single, found_multi = cut_holes(path, root, name)
            single += found_single
            multi += found_multi
        per_package[name] = (single, multi)
    return spread(per_package, limit, seed)


def file_names(text: str) -> set[str]:
    """Every identifier the text spells (bound names, attributes, imports alike)."""
    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))


@functools.cache
def package_names(package: str) -> frozenset[str]:
    """Every identifier the package's files spell (the lenient attribute check)."""
    root = package_dir(package)
    found: set[str] = set()
    for path in package_files(root) if root else []:
        found |= file_names(path.read_text(encoding="utf-8"))
    return frozenset(found)


# -- what is bound where ------------------------------------------------------------------


def _targets(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def bound_names(body: list[ast.stmt], scope_only: bool = True) -> set[str]:
    """Names the statements bind in their own scope (not inside nested functions or
    classes, whose own names are bound here)."""
    found: set[str] = set()
    pending: list[ast.AST] = list(body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found.add(node.name)
            if scope_only:
                continue
        if isinstance(node, ast.Lambda) and scope_only:
            continue
        if isinstance(node, ast.Assign):
            for target in node.targets:
                found |= _targets(target)
        elif isinstance(node, ast.AnnAssign | ast.AugAssign | ast.For | ast.AsyncFor
                               | ast.NamedExpr):
            found |= _targets(node.target)
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            found |= _targets(node.optional_vars)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            found.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                found.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.Global | ast.Nonlocal):
            found |= set(node.names)
        elif isinstance(node, ast.comprehension):
            found |= _targets(node.target)
        elif isinstance(node, ast.MatchAs | ast.MatchStar) and node.name:
            found.add(node.name)
        pending.extend(ast.iter_child_nodes(node))
    return found


def _parameters(function: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> set[str]:
    arguments = function.args
    every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
    names = {argument.arg for argument in every}
    names |= {a.arg for a in (arguments.vararg, arguments.kwarg) if a is not None}
    return names


def _enclosing(tree: ast.Module, line: int) -> list[ast.AST]:
    """The functions and classes around 1-based `line`, outermost first."""
    chain: list[ast.AST] = []
    node: ast.AST = tree
    while True:
        inner = [child for child in ast.iter_child_nodes(node)
                 if isinstance(child, ast.stmt | ast.excepthandler | ast.match_case)
                 and child.__dict__.get("lineno", 0) <= line
                 <= (child.__dict__.get("end_lineno") or 0)]
        if not inner:
            return chain
        node = inner[0]
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            chain.append(node)


def _class_attributes(tree: ast.Module, name: str, seen: frozenset[str] = frozenset()
                      ) -> set[str] | None:
    """What instances of the file's class `name` have, or None when a base is not in the
    file (the attributes are not all known)."""
    classes = {node.name: node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}
    cls = classes.get(name)
    if cls is None or name in seen or cls.keywords:
        return None
    found = bound_names(cls.body) | set(_BUILTIN_ATTRIBUTES)
    for node in ast.walk(cls):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id in ("self", "cls") and isinstance(node.ctx, ast.Store):
            found.add(node.attr)
    if "__getattr__" in found - set(_BUILTIN_ATTRIBUTES):
        return None
    for base in cls.bases:
        if isinstance(base, ast.Name) and base.id in ("object",):
            continue
        if not isinstance(base, ast.Name):
            return None
        inherited = _class_attributes(tree, base.id, seen | {name})
        if inherited is None:
            return None
        found |= inherited
    return found


def _imported_modules(tree: ast.Module, package: str, module: str) -> dict[str, str]:
    """Local name → module name, for every `import m` / `from p import m` that binds a
    module (as far as it can be told without importing the file itself)."""
    found: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    found[alias.asname] = alias.name
                else:
                    head = alias.name.split(".")[0]
                    found[head] = head
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")[: -node.level]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                full = f"{base}.{alias.name}" if base else alias.name
                if _is_module(full):
                    found[alias.asname or alias.name] = full
    return found


@functools.cache
def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError, AttributeError):
        return False


@functools.cache
def _module_has(module: str, attribute: str) -> bool | None:
    try:
        loaded = importlib.import_module(module)
    except Exception:
        return None
    return hasattr(loaded, attribute) or _is_module(f"{module}.{attribute}")


def _suggestion_tree(fill: str) -> ast.Module | None:
    """The suggestion as statements: dedented, with a body for a block it opens."""
    text = textwrap.dedent(fill).rstrip()
    for attempt in (text, text + "\n    pass", text + "\n    pass\nexcept Exception:\n"
                    "    pass", text + ")", text + "]", text + "}"):
        try:
            return ast.parse(attempt)
        except (SyntaxError, ValueError):
            continue
    return None


def _module_name(hole: Hole) -> str:
    parts = Path(hole.path).with_suffix("").parts
    start = parts.index(hole.package) if hole.package in parts else len(parts) - 1
    names = list(parts[start:])
    if names[-1] == "__init__":
        names.pop()
    return ".".join(names)


def _assigned_attributes(suggestion: ast.Module) -> dict[str, tuple[int, int]]:
    """`self.x` the suggestion assigns: x → where it exists from (the end of the
    assignment; a loop's target from the loop's header on), as (line, column)."""
    found: dict[str, tuple[int, int]] = {}
    for statement in ast.walk(suggestion):
        if not isinstance(statement, ast.stmt):
            continue
        if isinstance(statement, ast.For | ast.AsyncFor):
            targets: list[ast.AST] = [statement.target]
        elif isinstance(statement, ast.Assign):
            targets = list(statement.targets)
        elif isinstance(statement, ast.AnnAssign | ast.AugAssign):
            targets = [statement.target]
        elif isinstance(statement, ast.With | ast.AsyncWith):
            targets = [item.optional_vars for item in statement.items if item.optional_vars]
        else:
            continue
        for target in targets:
            for node in ast.walk(target):
                if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) \
                        and isinstance(node.value, ast.Name) and node.value.id == "self":
                    end = target if isinstance(statement, ast.For | ast.AsyncFor | ast.With
                                               | ast.AsyncWith) else statement
                    where = (getattr(end, "end_lineno", 0) or 0,
                             getattr(end, "end_col_offset", 0) or 0)
                    found[node.attr] = min(where, found.get(node.attr, where))
    return found


def undefined_names(hole: Hole, fill: str) -> list[str] | None:
    """The names `fill` uses that do not exist at the hole (see the module doc), or None
    when the suggestion is no Python statement to check."""
    suggestion = _suggestion_tree(fill)
    if suggestion is None:
        return None
    try:
        scope_tree = ast.parse(hole.before + "pass\n" + hole.after)
    except (SyntaxError, ValueError):
        return None
    line = hole.line + 1
    chain = _enclosing(scope_tree, line)
    local: set[str] = set()  # the enclosing functions' names (they shadow modules)
    for node in chain:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            local |= bound_names(node.body) | _parameters(node)
    visible = bound_names(scope_tree.body) | _BUILTINS | local | bound_names(
        suggestion.body, scope_only=False)
    for node in ast.walk(suggestion):
        if isinstance(node, ast.Lambda):
            visible |= _parameters(node)
    methods = [n for n in chain if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    classes = [n for n in chain if isinstance(n, ast.ClassDef)]
    own_class: set[str] | None = None
    if classes and methods and chain.index(methods[-1]) > chain.index(classes[-1]):
        own_class = _class_attributes(scope_tree, classes[-1].name)
    modules = _imported_modules(scope_tree, hole.package, _module_name(hole))
    lenient = package_names(hole.package) | _BUILTIN_ATTRIBUTES | file_names(
        code_only(hole.original, "python"))
    assigned = _assigned_attributes(suggestion)
    missing: list[str] = []
    for node in ast.walk(suggestion):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            if node.id not in visible:
                missing.append(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            owner, attribute = node.value.id, node.attr
            if owner == "self" and own_class is not None and isinstance(node.ctx, ast.Load):
                made = assigned.get(attribute)
                if attribute not in own_class and (
                        made is None or made > (node.lineno, node.col_offset)):
                    missing.append(f"self.{attribute}")
            elif owner in modules and owner not in local:
                if _module_has(modules[owner], attribute) is False:
                    missing.append(f"{owner}.{attribute}")
            elif attribute not in lenient and isinstance(node.ctx, ast.Load):
                missing.append(f".{attribute}")
        elif isinstance(node, ast.Attribute) and node.attr not in lenient \
                and isinstance(node.ctx, ast.Load):
            missing.append(f".{node.attr}")
    return sorted(set(missing))
