"""Names that exist: cut a suggestion back to before the first name it uses that does
not exist at the cursor (issue 16, section 4, as a validation step for every engine).

The small model invents names: `self.pushbak`, `os.path.joinpath`, a helper the module
never defined. After the post-processing, `check` reads the suggestion (Python only, with
tree-sitter, error-tolerant) and looks at each identifier it *uses*:

- a bare name is fine when it is a keyword or builtin, bound by the suggestion itself
  (assignment, def/class and their parameters, for/with/except/import targets,
  comprehension and lambda variables, `:=`), or spelled anywhere in the document as a
  name (not after a `.`; strings and comments count too: lenient on purpose). A
  `from m import *` or `globals()` in the document means bare names are not judged;
- `self.x` / `cls.x` in a method: x must be spelled as `self.x` / `cls.x` anywhere in the
  class, be defined at its top level (def, class, assignment, annotation), or belong to a
  base class defined in the file (same rules) or to `object` / a builtin base. A base not
  in the file, a metaclass, a decorator other than the dataclass kind, `__getattr__`,
  `setattr` or `__dict__` in the class: not judged;
- `m.x` where the document imports module m (and binds m nowhere else): x must be among
  m's names as jedi completes them (submodules included; cached per module file and its
  modification time). jedi runs on a thread of its own and a request waits for it at
  most a few ms (typing) or a quarter second (invoked); not known in time: not judged
  (the answer is cached for the next request);
- anything else (other attributes, unknown receivers, other languages): not judged.

The document is the `document` text when the caller has it, else the cursor window
(prefix + suffix) together with the file on disk (cached by modification time): imports
and definitions above the window must be seen. Without either, bare names are judged
only when the window starts at the top of the file.

A use in a later statement of the suggestion cuts before that statement; a use in the
cursor's own statement cuts at the name, minus the operator, comma or keyword left
dangling before it; the post-processing then runs again on what is left (it closes the
brackets). Unknown means never cut; an error in the checker keeps the suggestion.
`COMPANION_NAME_CHECK=0` turns the check off.
"""

from __future__ import annotations

import builtins
import enum
import functools
import keyword
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path

from tree_sitter import Node

from companion.engine import syntax
from companion.engine.context import CursorContext
from companion.engine.languages import spec_for
from companion.engine.postcontext import PostContext

log = logging.getLogger(__name__)

ENV = "COMPANION_NAME_CHECK"
TYPING_WAIT_S = 0.01  # how long a typing request waits for jedi's module names
INVOKED_WAIT_S = 0.25
MAX_DISK_BYTES = 2_000_000

_NAME = re.compile(r"(?<![.\w])([^\W\d]\w*)")
_STAR_IMPORT = re.compile(r"^\s*from\s+\S+\s+import\s+\*", re.MULTILINE)
_HEADER = re.compile(r"^([ \t]*)(?:async[ \t]+)?(def|class)[ \t]+([^\W\d]\w*)")
_CLASS = re.compile(r"^[ \t]*class[ \t]+([^\W\d]\w*)")
_DECORATOR = re.compile(r"^[ \t]*@[ \t]*([\w.]+)")
_IMPORT = re.compile(r"^[ \t]*import[ \t]+([^\n#;]+)", re.MULTILINE)
_FROM_IMPORT = re.compile(
    r"^[ \t]*from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#;]+)", re.MULTILINE)
_OK_DECORATORS = frozenset({
    "dataclass", "dataclasses.dataclass", "total_ordering", "functools.total_ordering",
    "attr.s", "attr.attrs", "attrs.define", "attr.define", "define", "attrs.frozen",
    "frozen", "final", "typing.final", "runtime_checkable", "typing.runtime_checkable",
    "unique", "enum.unique",
})
_NO_ATTRIBUTE_BASES = frozenset({
    "object", "ABC", "abc.ABC", "Generic", "typing.Generic", "Protocol", "typing.Protocol",
})
_ENUM_BASES = frozenset({"Enum", "IntEnum", "Flag", "IntFlag", "StrEnum", "enum.Enum",
                         "enum.IntEnum", "enum.Flag", "enum.IntFlag", "enum.StrEnum"})
