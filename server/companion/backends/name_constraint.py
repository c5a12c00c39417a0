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
- anywhere else (a string or a comment on the line, a receiver the server did not
  send, no name of the receiver starting with p): no constraint.

This is the same judgement as the name check after generation (`engine/names.py`),
made while the model can still choose another token instead of being cut. A hard mask,
as in the paper: the tables hold only receivers whose names are known completely.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from companion.backends.base import NameGuide

CACHE_ENTRIES = 512  # (receiver's names, partial) → allowed ids, per vocabulary
_NAME = re.compile(r"[A-Za-z_]\w*")
_RECEIVER = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")


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


@dataclass(frozen=True)
class NameTable:
    """A request's NameGuide, checked (receivers and names that are identifiers, names
    sorted, receivers with none dropped), with its patterns compiled."""

    members: Mapping[str, tuple[str, ...]]
    tail: str = ""
    free_at_line_start: frozenset[str] = frozenset()
    _pattern: list[re.Pattern[str]] = field(default_factory=list, compare=False, repr=False)

    @staticmethod
    def of(guide: NameGuide | None) -> NameTable | None:
        """The table of `guide`, None when it has no receiver left."""
        if guide is None:
            return None
        kept = {receiver: tuple(sorted({name for name in names if _NAME.fullmatch(name)}))
                for receiver, names in guide.members.items()
                if _RECEIVER.fullmatch(receiver)}
        kept = {receiver: names for receiver, names in kept.items() if names}
        if not kept:
            return None
        return NameTable(kept, guide.tail, frozenset(guide.free_at_line_start))

    def patterns(self) -> tuple[re.Pattern[str], re.Pattern[str]]:
        """(after `receiver.partial`, right after `receiver`) at the end of a text."""
        if not self._pattern:
            receivers = "|".join(re.escape(receiver) for receiver in
                                 sorted(self.members, key=len, reverse=True))
            self._pattern.append(re.compile(rf"(?<![\w.])({receivers})\.(\w*)\Z"))
            self._pattern.append(re.compile(rf"(?<![\w.])({receivers})\Z"))
        return self._pattern[0], self._pattern[1]


def _in_prose(line: str) -> bool:
    """Whether the end of `line` is inside a string or a comment (one line's view)."""
    quote = ""
    index = 0
    while index < len(line):
        char = line[index]
        if quote:
            if char == "\\":
                index += 1
            elif line.startswith(quote, index):
                index += len(quote) - 1
                quote = ""
        elif char == "#":
            return True
        elif char in "'\"":
            quote = char * 3 if line.startswith(char * 3, index) else char
            index += len(quote) - 1
        index += 1
    return bool(quote)


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
        if len(line) > 400 or _in_prose(line):
            return None
        after_dot, at_receiver = self.table.patterns()
        match = after_dot.search(line)
        if match is None:
            match = at_receiver.search(line)
        if match is None:
            return None
        receiver = match.group(1)
        if receiver in self.table.free_at_line_start and not line[: match.start()].strip():
            return None  # `self.total = 0`: perhaps a new attribute, defined here
        names = self.table.members[receiver]
        if match.re is after_dot:
            return self._member_mask(names, match.group(2))
        return self._dot_mask(names)

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


__all__ = ["NameConstraint", "NameTable", "Vocabulary", "apply"]
