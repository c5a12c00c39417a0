"""Where is the accepted text now? Approximate matching by character edit distance.

Myers' bit-parallel edit distance (Hyyrö's formulation) gives, in one pass over a
stretch of the document, the least distance from the accepted text to a substring ending
at each position; `match_within` searches between two anchors with both ends free,
`match_at` from given start or end positions. Pure functions, used by the retention
tracker (`history/retention.py`) and unit-tested on their own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

TOLERANCE = 6  # characters an expected start or end may be off by


def _peq(pattern: str) -> dict[str, int]:
    masks: dict[str, int] = {}
    for index, char in enumerate(pattern):
        masks[char] = masks.get(char, 0) | (1 << index)
    return masks


def _distances(pattern: str, text: str, anchored: bool) -> list[int]:
    """Myers' bit-parallel edit distance (Hyyrö's formulation), one value per prefix of
    `text`: entry j is the least edit distance between `pattern` and a substring of
    `text` ending at j (any start; `anchored`: starting at 0). O(len(text)) big-int steps."""
    m = len(pattern)
    mask = (1 << m) - 1
    last = 1 << (m - 1)
    peq = _peq(pattern)
    pv, mv, score = mask, 0, m
    carry = 1 if anchored else 0
    out = [m]  # the empty prefix: delete the whole pattern
    for char in text:
        eq = peq.get(char, 0)
        xv = eq | mv
        xh = (((eq & pv) + pv) ^ pv) | eq
        ph = mv | (~(xh | pv) & mask)
        mh = pv & xh
        if ph & last:
            score += 1
        elif mh & last:
            score -= 1
        ph = ((ph << 1) | carry) & mask
        mh = (mh << 1) & mask
        pv = mh | (~(xv | ph) & mask)
        mv = ph & xv
        out.append(score)
    return out


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance between `a` and `b` (characters)."""
    if not a or not b:
        return len(a) + len(b)
    return _distances(a, b, anchored=True)[-1]


@dataclass(frozen=True)
class Match:
    """The span [start, end) of the document closest to the accepted text."""

    start: int
    end: int
    distance: int
    length: int  # of the accepted text

    @property
    def score(self) -> float:
        return retention_score(self.distance, self.length)


def retention_score(distance: int, length: int) -> float:
    """1 − normalized edit distance, in [0, 1] (Copilot's retention measure)."""
    if length <= 0:
        return 0.0
    return round(max(0.0, 1.0 - distance / length), 4)


def _closest_prefix(pattern: str, text: str) -> tuple[int, int]:
    """(distance, length) of the prefix of `text` closest to `pattern`."""
    distances = _distances(pattern, text, anchored=True)
    length = min(range(len(distances)), key=lambda k: (distances[k], abs(k - len(pattern))))
    return distances[length], length


def match_within(document: str, accepted: str, lo: int, hi: int) -> Match:
    """The substring of `document[lo:hi]` closest to `accepted` (both ends free): the
    accepted text between the code that preceded and the code that followed it, whatever
    was typed next to it."""
    length = len(accepted)
    window = document[lo:hi]
    if length == 0 or not window:
        return Match(lo, lo, length, length)
    distances = _distances(accepted, window, anchored=False)
    end = min(range(len(distances)), key=lambda j: (distances[j], abs(j - length)))
    distance, taken = _closest_prefix(accepted[::-1], window[:end][::-1])
    return Match(lo + end - taken, lo + end, distance, length)


def match_at(document: str, accepted: str, starts: Iterable[int] = (),
             ends: Iterable[int] = (), tolerance: int = TOLERANCE) -> Match:
    """The span of `document` closest to `accepted` by edit distance that starts at one
    of `starts` or ends at one of `ends` (each give or take `tolerance` characters): where
    the accepted text went in, or where the code that surrounded it now is. Its other end
    is free, within the text's length and half of it again."""
    length = len(accepted)
    if length == 0:
        return Match(0, 0, 0, 0)
    reach = length + length // 2 + tolerance
    size = len(document)
    best = Match(0, 0, length, length)
    reversed_text = accepted[::-1]
    for start in sorted({s + d for s in starts for d in range(-tolerance, tolerance + 1)
                         if 0 <= s + d <= size}):
        distance, taken = _closest_prefix(accepted, document[start:start + reach])
        if distance < best.distance:
            best = Match(start, start + taken, distance, length)
    for end in sorted({e + d for e in ends for d in range(-tolerance, tolerance + 1)
                       if 0 <= e + d <= size}):
        distance, taken = _closest_prefix(reversed_text,
                                          document[max(0, end - reach):end][::-1])
        if distance < best.distance:
            best = Match(end - taken, end, distance, length)
    return best


def occurrences(text: str, needle: str, limit: int) -> list[int]:
    hits: list[int] = []
    index = text.find(needle)
    while index >= 0 and len(hits) < limit:
        hits.append(index)
        index = text.find(needle, index + 1)
    return hits