_OBJECT = frozenset(dir(object))
_ENUM_ATTRIBUTES = frozenset(dir(enum.Enum)) | {"name", "value", "_name_", "_value_"}
_NAMED_TUPLE = frozenset(dir(tuple)) | {"_asdict", "_replace", "_fields", "_make",
                                        "_field_defaults"}
_UNJUDGED_CLASS = ("__getattr__", "__getattribute__", "setattr(", "__dict__", "vars(self")
KNOWN = (frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | frozenset(dir(builtins))
         | {"__file__", "__name__", "__doc__", "__spec__", "__package__", "__builtins__",
            "__debug__", "__path__", "__loader__", "__annotations__", "__dict__",
            "__module__", "__qualname__", "__class__", "reveal_type", "self", "cls"})
# Tokens that need something after them: a cut right after one drops it too.
_DANGLING = re.compile(
    r"(?:[-+*/%@&|^~<>=!,.]|\*\*|//|<<|>>|->|\b(?:and|or|not|in|is|if|elif|else|lambda|"
    r"await|return|yield|raise|from|import|as|assert|del|with|while|for|async|global|"
    r"nonlocal)\b)\s*$")


@dataclass(frozen=True)
class Use:
    """A name the suggestion uses: as shown (`name`, `self.x`, `m.x`), where it starts
    in the suggestion (its receiver's start for an attribute) and the start of the
    statement around it (negative when that is before the cursor)."""

    name: str
    start: int
    statement: int


# -- the document -------------------------------------------------------------------------


_disk_lock = threading.Lock()
_disk: OrderedDict[str, tuple[tuple[int, int], str]] = OrderedDict()


def disk_text(path: str) -> str:
    """The saved file at `path` ("" when there is none), cached by mtime and size."""
    if not path:
        return ""
    try:
        stat = os.stat(path)
    except OSError:
        return ""
    key = (stat.st_mtime_ns, stat.st_size)
    with _disk_lock:
        cached = _disk.get(path)
        if cached is not None and cached[0] == key:
            _disk.move_to_end(path)
            return cached[1]
    if stat.st_size > MAX_DISK_BYTES:
        return ""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    with _disk_lock:
        _disk[path] = (key, text)
        while len(_disk) > 16:
            _disk.popitem(last=False)
    return text


@dataclass
class Document:
    """What the checker knows of the document: the window, and the whole text if any."""

    window: str  # prefix + suffix
    cursor_line: int  # the cursor's line in `window`
    whole: str  # the whole document ("" when not known)
    bare_judged: bool  # are bare names judged at all
    window_to_end: bool  # the window runs to the end of the document

    @classmethod
    def of(cls, ctx: CursorContext, document: str = "") -> Document:
        window = ctx.prefix + ctx.suffix
        whole = document or disk_text(ctx.path)
        bare = bool(document or whole or ctx.prefix_start_line == 0)
        if _dynamic_names(window) or (whole and _dynamic_names(whole)):
            bare = False
        to_end = bool(document) and document.endswith(ctx.suffix)
        return cls(window, ctx.prefix.count("\n"), whole, bare, to_end)

    @property
    def texts(self) -> tuple[str, ...]:
        return (self.window, self.whole) if self.whole else (self.window,)

    def names(self) -> set[str]:
        found: set[str] = set()
        for text in self.texts:
            found |= _names_in(text)
        return found


@functools.lru_cache(maxsize=8)
def _dynamic_names(text: str) -> bool:
    """A star import or `globals()`: names that the text does not spell may exist."""
    return "globals()" in text or bool(_STAR_IMPORT.search(text))


@functools.lru_cache(maxsize=8)
def _names_in(text: str) -> frozenset[str]:
    """Every name `text` spells (not after a `.`); cached: the saved file comes back as
    the same string object while it is unchanged."""
    return frozenset(_NAME.findall(text))


@functools.lru_cache(maxsize=8)
def _lines_of(text: str) -> list[str]:
    return text.split("\n")


# -- what the suggestion uses and defines (tree-sitter) -------------------------------------


