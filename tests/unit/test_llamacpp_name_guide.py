"""The name guide on the embedded model through the llama.cpp backend (in process): a
guided answer spells only names that exist after `self.`, an unconstrained one is plain
greedy decoding token for token, and the KV state stays true for the next request."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from companion.backends.base import GenerationRequest, NameGuide
from companion.models.resolve import resolve

pytest.importorskip("llama_cpp")

from companion.backends.llamacpp import LlamaCppBackend

CLASS = """class Counter:
    def __init__(self, start):
        self._count = start
        self._seen = set()

    def add(self, item):
"""
ATTRIBUTES = ("__init__", "_count", "_seen", "add")
SPOTS = ["        if item in self.", "        total = self.", "        return len(self."]


@pytest.fixture(scope="module")
def backend() -> Iterator[LlamaCppBackend]:
    loaded = LlamaCppBackend()
    loaded.load(resolve("", 2048))
    yield loaded
    loaded.unload()


def generate(backend: LlamaCppBackend, prompt: str, guide: NameGuide | None,
             rank: int = 0) -> str:
    request = GenerationRequest(prompt=prompt, max_tokens=16, names=guide,
                                first_token_rank=rank)
    return "".join(chunk.text for chunk in backend.stream(request))


def _guide(tail: str, members: tuple[str, ...] = ATTRIBUTES) -> NameGuide:
    return NameGuide({"self": members}, tail=tail, free_at_line_start=("self", "cls"))


def _attributes_used(tail: str, answer: str) -> list[str]:
    """The names after `self.` in the answer, except at the start of a line."""
    used = []
    for line in (tail + answer).split("\n"):
        for match in re.finditer(r"(?<![\w.])self\.(\w+)", line):
            if line[: match.start()].strip():
                used.append(match.group(1))
    return used


@pytest.mark.parametrize("spot", SPOTS)
def test_a_guided_answer_uses_only_attributes_that_exist(backend: LlamaCppBackend,
                                                         spot: str) -> None:
    answer = generate(backend, CLASS + spot, _guide(spot))
    used = _attributes_used(spot, answer)
    assert used and set(used) <= set(ATTRIBUTES), answer


def test_the_guide_changes_what_an_unguided_model_invents(backend: LlamaCppBackend) -> None:
    invented = 0
    for spot in SPOTS:
        plain = _attributes_used(spot, generate(backend, CLASS + spot, None))
        invented += any(name not in ATTRIBUTES for name in plain)
    assert invented >= 2  # the embedded model makes names up here: the guide is needed


def test_a_guide_that_never_applies_is_plain_greedy(backend: LlamaCppBackend) -> None:
    spot = "        if item in self."
    plain = generate(backend, CLASS + spot, None)
    elsewhere = NameGuide({"os": ("path", "sep")}, tail=spot)  # no os. in this answer
    assert generate(backend, CLASS + spot, elsewhere) == plain
    assert generate(backend, CLASS + spot, None) == plain  # the KV state is still true


def test_a_branched_candidate_is_guided_after_its_first_token(backend: LlamaCppBackend
                                                              ) -> None:
    spot = "        total = self."
    answer = generate(backend, CLASS + spot, _guide(spot), rank=1)
    assert set(_attributes_used(spot, answer)[1:]) <= set(ATTRIBUTES), answer


def test_vocabulary_is_each_tokens_text(backend: LlamaCppBackend) -> None:
    vocab = backend.vocabulary()
    assert vocab.size == backend._llm.n_vocab()
    token = backend._plain_tokens("self")[0]
    assert vocab.texts[token] == "self" and vocab.ident_start[token]
    assert backend.vocabulary() is vocab
