"""Names that exist, while the model decodes (issue 16 §4: monitor-guided decoding,
Agrawal et al., NeurIPS 2023), for engines that let us touch the logits (llama.cpp,
transformers).

The server sends, with a request, the receivers whose members it knows at the cursor
(`self`/`cls` in a method whose class the file tells completely, modules the document
imports, as jedi completes them: `engine/names_guide.py`) and the cursor line's text
before the answer. At each decoding step `NameConstraint.mask` reads that line plus what
was decoded so far:

- right after `<receiver>.` plus a partial identifier p, the only tokens allowed are
  those that continue p towards one of the receiver's names that start with p (a piece
  of the rest of the name, or the rest of it followed by a non-identifier character);
  once p is a whole name, anything that ends the identifier is allowed too;
- right after `<receiver>` itself, a token that brings its own dot (`.get`) must fit
  the same way;
- a bare name that starts where it must be a use (after `return`, `not`, `in`, `if`,
  `=`, a binary operator: `use_position`) must start one of the names that exist there
  (`NameGuide.bare`, plus every name the cursor line and the answer spell so far: a
  comprehension's or lambda's own names); a partial one continues only towards them,
  and ends only where it is whole. Where a new name may start (a line's start, after
  `(`, `,`, `[`, `:`, `for`, `as`, `def`, `lambda`: targets, parameters, keyword
  arguments), and for a string's prefix (`f"`), no constraint;
- anywhere else (a string or a comment, a receiver the server did not send, no name of
  the receiver starting with p): no constraint.

This is the same judgement as the name check after generation (`engine/names.py`),
made while the model can still choose another token instead of being cut. A hard mask,
as in the paper: the tables hold only receivers whose names are known completely.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from companion.backends.base import MAX_BARE_NAME_CHARS, NameGuide

CACHE_ENTRIES = 512  # (receiver's names, partial) → allowed ids, per vocabulary
FRESH_ENTRIES = 8  # bare-name tables whose misfitting first tokens are kept
FRESH_DRIFT = 64  # names a table may differ by from the last full one and start from it
_NAME = re.compile(r"[A-Za-z_]\w*")
_RECEIVER = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
_BARE = re.compile(r"(?<![\w.])[A-Za-z_]\w*")  # a bare name: not after a `.` or a digit
_TRAILING_BARE = re.compile(r"(?<![\w.])[A-Za-z_]\w*\Z")
# After these keywords a name is read, never bound (`for`, `as`, `import`, `def`,
# `lambda`, `global` bind theirs).
USE_KEYWORDS = frozenset({"return", "yield", "await", "raise", "assert", "not", "and", "or",
                          "if", "elif", "while", "is", "in", "del", "with", "except", "else"})
_OPERATORS = frozenset("=+-/%<>|&^~@")  # a name after these is read (`x = y`, `a + b`)
STRING_PREFIXES = frozenset({"r", "u", "f", "b", "t", "br", "rb", "fr", "rf", "tr", "rt"})


def _ident(char: str) -> bool:
    return char.isascii() and (char.isalnum() or char == "_")


class Vocabulary:
    """Each token's text, indexed for the lookups a constraint makes: exact text → ids,
    identifier-led texts sorted (prefix ranges), and the tokens that carry their own
    leading dot (`.get`)."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.size = len(texts)
        self.texts = list(texts)
        self._by_text: dict[str, list[int]] = {}
        ident_start = np.zeros(self.size, dtype=bool)
        led: list[tuple[str, int]] = []
        dotted: list[int] = []
        for token, text in enumerate(self.texts):
            if not text:
                continue
            self._by_text.setdefault(text, []).append(token)
            if _ident(text[0]):
                ident_start[token] = True
                led.append((text, token))
            elif text[0] == "." and len(text) > 1 and _ident(text[1]):
                dotted.append(token)
        led.sort()
        self._led_texts = [text for text, _ in led]
        self._led_ids = [token for _, token in led]
        self.ident_start = ident_start
        self.dotted = dotted

        self._allowed: dict[tuple[tuple[str, ...], str], tuple[tuple[int, ...], bool] | None] = {}
        self._dotted_bad: dict[tuple[str, ...], tuple[int, ...]] = {}
        self._fresh: _FreshIndex | None = None
        self._fresh_base: tuple[frozenset[str], npt.NDArray[np.bool_],
                                npt.NDArray[np.bool_]] | None = None
        self._fresh_bad: dict[tuple[str, ...], tuple[npt.NDArray[np.bool_],
                                                     npt.NDArray[np.bool_]]] = {}

    def exact(self, text: str) -> list[int]:
        return self._by_text.get(text, [])

    def led_by(self, start: str) -> Sequence[tuple[str, int]]:
        """The identifier-led tokens whose text starts with `start` (non-empty)."""
        low = bisect.bisect_left(self._led_texts, start)
        high = bisect.bisect_left(self._led_texts, start + "\U0010ffff")
        return list(zip(self._led_texts[low:high], self._led_ids[low:high], strict=True))

    def allowed_after(self, names: tuple[str, ...], partial: str
                      ) -> tuple[tuple[int, ...], bool] | None:
        """The ids that continue `partial` towards one of `names` (sorted), and whether
        `partial` is itself a name (then anything that ends the identifier is allowed
        too); None when no name starts with `partial`. Cached: the same receiver comes
        back keystroke after keystroke."""
        key = (names, partial)
        if key in self._allowed:
            return self._allowed[key]
        low = bisect.bisect_left(names, partial)
        high = bisect.bisect_left(names, partial + "\U0010ffff")
        found: tuple[tuple[int, ...], bool] | None = None
        if low < high:
            allowed: set[int] = set()
            complete = False
            for name in names[low:high]:
                rest = name[len(partial):]
                if not rest:
                    complete = True
                    continue
                for length in range(1, len(rest) + 1):
                    allowed.update(self.exact(rest[:length]))
                for text, token in self.led_by(rest):
                    if len(text) > len(rest) and not _ident(text[len(rest)]):
                        allowed.add(token)
            found = tuple(sorted(allowed)), complete
        if len(self._allowed) >= CACHE_ENTRIES:
            self._allowed.clear()
        self._allowed[key] = found
        return found

    def dotted_misfits(self, names: tuple[str, ...]) -> tuple[int, ...]:
        """The tokens that bring their own dot (`.get`) and fit none of `names`."""
        bad = self._dotted_bad.get(names)
        if bad is None:
            bad = tuple(token for token in self.dotted if not _fits(names, self.texts[token][1:]))
            if len(self._dotted_bad) >= CACHE_ENTRIES:
                self._dotted_bad.clear()
            self._dotted_bad[names] = bad
        return bad


    def fresh_misfits(self, bare: tuple[str, ...]
                      ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        """The tokens that start a bare name fitting none of `bare` (sorted): (those that
        start with the name, those that bring spaces before it). A name that ends inside
        the token must be whole, one that runs to its end must start a name. Cached per
        table: the same document comes back keystroke after keystroke. A table close to
        the last one computed in full (the cursor moved to another line, a name was
        typed: at most `FRESH_DRIFT` names either way) starts from it and only allows the
        added names' tokens (~0.1 ms instead of ~20 ms for 49k tokens); the names it
        lacks stay allowed, which only leaves more to the check after decoding."""
        found = self._fresh_bad.get(bare)
        if found is None:
            found = self._fresh_near(bare)
        if found is None:
            fresh = self.fresh_index()
            fits = np.zeros(len(fresh.ids), dtype=bool)
            if bare and len(fresh.ids):
                names = np.array(bare)
                at = np.searchsorted(names, fresh.words)
                inside = at < len(names)
                near = names[np.minimum(at, len(names) - 1)]
                starts = np.char.startswith(near, fresh.words)
                fits = inside & np.where(fresh.closed, near == fresh.words, starts)
            plain = np.zeros(self.size, dtype=bool)
            spaced = np.zeros(self.size, dtype=bool)
            bad = ~fits
            plain[fresh.ids[bad & ~fresh.spaced]] = True
            spaced[fresh.ids[bad & fresh.spaced]] = True
            found = (plain, spaced)
            self._fresh_base = (frozenset(bare), plain, spaced)
        if len(self._fresh_bad) >= FRESH_ENTRIES:
            self._fresh_bad.clear()
        self._fresh_bad[bare] = found
        return found

    def _fresh_near(self, bare: tuple[str, ...]
                    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]] | None:
        if self._fresh_base is None:
            return None
        names, plain, spaced = self._fresh_base
        wanted = frozenset(bare)
        added = wanted - names
        if len(added) > FRESH_DRIFT or len(names - wanted) > FRESH_DRIFT:
            return None
        plain, spaced = plain.copy(), spaced.copy()
        fitting = self.fresh_fitting(set(added))
        plain[fitting] = False
        spaced[fitting] = False
        return plain, spaced

    def fresh_fitting(self, names: set[str]) -> list[int]:
        """The tokens that start a bare name fitting one of `names` (few: the names the
        answer binds as it goes)."""
        fresh = self.fresh_index()
        ids: list[int] = []
        for name in names:
            for length in range(1, len(name) + 1):
                ids.extend(fresh.open_ids.get(name[:length], ()))
            ids.extend(fresh.closed_ids.get(name, ()))
        return ids

    def fresh_index(self) -> _FreshIndex:
        if self._fresh is None:
            self._fresh = _FreshIndex.of(self.texts)
        return self._fresh