def _identifiers(node: Node) -> list[Node]:
    """The identifiers a binding target binds (`a`, `a, *b`, `(a, b)`; not `x.a`, `x[a]`)."""
    if node.type == "identifier":
        return [node]
    if node.type in ("pattern_list", "tuple_pattern", "list_pattern", "tuple", "list",
                     "list_splat_pattern", "parenthesized_expression", "as_pattern_target",
                     "expression_list", "list_splat", "dictionary_splat_pattern"):
        found: list[Node] = []
        for child in node.named_children:
            found.extend(_identifiers(child))
        return found
    return []


def _bindings(root: Node) -> set[int]:
    """Start bytes of the identifiers that the code binds (a cheap single walk)."""
    bound: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        kind = node.type
        targets: list[Node | None] = []
        if kind in ("assignment", "augmented_assignment", "for_statement", "for_in_clause"):
            targets.append(node.child_by_field_name("left"))
        elif kind in ("function_definition", "class_definition", "named_expression"):
            targets.append(node.child_by_field_name("name"))
        elif kind in ("parameters", "lambda_parameters"):
            for child in node.named_children:
                if child.type == "identifier":
                    targets.append(child)
                elif child.type in ("default_parameter", "typed_default_parameter"):
                    targets.append(child.child_by_field_name("name"))
                elif child.type == "typed_parameter":
                    targets.extend(child.named_children[:1])
                elif child.type in ("list_splat_pattern", "dictionary_splat_pattern"):
                    targets.append(child)
        elif kind == "as_pattern":
            targets.append(node.child_by_field_name("alias"))
        elif kind in ("global_statement", "nonlocal_statement"):
            targets.extend(node.named_children)
        elif kind == "keyword_argument":
            targets.append(node.child_by_field_name("name"))
        elif kind in ("import_statement", "import_from_statement", "future_import_statement"):
            bound.update(_every_identifier(node))  # a module path is no use of a name
        elif kind == "case_pattern" or kind == "keyword_pattern":
            bound.update(_every_identifier(node))  # match patterns bind (lenient)
        for target in targets:
            if target is not None:
                for identifier in _identifiers(target):
                    bound.add(identifier.start_byte)
        stack.extend(node.children)
    return bound


def _every_identifier(node: Node) -> set[int]:
    found: set[int] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type == "identifier":
            found.add(current.start_byte)
        stack.extend(current.children)
    return found


def _statement_start(node: Node) -> int:
    """The start byte of the statement around `node`."""
    current: Node | None = node
    while current is not None and current.parent is not None:
        if current.parent.type in ("module", "block"):
            return current.start_byte
        current = current.parent
    return node.start_byte


@dataclass(frozen=True)
class Uses:
    bare: list[tuple[str, int, int]]  # (name, start byte, statement start byte)
    attributes: list[tuple[str, str, int, int]]  # (receiver, attribute, start, statement)
    defined: set[str]  # names the suggestion binds
    defined_attributes: set[str]  # `self.x = ...` in the suggestion: x


def uses(snippet: bytes, base: int) -> Uses:
    """What the code in `snippet` from byte `base` on uses and binds."""
    tree = syntax.parse(spec_for("python"), snippet.decode("utf-8", errors="replace"))
    if tree is None:
        return Uses([], [], set(), set())
    root = tree.root_node
    bound = _bindings(root)
    bare: list[tuple[str, int, int]] = []
    attributes: list[tuple[str, str, int, int]] = []
    defined: set[str] = set()
    defined_attributes: set[str] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" and node.end_byte > base:
            continue  # what does not parse (prose, a half statement) is not judged
        stack.extend(reversed(node.children))
        if node.end_byte <= base:
            continue
        if node.type == "attribute":
            receiver = node.child_by_field_name("object")
            attribute = node.child_by_field_name("attribute")
            if receiver is None or attribute is None or receiver.type != "identifier":
                continue
            owner = _text(receiver)
            if node.parent is not None and _is_target(node):
                defined_attributes.add(_text(attribute))
            elif attribute.end_byte > base:
                attributes.append((owner, _text(attribute), receiver.start_byte - base,
                                   _statement_start(node) - base))
            continue
        if node.type != "identifier":
            continue
        parent = node.parent
        if parent is not None and parent.type == "attribute" and \
                parent.child_by_field_name("attribute") == node:
            continue
        if node.start_byte in bound:
            defined.add(_text(node))
            continue
        bare.append((_text(node), node.start_byte - base, _statement_start(node) - base))
    return Uses(bare, attributes, defined, defined_attributes)


