"""Prompt-lookup drafting (backends/llamacpp_lookup.py): the pure n-gram search and the
settings read from the environment."""

from __future__ import annotations

import pytest

np = pytest.importorskip("numpy")

from companion.backends.llamacpp_lookup import (  # noqa: E402
    MAX_NGRAM,
    LookupSettings,
    find_draft,
)


def draft(tokens: list[int], max_draft: int = 4, min_ngram: int = 1) -> list[int]:
    history = np.array(tokens + [-1] * 8, dtype=np.int32)  # room past the end, unused
    return find_draft(history, len(tokens), max_draft, min_ngram)


def test_the_tokens_after_an_earlier_occurrence_of_the_suffix_are_drafted() -> None:
    assert draft([5, 6, 7, 8, 9, 1, 5, 6]) == [7, 8, 9, 1]
    assert draft([5, 6, 7, 8, 9, 1, 5, 6], max_draft=2) == [7, 8]


def test_the_longest_suffix_match_wins_over_a_more_recent_shorter_one() -> None:
    # "2 3" occurred at the start (followed by 4); "3" alone more recently (followed by 9).
    assert draft([2, 3, 4, 4, 3, 9, 2, 3], max_draft=1) == [4]


def test_among_equally_long_matches_the_most_recent_one_drafts() -> None:
    assert draft([1, 2, 10, 1, 2, 20, 1, 2], max_draft=1) == [20]


def test_the_draft_stops_at_the_end_of_the_text() -> None:
    assert draft([1, 2, 3, 1, 2], max_draft=8) == [3, 1, 2]


def test_a_repeated_token_drafts_its_own_run() -> None:
    assert draft([7, 7, 7, 7], max_draft=3) == [7]


def test_no_draft_without_an_earlier_match_of_the_shortest_ngram() -> None:
    assert draft([1, 2, 3, 4]) == []
    assert draft([1, 2, 9, 2], min_ngram=2) == []  # only a 1-gram matched
    assert draft([1, 2, 9, 1, 2], min_ngram=2) == [9, 1, 2]
    assert draft([], max_draft=4) == []
    assert draft([3], max_draft=4) == []
    assert draft([1, 2, 1, 2], max_draft=0) == []


def test_matches_are_looked_for_up_to_the_longest_ngram() -> None:
    # A match longer than MAX_NGRAM counts as MAX_NGRAM long: the most recent such wins.
    head = list(range(100, 100 + MAX_NGRAM + 2))
    tokens = [*head, 1, *head[-MAX_NGRAM:], 2, *head]
    assert draft(tokens, max_draft=1) == [2]


def test_only_the_valid_part_of_the_buffer_is_searched() -> None:
    history = np.array([4, 5, 6, 4, 5, 0, 0], dtype=np.int32)
    assert find_draft(history, 5, 4, 2) == [6, 4, 5]
    assert find_draft(history, 3, 4, 1) == []


def test_settings_from_the_environment() -> None:
    assert LookupSettings.from_env({}) == LookupSettings()
    on = LookupSettings.from_env({"COMPANION_PROMPT_LOOKUP": "1",
                                  "COMPANION_PROMPT_LOOKUP_DRAFT": "8",
                                  "COMPANION_PROMPT_LOOKUP_NGRAM": "3",
                                  "COMPANION_PROMPT_LOOKUP_ADAPTIVE": "yes"})
    assert (on.enabled, on.draft, on.min_ngram, on.adaptive) == (True, 8, 3, True)
    off = LookupSettings.from_env({"COMPANION_PROMPT_LOOKUP": "off",
                                   "COMPANION_PROMPT_LOOKUP_DRAFT": "many",
                                   "COMPANION_PROMPT_LOOKUP_NGRAM": "99"})
    assert (off.enabled, off.draft, off.min_ngram) == (False, LookupSettings().draft, MAX_NGRAM)
