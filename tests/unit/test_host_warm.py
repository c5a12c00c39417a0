"""The engine host's guided warm-up at load (host/main.py: warm_name_guide): one guided
token, so the tables the name guide builds once per model exist before the first
keystroke; a failure in it never fails the load."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from companion.backends.base import Chunk, GenerationRequest
from companion.backends.name_constraint import NameConstraint, NameTable, Vocabulary
from companion.host.main import warm_name_guide


class _Guided:
    """Decodes one step as the llama.cpp and transformers engines do: a constraint from
    the request's guide, asked for the first step's mask."""

    def __init__(self) -> None:
        self.vocab = Vocabulary(["a", "b", " a", " zz", "zz", "(", "\n"])
        self.masks: list[object] = []

    def stream(self, request: GenerationRequest) -> Iterator[Chunk]:
        table = NameTable.of(request.names)
        assert table is not None, "the warm-up must carry a guide"
        self.masks.append(NameConstraint(table, self.vocab).mask(""))
        yield Chunk(text=" a", finish_reason="length")


def test_the_warm_up_builds_the_tables_a_guided_step_needs() -> None:
    backend = _Guided()
    warm_name_guide(backend)  # type: ignore[arg-type]
    mask = backend.masks[0]
    assert mask is not None, "the step after `return` is judged: the tables were made"
    assert backend.vocab._fresh is not None and backend.vocab._fresh_bad
    allowed = [text for text, ok in zip(backend.vocab.texts, mask, strict=True) if ok]
    assert " a" in allowed and " zz" not in allowed


def test_a_failing_warm_up_only_logs(caplog: pytest.LogCaptureFixture) -> None:
    class _Broken:
        def stream(self, request: GenerationRequest) -> Iterator[Chunk]:
            raise RuntimeError("no logits here")
            yield Chunk(text="")

    warm_name_guide(_Broken())  # type: ignore[arg-type]
    assert "name guide warm-up failed" in caplog.text