def _is_target(node: Node) -> bool:
    """Is the attribute `node` (part of) the target of an assignment or loop?"""
    child, parent = node, node.parent
    while parent is not None and parent.type in ("pattern_list", "tuple_pattern",
                                                 "list_pattern", "tuple", "list"):
        child, parent = parent, parent.parent
    if parent is None:
        return False
    if parent.type in ("assignment", "augmented_assignment", "for_statement"):
        return parent.child_by_field_name("left") == child
    return parent.type == "as_pattern_target"


def _text(node: Node) -> str:
    return (node.text or b"").decode("utf-8", errors="replace")


# -- self's class ---------------------------------------------------------------------------


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _enclosing_class(lines: list[str], row: int, column: int) -> tuple[int, str] | None:
    """(header row, method name) of the class whose method holds (row, column), read by
    indentation upward; None when no method with `self`/`cls` in a class is found."""
    current = lines[row]
    level = _indent(current) if current[:column].strip() else column
    method = ""
    for index in range(row - 1, -1, -1):
        line = lines[index]
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        width = _indent(line)
        if width >= level:
            continue
        level = width
        header = _HEADER.match(line)
        if header is None:
            if width == 0:
                return None
            continue
        if header.group(2) == "def":
            params = line[header.end():].lstrip("( \t")
            if not method and re.match(r"(self|cls)\b", params):
                method = header.group(3)
            elif not method:
                continue  # a nested function: its enclosing method may have self
        elif method:
            return index, method
        else:
            return None
        if width == 0:
            return None
    return None


def _class_block(lines: list[str], header: int, to_end: bool = True
                 ) -> tuple[str, list[str], list[str], bool]:
    """The class at `header`: (its header text up to the `:`, its decorators, its body
    lines, whether the body ends within `lines`; at their end too when `to_end`: they
    run to the end of the document)."""
    width = _indent(lines[header])
    head = lines[header]
    end = header
    depth = head.count("(") - head.count(")")
    while depth > 0 and end + 1 < len(lines):
        end += 1
        head += " " + lines[end].strip()
        depth = head.count("(") - head.count(")")
    decorators = []
    for index in range(header - 1, -1, -1):
        match = _DECORATOR.match(lines[index])
        if match is None:
            break
        decorators.append(match.group(1))
    body: list[str] = []
    for line in lines[end + 1:]:
        if line.strip() and _indent(line) <= width and not line.lstrip().startswith("#"):
            return head, decorators, body, True
        body.append(line)
    return head, decorators, body, to_end


Block = tuple[str, int, bool]  # a text, a class header's row, the text runs to the end


def _class_headers(text: str, name: str, to_end: bool = True) -> list[Block]:
    """Where `text` defines a class `name`."""
    return [(text, row, to_end) for row in _class_rows(text).get(name, ())]


@functools.lru_cache(maxsize=8)
def _class_rows(text: str) -> dict[str, tuple[int, ...]]:
    rows: dict[str, list[int]] = {}
    for index, line in enumerate(_lines_of(text)):
        match = _CLASS.match(line)
        if match:
            rows.setdefault(match.group(1), []).append(index)
    return {name: tuple(found) for name, found in rows.items()}


def _bases(head: str) -> list[str] | None:
    """The base class expressions of a `class X(...)` header; None with a metaclass or
    keywords."""
    match = re.match(r"\s*class\s+\w+\s*(?:\[[^\]]*\])?\s*(\((.*)\))?\s*:", head)
    if match is None:
        return None
    inside = match.group(2) or ""
    parts, depth, part = [], 0, ""
    for char in inside + ",":
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        if char == "," and depth == 0:
            if part.strip():
                parts.append(part.strip())
            part = ""
        else:
            part += char
    if any("=" in part for part in parts):
        return None
    return parts