@dataclass
class _FreshIndex:
    """The tokens that start a bare name (after optional spaces), made once per model:
    token ids, the name's text in each, whether the name ends inside the token
    (`closed`) and whether spaces come before it (`spaced`); by name, for the few
    names added per step. A string's prefix (`f"`, `rb'`) starts no name."""

    ids: npt.NDArray[np.int64]
    words: npt.NDArray[np.str_]
    closed: npt.NDArray[np.bool_]
    spaced: npt.NDArray[np.bool_]
    open_ids: dict[str, list[int]]
    closed_ids: dict[str, list[int]]

    @staticmethod
    def of(texts: Sequence[str]) -> _FreshIndex:
        ids: list[int] = []
        words: list[str] = []
        closed: list[bool] = []
        spaced: list[bool] = []
        open_ids: dict[str, list[int]] = {}
        closed_ids: dict[str, list[int]] = {}
        for token, text in enumerate(texts):
            stripped = text.lstrip(" \t")
            match = _NAME.match(stripped)
            if match is None:
                continue
            word = match.group(0)
            ends = len(word) < len(stripped)
            if ends and stripped[len(word)] in "'\"" and word.lower() in STRING_PREFIXES:
                continue
            ids.append(token)
            words.append(word)
            closed.append(ends)
            spaced.append(len(stripped) < len(text))
            (closed_ids if ends else open_ids).setdefault(word, []).append(token)
        return _FreshIndex(np.array(ids, dtype=np.int64), np.array(words, dtype=str),
                           np.array(closed, dtype=bool), np.array(spaced, dtype=bool),
                           open_ids, closed_ids)


