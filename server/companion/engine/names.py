"""Names that exist: cut a suggestion back to before the first name it uses that does
not exist at the cursor (issue 16, section 4, as a validation step for every engine).

The small model invents names: `self.pushbak`, `os.path.joinpath`, a helper the module
never defined. After the post-processing, `check` reads the suggestion (Python only) and
looks at each identifier it *uses* (`names_uses.py`, tree-sitter):

- a bare name is fine when it is a keyword or builtin, bound by the suggestion itself, or
  spelled anywhere in the document as a name (not after a `.`; strings and comments count
  too: lenient on purpose) — the document as `names_document.py` reads it;
- `self.x` / `cls.x` in a method: x must be an attribute of the class as far as the file
  tells (`names_classes.py`), with what jedi completes for a base class it imports
  (`names_modules.base_resolver`, waited on as for modules below); a bare `self` / `cls`
  must be a parameter of a function around the cursor;
- `m.x` where the document imports module m (and binds m nowhere else): x must be among
  m's names as jedi completes them (`names_modules.py`, on the process's jedi thread,
  waited on at most `TYPING_WAIT_S` / `INVOKED_WAIT_S`);
- anything else (other attributes, unknown receivers, other languages): not judged.

A use in a later statement of the suggestion cuts before that statement; a use in the
cursor's own statement cuts at the name, minus the operator, comma or keyword left
dangling before it; the post-processing then runs again on what is left (it closes the
brackets). Unknown means never cut; an error in the checker keeps the suggestion.
`COMPANION_NAME_CHECK=0` turns the check off.
"""

from __future__ import annotations

import builtins
import keyword
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from companion.engine.names_classes import receiver_bound, self_attributes
from companion.engine.names_document import Document, indent
from companion.engine.names_modules import (
    BASES,
    MODULES,
    ModuleNames,
    base_resolver,
    imported_modules,
    rebound,
)
from companion.engine.names_uses import uses
from companion.engine.postcontext import PostContext

log = logging.getLogger(__name__)

__all__ = ["BASES", "ENV", "INVOKED_WAIT_S", "KNOWN", "MODULES", "TYPING_WAIT_S", "ModuleNames",
           "Use", "check", "cut_at", "enabled", "undefined"]

ENV = "COMPANION_NAME_CHECK"
TYPING_WAIT_S = 0.01  # how long a typing request waits for jedi's module names
INVOKED_WAIT_S = 0.25

KNOWN = (frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | frozenset(dir(builtins))
         | {"__file__", "__name__", "__doc__", "__spec__", "__package__", "__builtins__",
            "__debug__", "__path__", "__loader__", "__annotations__", "__dict__",
            "__module__", "__qualname__", "__class__", "reveal_type"})
_RECEIVERS = ("self", "cls")  # known where a function around the cursor takes them
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


# -- the check ------------------------------------------------------------------------------


def enabled() -> bool:
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "off", "no")


def undefined(text: str, post: PostContext, document: str = "",
              wait_s: float = TYPING_WAIT_S, modules: ModuleNames | None = None,
              bases: ModuleNames | None = None) -> list[Use]:
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
    width = indent(lines[first]) if lines[first].strip() else 0
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
        receivers: dict[str, bool | None] = {}
        for name, start, statement in found.bare:
            if name in _RECEIVERS and name not in found.defined:
                if name not in receivers:
                    in_lambda = re.search(rf"\blambda\b[^:]*\b{name}\b", before)
                    receivers[name] = True if in_lambda else receiver_bound(doc, ctx, name)
                if receivers[name] is not False:
                    continue
            elif name in known:
                continue
            missing.append(Use(name, offset(start), offset(statement)))
    attributes_of_self: set[str] | bool | None = False  # False: not computed yet
    imports: dict[str, str] | None = None
    for owner, attribute, start, statement in found.attributes:
        if owner in _RECEIVERS:
            if attributes_of_self is False:
                attributes_of_self = self_attributes(
                    doc, ctx, base_resolver(doc, ctx.path, wait_s, bases))
            assigned = found.defined_attributes.get(attribute)
            if isinstance(attributes_of_self, set) and attribute not in attributes_of_self \
                    and (assigned is None or assigned > start):
                missing.append(Use(f"{owner}.{attribute}", offset(start), offset(statement)))
            continue
        if owner in found.defined:
            continue
        if imports is None:
            imports = imported_modules(doc)
        statement_text = imports.get(owner)
        if statement_text is None or rebound(doc, owner):
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