def class_attributes(doc: Document, name: str, seen: frozenset[str] = frozenset(),
                     blocks: list[Block] | None = None) -> set[str] | None:
    """What instances of class `name` have, as far as the document tells; None when not
    all is known (a base not in the file, a metaclass, dynamic attributes, a body that
    goes on past what is seen)."""
    if name in seen:
        return None
    if blocks is None:
        blocks = [*_class_headers(doc.window, name, doc.window_to_end),
                  *(_class_headers(doc.whole, name) if doc.whole else [])]
    if not blocks:
        return None
    found: set[str] = set(_OBJECT)
    complete = False
    for text, header, to_end in blocks:
        own, bases, ends = _block_facts(text, header, to_end, name)
        if own is None or bases is None:
            return None
        complete = complete or ends
        found |= own
        for base in bases:
            inherited = _base_attributes(doc, base, seen | {name})
            if inherited is None:
                return None
            found |= inherited
    return found if complete else None


@functools.lru_cache(maxsize=64)
def _block_facts(text: str, header: int, to_end: bool, name: str
                 ) -> tuple[frozenset[str] | None, tuple[str, ...] | None, bool]:
    """One class body's own attributes (None: not judged), its bases (None: a metaclass
    or keywords) and whether the body ends within `text`; cached for the saved file."""
    head, decorators, body, ends = _class_block(_lines_of(text), header, to_end)
    if any(decorator not in _OK_DECORATORS for decorator in decorators):
        return None, None, ends
    source = "\n".join(body)
    if any(marker in source for marker in _UNJUDGED_CLASS):
        return None, None, ends
    found: set[str] = set()
    if "__slots__" in source:
        found.update(_NAME.findall(source))
    found.update(re.findall(r"\b(?:self|cls)\s*\.\s*([^\W\d]\w*)", source))
    found.update(re.findall(rf"\b{re.escape(name)}\.([^\W\d]\w*)", source))
    found.update(re.findall(r"^[ \t]*(?:async[ \t]+)?(?:def|class)[ \t]+([^\W\d]\w*)",
                            source, re.MULTILINE))
    level = min((_indent(line) for line in body if line.strip()), default=0)
    for line in body:
        if line.strip() and _indent(line) == level:
            target = re.match(r"[ \t]*([^\W\d]\w*(?:[ \t]*,[ \t]*[^\W\d]\w*)*)[ \t]*"
                              r"(?::|=(?!=)|,)", line)
            if target:
                found.update(part.strip() for part in target.group(1).split(","))
    bases = _bases(head)
    return frozenset(found), tuple(bases) if bases is not None else None, ends


def _base_attributes(doc: Document, base: str, seen: frozenset[str]) -> set[str] | None:
    plain = re.sub(r"\[.*\]$", "", base).strip()
    if plain in _NO_ATTRIBUTE_BASES:
        return set()
    if plain in _ENUM_BASES:
        return set(_ENUM_ATTRIBUTES) | (set(dir(int)) if "Int" in plain else set())
    if plain in ("NamedTuple", "typing.NamedTuple"):
        return set(_NAMED_TUPLE)
    if plain in ("TypedDict", "typing.TypedDict"):
        return set(dir(dict))
    if re.fullmatch(r"[^\W\d]\w*", plain):
        if any(_class_headers(text, plain) for text in doc.texts):
            return class_attributes(doc, plain, seen)
        kind = getattr(builtins, plain, None)
        if isinstance(kind, type):
            return set(dir(kind))
    return None


def self_attributes(doc: Document, ctx: CursorContext) -> set[str] | None:
    """The attributes `self` has at the cursor, or None when not all are known."""
    lines = _lines_of(doc.window)
    found = _enclosing_class(lines, doc.cursor_line, len(ctx.line_prefix))
    if found is not None:
        header, _ = found
        head = _CLASS.match(lines[header])
        if head is None:
            return None
        name = head.group(1)
        _, _, _, ends = _class_block(lines, header, doc.window_to_end)
        blocks: list[Block] = [(doc.window, header, True)] if ends else []
        if doc.whole:
            blocks.extend(_class_headers(doc.whole, name))
        if not blocks:
            return None
        return class_attributes(doc, name, blocks=blocks)
    # The class header is above the window: the saved file's class holding the method.
    if not doc.whole:
        return None
    method = _method_above(lines, doc.cursor_line)
    if not method:
        return None
    whole = _lines_of(doc.whole)
    owners = {owner for row in _def_rows(doc.whole).get(method, ())
              if (owner := _owner_class(whole, row)) is not None}
    if len(owners) != 1:
        return None
    row = owners.pop()
    match = _CLASS.match(whole[row])
    if match is None:
        return None
    return class_attributes(doc, match.group(1), blocks=[(doc.whole, row, True)])


