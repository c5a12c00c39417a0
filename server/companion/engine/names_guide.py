"""The receivers whose members are known at the cursor, sent with a request so the engine
can keep the model to names that exist while it decodes (issue 16 §4; the engine side is
`backends/name_constraint.py`, for llama.cpp and transformers).

The table holds exactly what the name check after generation (`names.py`) would judge,
so the guide never forbids what the check would keep:

- `self` and `cls`, in a method of a class the file tells completely, its imported bases
  as jedi completes them (`names_classes.self_attributes`, `names_modules.base_resolver`:
  a typing request takes what is already known);
- each module the document imports and binds nowhere else, with its names as jedi
  completes them (`names_modules`, cached per import statement). A typing request takes
  only what is already known (the lookups it starts serve the next keystroke); an
  invoked one waits for them up to the invoked cap in all.

`prefetch` starts those lookups when a document is opened or focused (the background
warm-up), so the first suggestion there is guided and checked too.

A new attribute written at the start of a line (`self.total = 0`) is a definition, not
a use: the engine leaves a receiver free where it starts the line (`FREE_AT_LINE_START`).

`bare_names` is the other half: the bare names that exist (keywords, builtins, every
name the document spells, as the check counts them), for a name the model starts where
it must be read (`return x`, `a = b`). The cursor's own line is left out (the engine adds
what it spells as it decodes), so the table stays the same keystroke after keystroke
while the user types on a line, and the engine's cache of it holds.
"""

from __future__ import annotations

import functools
import logging
import time

from companion.backends.base import MAX_BARE_NAME_CHARS
from companion.engine.context import split_lines
from companion.engine.names import INVOKED_WAIT_S, KNOWN, MODULES, ModuleNames, enabled
from companion.engine.names_classes import self_attributes
from companion.engine.names_document import Document, names_in
from companion.engine.names_modules import BASES, base_resolver, imported_modules, rebound
from companion.engine.postcontext import PostContext

log = logging.getLogger(__name__)

FREE_AT_LINE_START = ("self", "cls")
MAX_NAMES = 6000  # in one request's table, all receivers together
MAX_BARE = 20000  # bare names: a document that spells more is not guided


@functools.lru_cache(maxsize=64)
def _sorted(names: frozenset[str]) -> tuple[str, ...]:
    return tuple(sorted(names))


def member_table(post: PostContext, document: str = "", automatic: bool = True,
                 modules: ModuleNames | None = None, bases: ModuleNames | None = None
                 ) -> dict[str, tuple[str, ...]]:
    """Receiver → its names (sorted), for the receivers known at the cursor; empty for
    other languages, in a string or comment, or with the name check off."""
    ctx = post.cursor
    if not enabled() or post.spec.id != "python" or not post.lex_state.in_code:
        return {}
    try:
        return _table(post, Document.of(ctx, document), automatic, modules or MODULES,
                      bases or BASES)
    except Exception as error:  # the guide must never cost the suggestion
        log.debug("name guide failed, decoding unguided: %s", error, exc_info=True)
        return {}


def bare_names(post: PostContext, document: str = "") -> tuple[str, ...]:
    """The bare names that exist at the cursor, sorted, off the cursor's line; empty
    where the check does not judge bare names (a star import, `globals()`, no whole
    text), for other languages, in a string or comment, or with the check off."""
    ctx = post.cursor
    if not enabled() or post.spec.id != "python" or not post.lex_state.in_code:
        return ()
    try:
        doc = Document.of(ctx, document)
        if not doc.bare_judged:
            return ()
        window = split_lines(doc.window)
        del window[min(doc.cursor_line, len(window) - 1)]
        found = names_in("\n".join(window))
        if document:
            lines = split_lines(document)
            if 0 <= ctx.line < len(lines):
                del lines[ctx.line]
            found = found | names_in("\n".join(lines))
        elif doc.whole:
            found = found | names_in(doc.whole)  # the saved file: not what is typed now
        if len(found) > MAX_BARE:
            return ()
        return _sorted(KNOWN | {name for name in found if len(name) <= MAX_BARE_NAME_CHARS})
    except Exception as error:  # the guide must never cost the suggestion
        log.debug("bare-name guide failed, decoding unguided: %s", error, exc_info=True)
        return ()


def prefetch(post: PostContext, document: str) -> None:
    """Start the jedi lookups that the cursor's table needs (imported modules, imported
    base classes) without waiting for them, so the first request at a newly opened or
    focused place finds them known; called from the background warm-up."""
    member_table(post, document, automatic=True)


def _table(post: PostContext, doc: Document, automatic: bool, modules: ModuleNames,
           bases: ModuleNames) -> dict[str, tuple[str, ...]]:
    ctx = post.cursor
    table: dict[str, tuple[str, ...]] = {}
    deadline = time.monotonic() + (0.0 if automatic else INVOKED_WAIT_S)
    attributes = self_attributes(doc, ctx, base_resolver(
        doc, ctx.path, max(0.0, deadline - time.monotonic()), bases))
    if attributes is not None:
        names = _sorted(frozenset(attributes))
        for receiver in FREE_AT_LINE_START:  # as the check judges them (names.py)
            table[receiver] = names
    imports = {local: statement for local, statement in imported_modules(doc).items()
               if local not in table and not rebound(doc, local)}
    total = sum(len(names) for names in table.values())
    for local, statement in imports.items():
        found = modules.names(statement, local, ctx.path, max(0.0, deadline - time.monotonic()))
        if found is None or total + len(found) > MAX_NAMES:
            continue
        table[local] = _sorted(found)
        total += len(found)
    return table