def use_position(before: str) -> bool:
    """Whether a bare name that starts right after `before` (the code of a line up to
    it) is read there, so it must exist: after a keyword that reads (`return`, `not`,
    `in`, `if`, ... with a space between), after `=` or a binary operator. Not at a
    line's start, after brackets, commas, colons, a `.`, or a keyword that binds."""
    code = before.rstrip(" \t")
    if not code:
        return False
    last = code[-1]
    if last in _OPERATORS:
        return True
    if last == "*":  # `a * b` reads b; `f(*args)`, `def f(**kw)`, `a, *rest =` do not
        head = code.rstrip("*").rstrip(" \t")
        return bool(head) and (_ident(head[-1]) or head[-1] in ")]'\"")
    if not _ident(last) or code == before:
        return False
    word = _TRAILING_BARE.search(code)
    if word is None or word.group(0) not in USE_KEYWORDS:
        return False
    return not (word.group(0) == "else" and not code[: word.start()].strip())


@dataclass(frozen=True)
class NameTable:
    """A request's NameGuide, checked (receivers and names that are identifiers, names
    sorted, receivers with none dropped), with its patterns compiled."""

    members: Mapping[str, tuple[str, ...]]
    tail: str = ""
    free_at_line_start: frozenset[str] = frozenset()
    bare: tuple[str, ...] = ()
    bare_set: frozenset[str] = frozenset()
    _pattern: list[re.Pattern[str]] = field(default_factory=list, compare=False, repr=False)

    @staticmethod
    def of(guide: NameGuide | None) -> NameTable | None:
        """The table of `guide`, None when it has no receiver and no bare name left."""
        if guide is None:
            return None
        kept = {receiver: tuple(sorted({name for name in names if _NAME.fullmatch(name)}))
                for receiver, names in guide.members.items()
                if _RECEIVER.fullmatch(receiver)}
        kept = {receiver: names for receiver, names in kept.items() if names}
        bare_set = frozenset(name for name in guide.bare
                             if len(name) <= MAX_BARE_NAME_CHARS and _NAME.fullmatch(name))
        if not kept and not bare_set:
            return None
        bare = guide.bare if len(bare_set) == len(guide.bare) and _ascending(guide.bare) \
            else tuple(sorted(bare_set))
        return NameTable(kept, guide.tail, frozenset(guide.free_at_line_start), bare,
                         bare_set)

    def patterns(self) -> tuple[re.Pattern[str], re.Pattern[str]]:
        """(after `receiver.partial`, right after `receiver`) at the end of a text."""
        if not self.members:
            return _NEVER, _NEVER
        if not self._pattern:
            receivers = "|".join(re.escape(receiver) for receiver in
                                 sorted(self.members, key=len, reverse=True))
            self._pattern.append(re.compile(rf"(?<![\w.])({receivers})\.(\w*)\Z"))
            self._pattern.append(re.compile(rf"(?<![\w.])({receivers})\Z"))
        return self._pattern[0], self._pattern[1]