@functools.lru_cache(maxsize=8)
def _def_rows(text: str) -> dict[str, tuple[int, ...]]:
    rows: dict[str, list[int]] = {}
    for index, line in enumerate(_lines_of(text)):
        match = _HEADER.match(line)
        if match and match.group(2) == "def":
            rows.setdefault(match.group(3), []).append(index)
    return {name: tuple(found) for name, found in rows.items()}


def _owner_class(lines: list[str], row: int) -> int | None:
    """The row of the class whose body holds the def at `row` directly."""
    width = _indent(lines[row])
    for index in range(row - 1, -1, -1):
        line = lines[index]
        if line.strip() and not line.lstrip().startswith(("#", "@")) \
                and _indent(line) < width:
            return index if _CLASS.match(line) else None
    return None


def _method_above(lines: list[str], row: int) -> str:
    """The name of the method (a def with self or cls) the cursor's line is in."""
    level = _indent(lines[row]) if lines[row].strip() else len(lines[row])
    for index in range(row - 1, -1, -1):
        line = lines[index]
        if not line.strip():
            continue
        width = _indent(line)
        if width >= level:
            continue
        level = width
        header = _HEADER.match(line)
        if header and header.group(2) == "def" and re.match(
                r"(self|cls)\b", line[header.end():].lstrip("( \t")):
            return header.group(3)
    return ""


# -- modules (jedi, on a thread of its own) -------------------------------------------------


def imported_modules(doc: Document) -> dict[str, str]:
    """Local name → the import statement that binds it (`import a.b as m`, `from p import
    m`), for names bound by imports only."""
    found: dict[str, str] = {}
    for text in reversed(doc.texts):  # the window (newer) wins over the saved file
        found.update(_imports_in(text))
    return found


