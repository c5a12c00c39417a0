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
from companion.backends.llamacpp_lookup import LookupSettings
from companion.backends.name_constraint import NameConstraint, NameTable

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


def _masked_every_step(backend: LlamaCppBackend, prompt: str, guide: NameGuide
                       ) -> tuple[str, int, int]:
    """The reference: each step through the masked path (a free step's mask is None),
    as the guided loop decoded before free steps went through llama.cpp's own loop.
    Returns the answer and the number of masked and free steps."""
    table = NameTable.of(guide)
    assert table is not None
    constraint = NameConstraint(table, backend.vocabulary())
    tokens = backend._fitted(backend.tokenize(prompt), 16)
    text, masked, free = "", 0, 0
    for _ in range(16):
        mask = constraint.mask(text)
        masked, free = masked + (mask is not None), free + (mask is None)
        token = backend._masked(tokens, mask)
        if token == backend._llm.token_eos():
            break
        tokens.append(token)
        text += backend._llm.detokenize([token], special=False).decode("utf-8", "replace")
    return text, masked, free


@pytest.mark.parametrize("lookup", [False, True], ids=["plain", "prompt-lookup"])
def test_free_steps_run_in_llama_cpp_and_masked_ones_between(backend: LlamaCppBackend,
                                                             lookup: bool) -> None:
    """An answer that reaches `self.` after free steps: llama.cpp's loop up to there, the
    masked steps, llama.cpp's loop again — the same tokens as masking every step."""
    spot = "        if item "
    reference, masked, free = _masked_every_step(backend, CLASS + spot, _guide(spot))
    assert masked >= 1 and free >= 2, reference
    backend.lookup = LookupSettings(enabled=lookup)
    try:
        assert generate(backend, CLASS + spot, _guide(spot)) == reference
    finally:
        backend.lookup = LookupSettings.from_env()
    assert generate(backend, CLASS + spot, None) == generate(backend, CLASS + spot, None)


def test_vocabulary_is_each_tokens_text(backend: LlamaCppBackend) -> None:
    vocab = backend.vocabulary()
    assert vocab.size == backend._llm.n_vocab()
    token = backend._plain_tokens("self")[0]
    assert vocab.texts[token] == "self" and vocab.ident_start[token]
    assert backend.vocabulary() is vocab