_NEVER = re.compile(r"(?!)")


def _ascending(names: tuple[str, ...]) -> bool:
    return all(a < b for a, b in itertools.pairwise(names))


def _in_prose(text: str) -> bool:
    """Whether the end of `text` (code from its start: the cursor's line, then the
    answer) is inside a string or a comment: a comment ends with its line, a one-quote
    string too (unterminated), a triple-quoted one only at its closing quotes."""
    quote = ""
    comment = False
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\n":
            comment = False
            if len(quote) == 1:
                quote = ""
        elif comment:
            pass
        elif quote:
            if char == "\\":
                index += 1
            elif text.startswith(quote, index):
                index += len(quote) - 1
                quote = ""
        elif char == "#":
            comment = True
        elif char in "'\"":
            quote = char * 3 if text.startswith(char * 3, index) else char
            index += len(quote) - 1
        index += 1
    return comment or bool(quote)


def _fits(names: tuple[str, ...], piece: str) -> bool:
    """Whether identifier text `piece` (what follows a dot) starts one of `names`, or is
    one of them followed by a non-identifier character."""
    head = re.match(r"\w*", piece)
    word = head.group(0) if head else ""
    index = bisect.bisect_left(names, word)
    if word != piece:  # the identifier ends inside the token: it must be a whole name
        return index < len(names) and names[index] == word
    return index < len(names) and names[index].startswith(word)