@functools.lru_cache(maxsize=8)
def _imports_in(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for match in _IMPORT.finditer(text):
        for part in match.group(1).split(","):
            words = part.split()
            if not words or not re.fullmatch(r"[\w.]+", words[0]):
                continue
            if len(words) == 3 and words[1] == "as":
                found[words[2]] = f"import {words[0]} as {words[2]}"
            elif len(words) == 1:
                head = words[0].split(".")[0]
                found.setdefault(head, f"import {head}")
    for match in _FROM_IMPORT.finditer(text):
        module, names = match.group(1), match.group(2).strip("() \t\n")
        for part in names.split(","):
            words = part.split()
            if not words or not re.fullmatch(r"\w+", words[0]):
                continue
            local = words[2] if len(words) == 3 and words[1] == "as" else words[0]
            found[local] = f"from {module} import {words[0]}" + (
                f" as {local}" if local != words[0] else "")
    return found


def _rebound(doc: Document, name: str) -> bool:
    """Is `name` bound by anything but an import (an assignment, a loop, a parameter)?"""
    return any(_rebound_in(text, name) for text in doc.texts)


@functools.lru_cache(maxsize=64)
def _rebound_in(text: str, name: str) -> bool:
    escaped = re.escape(name)
    pattern = re.compile(
        rf"(?<![.\w]){escaped}\s*(?::[^=\n]*)?=(?!=)|\bfor\s+{escaped}\b|"
        rf"(?<!import )\bas\s+{escaped}\b|def\s+\w+\([^)]*\b{escaped}\b|"
        rf"(?:def|class)\s+{escaped}\b|\b{escaped}\s*,[^=\n]*=(?!=)")
    return bool(pattern.search(text))


class ModuleNames:
    """jedi's names of modules, looked up on one thread, cached per import statement and
    checked against the module file's modification time."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="companion-names")
        self._lock = threading.Lock()
        self._done: dict[tuple[str, str], tuple[str, int, frozenset[str] | None]] = {}
        self._pending: dict[tuple[str, str], Future[None]] = {}
        self.lookups = 0

    def names(self, statement: str, local: str, path: str, wait_s: float
              ) -> frozenset[str] | None:
        """The module's names, or None: not a module, not known, or not known in time."""
        key = (path, statement)
        with self._lock:
            done = self._done.get(key)
            if done is not None and _fresh(done[0], done[1]):
                return done[2]
            future = self._pending.get(key)
            if future is None:
                future = self._pool.submit(self._lookup, key, statement, local, path)
                self._pending[key] = future
        try:
            future.result(timeout=max(0.0, wait_s))
        except FutureTimeout:
            return None
        except Exception as error:
            log.debug("module names for %r failed: %s", statement, error)
            return None
        with self._lock:
            done = self._done.get(key)
        return done[2] if done is not None else None

    def _lookup(self, key: tuple[str, str], statement: str, local: str, path: str) -> None:
        self.lookups += 1
        module_path, mtime, found = "", 0, None
        try:
            module_path, mtime, found = _jedi_names(statement, local, path)
        except Exception as error:  # jedi on odd code: unknown, never an error
            log.debug("jedi could not resolve %r: %s", statement, error)
        with self._lock:
            self._done[key] = (module_path, mtime, found)
            self._pending.pop(key, None)
            while len(self._done) > 512:
                self._done.pop(next(iter(self._done)))


def _fresh(module_path: str, mtime: int) -> bool:
    if not module_path:
        return True
    try:
        return os.stat(module_path).st_mtime_ns == mtime
    except OSError:
        return False


def _jedi_names(statement: str, local: str, path: str) -> tuple[str, int, frozenset[str] | None]:
    import jedi  # type: ignore[import-untyped]

    from companion.engine.repo_context import project_root

    project = jedi.Project(project_root(path), smart_sys_path=True) if path else None
    code = f"{statement}\n{local}."
    script = jedi.Script(code=code, path=path or None, project=project)
    inferred = script.infer(2, 0)
    if not inferred or any(definition.type != "module" for definition in inferred):
        return "", 0, None
    module_path = str(inferred[0].module_path or "")
    mtime = 0
    if module_path:
        try:
            mtime = os.stat(module_path).st_mtime_ns
        except OSError:
            module_path = ""
    names = frozenset(completion.name for completion in script.complete(2, len(local) + 1))
    if not names or "__getattr__" in names:
        return module_path, mtime, None  # a module that makes names up as asked
    return module_path, mtime, names | _OBJECT | {"__file__", "__path__", "__all__"}


MODULES = ModuleNames()


# -- the check ------------------------------------------------------------------------------


def enabled() -> bool:
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "off", "no")


def undefined(text: str, post: PostContext, document: str = "",
              wait_s: float = TYPING_WAIT_S, modules: ModuleNames | None = None) -> list[Use]:
    """The uses in suggestion `text` of names that do not exist at the cursor, in order
    (none in a string or a comment: prose there)."""
    ctx = post.cursor
    if not text.strip() or post.spec.id != "python" or not post.lex_state.in_code:
        return []
    modules = modules or MODULES
    doc = Document.of(ctx, document)
    # The cursor's statement from the line its outermost open bracket is on.
    lines = ctx.prefix.split("\n")
    first = _statement_row(lines)
    before = "\n".join(lines[first:])
    width = _indent(lines[first]) if lines[first].strip() else 0
    head = "if True:\n" if width else ""
    snippet = (head + before + text).encode("utf-8")
    base = len((head + before).encode("utf-8"))
    found = uses(snippet, base)
    body = text.encode("utf-8")
    missing: list[Use] = []

    def offset(byte: int) -> int:
        return len(body[: max(0, byte)].decode("utf-8", errors="replace")) if byte > 0 else byte

    if doc.bare_judged:
        known = KNOWN | found.defined | doc.names()
        for name, start, statement in found.bare:
            if name not in known:
                missing.append(Use(name, offset(start), offset(statement)))
    attributes_of_self: set[str] | bool | None = False  # False: not computed yet
    imports: dict[str, str] | None = None
    for owner, attribute, start, statement in found.attributes:
        if owner in ("self", "cls"):
            if attributes_of_self is False:
                attributes_of_self = self_attributes(doc, ctx)
            if isinstance(attributes_of_self, set) and attribute not in attributes_of_self \
                    and attribute not in found.defined_attributes:
                missing.append(Use(f"{owner}.{attribute}", offset(start), offset(statement)))
            continue
        if owner in found.defined:
            continue
        if imports is None:
            imports = imported_modules(doc)
        statement_text = imports.get(owner)
        if statement_text is None or _rebound(doc, owner):
            continue
        names = modules.names(statement_text, owner, ctx.path, wait_s)
        if names is not None and attribute not in names:
            missing.append(Use(f"{owner}.{attribute}", offset(start), offset(statement)))
    if missing and (post.situation.in_string or post.situation.in_comment):
        return []  # a docstring that started above what the lexer reads: prose
    missing.sort(key=lambda use: use.start)
    return missing


