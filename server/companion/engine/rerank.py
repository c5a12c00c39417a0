"""Candidate reranking with the code after the cursor, for models without FIM (issue 16,
section 3).

A model without FIM never sees the code below the cursor while it writes, so its greedy
line can ignore what the next line needs (`endtime = time() + timeout`, used right below,
is never proposed). Where the budget allows — an explicit invocation, or an automatic
request after a pause (never a typing keystroke) — and the backend can
(`Capabilities.rerank`), `generate_inline` asks for a few more candidates and keeps the
one the model finds most consistent with what follows:

- candidates: the greedy suggestion and up to ALTERNATIVES more, each starting from the
  prompt's 2nd, 3rd, … likeliest first token, greedy after it (the first word decides what
  kind of statement it is; deterministic, so answers stay cacheable). Each runs through
  the same stop rule, post-processing and name check as the greedy one; empty and
  duplicate ones are dropped;
- scores, one backend call that reuses the prompt's KV cache (only candidate and
  suffix-line tokens are evaluated): the candidate's mean token log-probability, plus the
  mean log-probability of the suffix's next non-blank line after it (`follow_text`), minus
  UNDEFINED_PENALTY when the name check cut it (it used a name that exists nowhere);
- the choice: the best one if it beats the greedy one by MARGIN, else the greedy one —
  which is also the answer whenever the budget runs out, the request is cancelled or
  anything fails.

The setting `rerank` turns it on (off by default: see the README for the measurement).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from companion.backends.base import (
    Backend,
    CancelFlag,
    ContinuationScore,
    Scorer,
    ScoreRequest,
)
from companion.config import Settings

log = logging.getLogger(__name__)

ALTERNATIVES = 3  # candidates besides the greedy one
MAX_RANK = 6  # the likeliest first tokens tried for them (some give nothing usable)
FOLLOW_CHARS = 240  # the suffix line scored is cut here
MEAN_WEIGHT = 1.0  # per nat of the candidate's mean token log-probability
FOLLOW_WEIGHT = 1.0  # per nat of the suffix line's mean token log-probability
UNDEFINED_PENALTY = 1.0  # nats: the name check cut the candidate
MARGIN = 0.05  # nats an alternative must beat the greedy candidate by
PAUSE_BUDGET_MS = 1200  # an automatic request after a pause: its whole budget
GENERATE_SHARE = 0.75  # of the time left after the greedy answer: the alternatives


@dataclass(frozen=True)
class Candidate:
    """One suggestion as it would be shown; `rank` 0 is the greedy one."""

    text: str
    rank: int = 0
    undefined: bool = False  # the name check cut it before a name that exists nowhere


@dataclass(frozen=True)
class Scored:
    candidate: Candidate
    score: ContinuationScore

    @property
    def value(self) -> float:
        return value(self.score, self.candidate.undefined)


@dataclass(frozen=True)
class Outcome:
    """What reranking answered, and why: "changed" (an alternative won), "kept" (the
    greedy one won), "single" (no other candidate), "budget", "cancelled", "failed"."""

    text: str
    reason: str
    candidates: int = 0  # candidates scored
    ms: float = 0.0


# (rank, until: a time.monotonic()) → the candidate from that first token, or None when
# it gave nothing usable or ran out of time.
Alternative = Callable[[int, float], Candidate | None]


def follow_text(suffix: str, limit: int = FOLLOW_CHARS) -> str:
    """What follows the cursor up to the end of the next non-blank line after the
    cursor's own (the rest of the cursor's line and blank lines included): the text
    whose likelihood ranks the candidates. "" when the suffix has no such line."""
    rest_of_line, newline, below = suffix.partition("\n")
    if not newline:
        return ""
    lines = below.split("\n")
    for index, line in enumerate(lines):
        if line.strip():
            text = rest_of_line + "\n" + "\n".join(lines[: index + 1])
            return text[:limit]
    return ""


def budget_ms(settings: Settings, automatic: bool, paused: bool) -> float:
    """How long (ms after the request came) reranking may run to; 0: not at all. Never
    for a typing keystroke."""
    if not settings.rerank:
        return 0.0
    if not automatic:
        return float(settings.inline_deadline_ms)
    if paused:
        return float(min(settings.inline_deadline_ms, PAUSE_BUDGET_MS))
    return 0.0


def value(score: ContinuationScore, undefined: bool = False) -> float:
    """How good a candidate looks (higher is better), in nats per token."""
    mean = score.logprob / score.tokens if score.tokens else 0.0
    follow = score.follow_logprob / score.follow_tokens if score.follow_tokens else 0.0
    return MEAN_WEIGHT * mean + FOLLOW_WEIGHT * follow - (UNDEFINED_PENALTY if undefined
                                                          else 0.0)


def choose(scored: list[Scored], margin: float = MARGIN) -> Scored:
    """The best candidate, or the greedy one (rank 0, else the first) unless another
    beats it by `margin`."""
    greedy = next((item for item in scored if item.candidate.rank == 0), scored[0])
    best = max(scored, key=lambda item: item.value)
    return best if best.value > greedy.value + margin else greedy


def scorer_of(backend: Backend) -> Scorer | None:
    """The backend as a Scorer, when it says it can rerank."""
    if not backend.capabilities.rerank or not callable(getattr(backend, "score", None)):
        return None
    return cast(Scorer, backend)


def candidates(greedy: Candidate, alternative: Alternative, until: float,
               cancel: CancelFlag) -> list[Candidate]:
    """The greedy candidate and up to ALTERNATIVES distinct, non-empty others, from the
    likeliest first tokens on, while time is left."""
    found = [greedy]
    for rank in range(1, MAX_RANK + 1):
        if len(found) > ALTERNATIVES or cancel.cancelled or time.monotonic() >= until:
            break
        candidate = alternative(rank, until)
        if candidate is not None and candidate.text.strip() and all(
                candidate.text != other.text for other in found):
            found.append(candidate)
    return found


def rerank(scorer: Scorer, prompt: str, heal: str, greedy: Candidate,
           alternative: Alternative, follow: str, deadline: float,
           cancel: CancelFlag) -> Outcome:
    """The candidate to show (see the module's docstring); `deadline` is a
    time.monotonic(), `prompt` the one the greedy candidate came from and `heal` what
    its answer starts with (engine/prompts.py)."""
    started = time.monotonic()

    def outcome(text: str, reason: str, count: int = 0) -> Outcome:
        return Outcome(text, reason, count, (time.monotonic() - started) * 1000)

    if time.monotonic() >= deadline:
        return outcome(greedy.text, "budget")
    try:
        until = started + (deadline - started) * GENERATE_SHARE
        found = candidates(greedy, alternative, until, cancel)
        if cancel.cancelled:
            return outcome(greedy.text, "cancelled")
        if len(found) == 1:
            return outcome(greedy.text, "budget" if time.monotonic() >= until else "single")
        scores = scorer.score(ScoreRequest(prompt, [heal + item.text for item in found],
                                           follow, deadline, cancel))
    except Exception as error:  # reranking must never cost the greedy suggestion
        log.debug("reranking failed, the greedy suggestion stays: %s", error, exc_info=True)
        return outcome(greedy.text, "failed")
    if cancel.cancelled:
        return outcome(greedy.text, "cancelled")
    if len(scores) < len(found):
        return outcome(greedy.text, "budget")
    scored = [Scored(item, score) for item, score in zip(found, scores, strict=True)]
    best = choose(scored)
    log.debug("rerank: %s", [(item.candidate.text, round(item.value, 3)) for item in scored])
    return outcome(best.candidate.text, "kept" if best.candidate.rank == 0 else "changed",
                   len(scored))