class NameConstraint:
    """The tokens a step may take, for one request's table and one vocabulary."""

    def __init__(self, table: NameTable, vocab: Vocabulary) -> None:
        self.table = table
        self.vocab = vocab
        self.constrained_steps = 0

    def mask(self, generated: str) -> npt.NDArray[np.bool_] | None:
        """Which tokens the next step may take after `generated` (the decoded answer so
        far), or None when the step is free."""
        text = self.table.tail + generated
        line = text.rsplit("\n", 1)[-1]
        if len(line) > 400 or _in_prose(text):
            return None
        after_dot, at_receiver = self.table.patterns()
        match = after_dot.search(line)
        if match is None:
            match = at_receiver.search(line)
        if match is None:
            return self._bare_mask(text, line) if self.table.bare else None
        receiver = match.group(1)
        if receiver in self.table.free_at_line_start and not line[: match.start()].strip():
            return None  # `self.total = 0`: perhaps a new attribute, defined here
        names = self.table.members[receiver]
        if match.re is after_dot:
            return self._member_mask(names, match.group(2))
        return self._dot_mask(names)

    def _bare_mask(self, text: str, line: str) -> npt.NDArray[np.bool_] | None:
        """The step's mask for bare names (see the module's docstring), None when free."""
        allow: npt.NDArray[np.bool_] | None = None
        partial = _TRAILING_BARE.search(line)
        if partial is not None:  # the line ends inside a name: its tokens go on with it
            name = partial.group(0)
            if use_position(line[: partial.start()]) and name.lower() not in STRING_PREFIXES:
                allow = self._continuing(name, text[: len(text) - len(name)])
            plain, spaced = False, use_position(line + " ")
        else:
            plain = spaced = use_position(line)
        if plain or spaced:
            plain_bad, spaced_bad = self.vocab.fresh_misfits(self.table.bare)
            bad = (plain_bad | spaced_bad) if plain and spaced else \
                plain_bad.copy() if plain else spaced_bad.copy()
            extra = self._spelled(text)
            if extra:
                bad[self.vocab.fresh_fitting(extra)] = False
            allow = ~bad if allow is None else allow & ~bad
        if allow is None or allow.all() or not allow.any():
            return None
        self.constrained_steps += 1
        return allow

    def _spelled(self, text: str) -> set[str]:
        """The bare names `text` spells that the table does not hold."""
        return {name for name in _BARE.findall(text) if name not in self.table.bare_set}

    def _continuing(self, partial: str, before: str) -> npt.NDArray[np.bool_] | None:
        """The tokens that may follow the bare name `partial` where it must exist: on
        towards a name that exists (the table's, or one spelled before it), or anything
        that ends it once it is whole; None when no name starts with it."""
        found = [self.vocab.allowed_after(self.table.bare, partial)]
        spelled = tuple(sorted(name for name in self._spelled(before)
                               if name.startswith(partial)))
        if spelled:
            found.append(self.vocab.allowed_after(spelled, partial))
        known = [item for item in found if item is not None]
        if not known:
            return None
        complete = any(whole for _, whole in known)
        mask = ~self.vocab.ident_start if complete else np.zeros(self.vocab.size, dtype=bool)
        for ids, _ in known:
            if ids:
                mask[list(ids)] = True
        return mask

    def _member_mask(self, names: tuple[str, ...], partial: str
                     ) -> npt.NDArray[np.bool_] | None:
        found = self.vocab.allowed_after(names, partial)
        if found is None:
            return None
        ids, complete = found
        mask = ~self.vocab.ident_start if complete else np.zeros(self.vocab.size, dtype=bool)
        if ids:
            mask[list(ids)] = True
        if not mask.any():
            return None
        self.constrained_steps += 1
        return mask

    def _dot_mask(self, names: tuple[str, ...]) -> npt.NDArray[np.bool_] | None:
        bad = self.vocab.dotted_misfits(names)
        if not bad:
            return None
        mask = np.ones(self.vocab.size, dtype=bool)
        mask[list(bad)] = False
        self.constrained_steps += 1
        return mask


def apply(mask: npt.NDArray[np.bool_] | None, logits: npt.NDArray[np.floating]
          ) -> npt.NDArray[np.floating]:
    """`logits` (one step's, over the vocabulary) with the tokens `mask` forbids at -inf;
    unchanged when the step is free or the sizes differ (a vocabulary larger than the
    tokenizer's: the padding rows stay)."""
    if mask is None:
        return logits
    size = min(len(mask), len(logits))
    logits[:size][~mask[:size]] = -np.inf
    return logits


__all__ = ["NameConstraint", "NameTable", "Vocabulary", "apply", "use_position"]