def _statement_row(lines: list[str]) -> int:
    """The row (in `lines`, the prefix) where the cursor's statement starts: the line of
    the outermost bracket still open at the cursor, within the last 30 lines."""
    depth = 0
    row = len(lines) - 1
    first = max(0, len(lines) - 30)
    for index in range(len(lines) - 1, first - 1, -1):
        line = re.sub(r"#.*$", "", re.sub(r"(['\"]).*?\1", "", lines[index]))
        for char in reversed(line):
            if char in ")]}":
                depth += 1
            elif char in "([{":
                depth -= 1
        if depth < 0:
            row, depth = index, 0
    while row > first and lines[row - 1].rstrip().endswith("\\"):
        row -= 1  # a backslash continuation
    return row


def cut_at(text: str, use: Use) -> str:
    """`text` cut back before `use`: before its statement when that statement starts in
    the suggestion (and before the block openers that would be left without a body),
    else at the name, minus the operator, comma or keyword that would dangle."""
    if use.statement >= 0:
        kept = text[: use.statement]
        while True:
            kept = kept.rstrip().removesuffix(";").rstrip()
            last = kept.rsplit("\n", 1)[-1]
            if not kept or not last.endswith(":"):
                return kept
            kept = kept[: len(kept) - len(last)]
    kept = text[: max(0, use.start)].rstrip()
    while True:
        trimmed = _DANGLING.sub("", kept).rstrip()
        if trimmed == kept:
            break
        kept = trimmed
    return kept + _closers_after(text[max(0, use.start):]) if kept else kept


def _closers_after(rest: str) -> str:
    """The closing brackets in `rest` that close what was open before it, in order (the
    rest of the statement's `)` after a cut argument)."""
    code = re.sub(r"#[^\n]*", "", re.sub(r"(['\"])(?:\\.|(?!\1).)*\1", '""', rest))
    depth, closers = 0, ""
    for char in code:
        if char in "([{":
            depth += 1
        elif char in ")]}":
            if depth:
                depth -= 1
            else:
                closers += char
    return closers


def check(text: str, post: PostContext, reclean: Callable[[str], str],
          document: str = "", automatic: bool = True) -> str:
    """The suggestion cut back before its first use of a name that does not exist, then
    post-processed again by `reclean`; unchanged when all is known or on any error."""
    if not text or not enabled():
        return text
    try:
        started = time.perf_counter()
        missing = undefined(text, post, document,
                            TYPING_WAIT_S if automatic else INVOKED_WAIT_S)
        if not missing:
            return text
        kept = cut_at(text, missing[0])
        result = reclean(kept) if kept.strip() else ""
        log.debug("names: %s do not exist; %r cut to %r (%.1f ms)",
                  [use.name for use in missing], text, result,
                  (time.perf_counter() - started) * 1000)
        return result
    except Exception as error:  # the checker must never cost the suggestion
        log.debug("name check failed, suggestion kept: %s", error, exc_info=True)
        return text
