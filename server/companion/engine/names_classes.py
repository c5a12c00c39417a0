"""What `self` has, for the name check's `self.x` / `cls.x` (`names.py`).

In a method, x exists when it is spelled as `self.x` / `cls.x` anywhere in the class,
defined at its top level (def, class, assignment, annotation), or belongs to a base class
defined in the file (same rules), to `object` / a builtin base (enums, NamedTuple,
TypedDict too), or to an imported base as jedi completes it (when the caller passes that
lookup: `names_modules.base_resolver`). A base not known, a metaclass, a decorator other
than the dataclass kind, `__getattr__`, `setattr` or `__dict__` in the class, or a body
that goes on past what is seen: not judged (None). The class is read by indentation
from the window, or from the saved file when its header is above the window; facts are
cached per text.
"""

from __future__ import annotations

import builtins
import enum
import functools
import re
from collections.abc import Callable, Iterator

from companion.engine.context import CursorContext
from companion.engine.names_document import NAME, Document, indent, lines_of

_HEADER = re.compile(r"^([ \t]*)(?:async[ \t]+)?(def|class)[ \t]+([^\W\d]\w*)")
_CLASS = re.compile(r"^[ \t]*class[ \t]+([^\W\d]\w*)")
_DECORATOR = re.compile(r"^[ \t]*@[ \t]*([\w.]+)")
OK_DECORATORS = frozenset({
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
OBJECT_ATTRIBUTES = frozenset(dir(object))
_ENUM_ATTRIBUTES = frozenset(dir(enum.Enum)) | {"name", "value", "_name_", "_value_"}
_NAMED_TUPLE = frozenset(dir(tuple)) | {"_asdict", "_replace", "_fields", "_make",
                                        "_field_defaults"}
UNJUDGED_CLASS = ("__getattr__", "__getattribute__", "setattr(", "__dict__", "vars(self")


def _blocks_above(lines: list[str], row: int, level: int) -> Iterator[tuple[int, int]]:
    """(row, indentation) of each line above `row` that opens a block around it, read by
    indentation upward from `level` (the cursor's), innermost first."""
    for index in range(row - 1, -1, -1):
        line = lines[index]
        if _no_block_line(line):
            continue
        width = indent(line)
        if width < level:
            level = width
            yield index, width


def _cursor_level(lines: list[str], row: int, column: int) -> int:
    current = lines[row]
    return indent(current) if current[:column].strip() else column


def _takes_receiver(lines: list[str], row: int, header: re.Match[str]) -> bool:
    return _parameters(lines, row, header.end())[:1] in (["self"], ["cls"])


def _enclosing_class(lines: list[str], row: int, column: int) -> tuple[int, str] | None:
    """(header row, method name) of the class whose method holds (row, column), read by
    indentation upward; None when no method with `self`/`cls` in a class is found."""
    method = ""
    for index, width in _blocks_above(lines, row, _cursor_level(lines, row, column)):
        header = _HEADER.match(lines[index])
        if header is None:
            if width == 0:
                return None
            continue
        if header.group(2) == "def":
            if not method and _takes_receiver(lines, index, header):
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


def _no_block_line(line: str) -> bool:
    """A line that says nothing of the blocks around it, read upward: blank, a comment,
    or the closing bracket of a header that spans lines (`) -> None:`)."""
    stripped = line.lstrip()
    return not stripped or stripped.startswith(("#", ")", "]", "}"))


def _class_block(lines: list[str], header: int, to_end: bool = True
                 ) -> tuple[str, list[str], list[str], bool]:
    """The class at `header`: (its header text up to the `:`, its decorators, its body
    lines, whether the body ends within `lines`; at their end too when `to_end`: they
    run to the end of the document)."""
    width = indent(lines[header])
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
        if line.strip() and indent(line) <= width and not line.lstrip().startswith("#"):
            return head, decorators, body, True
        body.append(line)
    return head, decorators, body, to_end


Block = tuple[str, int, bool]  # a text, a class header's row, the text runs to the end
# A base class the file does not define (`Formatter`, `abc.Mapping`) → what its instances
# have, or None when not known (`names_modules.base_resolver`: jedi).
External = Callable[[str], "frozenset[str] | None"]


def _class_headers(text: str, name: str, to_end: bool = True) -> list[Block]:
    """Where `text` defines a class `name`."""
    return [(text, row, to_end) for row in _class_rows(text).get(name, ())]


@functools.lru_cache(maxsize=8)
def _class_rows(text: str) -> dict[str, tuple[int, ...]]:
    rows: dict[str, list[int]] = {}
    for index, line in enumerate(lines_of(text)):
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
                     blocks: list[Block] | None = None, external: External | None = None
                     ) -> set[str] | None:
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
    found: set[str] = set(OBJECT_ATTRIBUTES)
    complete = False
    for text, header, to_end in blocks:
        own, bases, ends = _block_facts(text, header, to_end, name)
        if own is None or bases is None:
            return None
        complete = complete or ends
        found |= own
        for base in bases:
            inherited = base_attributes(doc, base, seen | {name}, external)
            if inherited is None:
                return None
            found |= inherited
    return found if complete else None


@functools.lru_cache(maxsize=64)
def _block_facts(text: str, header: int, to_end: bool, name: str
                 ) -> tuple[frozenset[str] | None, tuple[str, ...] | None, bool]:
    """One class body's own attributes (None: not judged), its bases (None: a metaclass
    or keywords) and whether the body ends within `text`; cached for the saved file."""
    head, decorators, body, ends = _class_block(lines_of(text), header, to_end)
    if any(decorator not in OK_DECORATORS for decorator in decorators):
        return None, None, ends
    source = "\n".join(body)
    if any(marker in source for marker in UNJUDGED_CLASS):
        return None, None, ends
    found: set[str] = set()
    if "__slots__" in source:
        found.update(NAME.findall(source))
    found.update(re.findall(r"\b(?:self|cls)\s*\.\s*([^\W\d]\w*)", source))
    found.update(re.findall(rf"\b{re.escape(name)}\.([^\W\d]\w*)", source))
    found.update(re.findall(r"^[ \t]*(?:async[ \t]+)?(?:def|class)[ \t]+([^\W\d]\w*)",
                            source, re.MULTILINE))
    level = min((indent(line) for line in body if line.strip()), default=0)
    for line in body:
        if line.strip() and indent(line) == level:
            target = re.match(r"[ \t]*([^\W\d]\w*(?:[ \t]*,[ \t]*[^\W\d]\w*)*)[ \t]*"
                              r"(?::|=(?!=)|,)", line)
            if target:
                found.update(part.strip() for part in target.group(1).split(","))
    bases = _bases(head)
    return frozenset(found), tuple(bases) if bases is not None else None, ends


def base_attributes(doc: Document, base: str, seen: frozenset[str] = frozenset(),
                    external: External | None = None) -> set[str] | None:
    """What instances of the base class expression `base` have (`seen`: the classes
    already followed); None when not known."""
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
            return class_attributes(doc, plain, seen, external=external)
        kind = getattr(builtins, plain, None)
        if isinstance(kind, type):
            return set(dir(kind))
    if external is not None and re.fullmatch(r"[^\W\d]\w*(?:\.[^\W\d]\w*)*", plain):
        found = external(plain)
        return set(found) if found is not None else None
    return None


def self_attributes(doc: Document, ctx: CursorContext, external: External | None = None
                    ) -> set[str] | None:
    """The attributes `self` has at the cursor, or None when not all are known;
    `external` tells those of a base class the file does not define (or None)."""
    lines = lines_of(doc.window)
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
        return class_attributes(doc, name, blocks=blocks, external=external)
    # The class header is above the window: the saved file's class holding the method.
    if not doc.whole:
        return None
    method = _method_above(lines, doc.cursor_line)
    if not method:
        return None
    whole = lines_of(doc.whole)
    owners = {owner for row in _def_rows(doc.whole).get(method, ())
              if (owner := _owner_class(whole, row)) is not None}
    if len(owners) != 1:
        return None
    row = owners.pop()
    match = _CLASS.match(whole[row])
    if match is None:
        return None
    return class_attributes(doc, match.group(1), blocks=[(doc.whole, row, True)],
                            external=external)


@functools.lru_cache(maxsize=8)
def _def_rows(text: str) -> dict[str, tuple[int, ...]]:
    rows: dict[str, list[int]] = {}
    for index, line in enumerate(lines_of(text)):
        match = _HEADER.match(line)
        if match and match.group(2) == "def":
            rows.setdefault(match.group(3), []).append(index)
    return {name: tuple(found) for name, found in rows.items()}


def _owner_class(lines: list[str], row: int) -> int | None:
    """The row of the class whose body holds the def at `row` directly."""
    width = indent(lines[row])
    for index in range(row - 1, -1, -1):
        line = lines[index]
        if line.strip() and not line.lstrip().startswith(("#", "@")) \
                and indent(line) < width:
            return index if _CLASS.match(line) else None
    return None


def receiver_bound(doc: Document, ctx: CursorContext, name: str) -> bool | None:
    """Does a function around the cursor take parameter `name` (`self`, `cls`)? Read by
    indentation upward through the whole document when it is known (else the window):
    None when the text ends before the outermost block is seen (not judged)."""
    lines, row, top = lines_of(doc.window), doc.cursor_line, ctx.prefix_start_line == 0
    whole = lines_of(doc.whole) if doc.whole else []
    at = ctx.prefix_start_line + row
    if at < len(whole) and whole[at] == lines[row]:
        lines, row, top = whole, at, True
    level = _cursor_level(lines, row, len(ctx.line_prefix))
    for index, width in _blocks_above(lines, row, level):
        header = _HEADER.match(lines[index])
        if header is not None and header.group(2) == "def" \
                and name in _parameters(lines, index, header.end()):
            return True
        if width == 0:
            return False
        level = width
    return False if level == 0 or top else None


def _parameters(lines: list[str], row: int, start: int) -> list[str]:
    """The parameter names, in order, of the def whose header starts at `row` (it may span
    lines)."""
    text, depth = lines[row][start:], 0
    for index in range(row, min(len(lines), row + 40)):
        if index > row:
            text += " " + lines[index]
        depth = text.count("(") - text.count(")")
        if depth <= 0 and "(" in text:
            break
    inside = text[text.find("(") + 1:]
    parts: list[str] = []
    depth, part = 0, ""
    for char in inside:
        if char in "([{":
            depth += 1
        elif char in ")]}":
            if depth == 0:
                break
            depth -= 1
        if char == "," and depth == 0:
            parts.append(part)
            part = ""
        else:
            part += char
    parts.append(part)
    return [match.group(1) for part in parts
            if (match := re.match(r"\s*\**\s*([^\W\d]\w*)", part))]


def _method_above(lines: list[str], row: int) -> str:
    """The name of the method (a def with self or cls) the cursor's line is in."""
    for index, _ in _blocks_above(lines, row, _cursor_level(lines, row, len(lines[row]))):
        header = _HEADER.match(lines[index])
        if header and header.group(2) == "def" and _takes_receiver(lines, index, header):
            return header.group(3)
    return ""
