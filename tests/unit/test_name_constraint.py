"""The name guide's decoding masks (backends/name_constraint.py) against their golden
cases (tests/golden/name_guide.json), on a small vocabulary of token texts, and what the
guide must never do: forbid every token, touch a free step's logits, or keep a name that
is not an identifier."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from companion.backends.base import GenerationRequest, NameGuide
from companion.backends.name_constraint import NameConstraint, NameTable, Vocabulary, apply
from companion.host.protocol import pack, unpack

GOLDEN = Path(__file__).parents[1] / "golden"
CASES: list[dict[str, Any]] = json.loads(
    (GOLDEN / "name_guide.json").read_text(encoding="utf-8"))["cases"]
TEXTS = ["", "a", "p", "push", "pushback", "back", "ba", "back[", "back.", "pushback.",
         "pushback[", "pushback(", "push_", ".append", ".get", ".push", ".path", "(", ")",
         " ", "\n", ".", "x", "ok", "_", "1", "line", "lineno", "no", "stre", "am", "self",
         " self", "env", "environ", "iron", "path", "path.", "buffer", "stream", "line",
         " len", "len", "res", "ult", "ponse", "result", " result", " ok", " buffer", "ed",
         'f"', '"', "v", " v", "value", "gth", "items"]
VOCAB = Vocabulary(TEXTS)


def _ids(text: str) -> list[int]:
    found = [token for token, token_text in enumerate(TEXTS) if token_text == text]
    assert found, f"{text!r} is not in the test vocabulary"
    return found


def _constraint(case: dict[str, Any]) -> NameConstraint:
    members = {receiver: tuple(names) for receiver, names in case["members"].items()}
    table = NameTable.of(NameGuide(members, case["tail"], ("self", "cls"),
                                   tuple(case.get("bare", ()))))
    assert table is not None
    return NameConstraint(table, VOCAB)


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_golden(case: dict[str, Any]) -> None:
    mask = _constraint(case).mask(case["generated"])
    if case.get("free"):
        assert mask is None, case["name"]
        return
    assert mask is not None, case["name"]
    for text in case["allowed"]:
        assert all(mask[token] for token in _ids(text)), f"{text!r} forbidden"
    for text in case["forbidden"]:
        assert not any(mask[token] for token in _ids(text)), f"{text!r} allowed"


def test_golden_cases_cover_guided_and_free() -> None:
    free = [case for case in CASES if case.get("free")]
    assert len(CASES) >= 12 and len(free) >= 5 and len(CASES) - len(free) >= 6
    bare = [case for case in CASES if case.get("bare")]
    assert len(bare) >= 12 and sum(1 for case in bare if case.get("free")) >= 5


def test_apply_forbids_only_what_the_mask_does() -> None:
    logits = np.arange(len(TEXTS), dtype=np.float32)
    assert apply(None, logits.copy()).tolist() == logits.tolist()  # a free step: untouched
    mask = np.zeros(len(TEXTS), dtype=bool)
    mask[_ids("lineno")] = True
    guided = apply(mask, logits.copy())
    assert int(np.argmax(guided)) == _ids("lineno")[0]
    assert np.isneginf(guided[~mask]).all() and np.isfinite(guided[mask]).all()
    # A model whose logits are longer than the tokenizer's vocabulary: padding rows stay.
    longer = apply(mask, np.zeros(len(TEXTS) + 3, dtype=np.float32))
    assert (longer[len(TEXTS):] == 0).all()


def test_constrained_steps_are_counted() -> None:
    constraint = _constraint(CASES[0])
    constraint.mask("")
    constraint.mask("lineno = 1  # self.")
    assert constraint.constrained_steps == 1


def test_a_name_no_token_can_spell_leaves_the_step_free() -> None:
    vocab = Vocabulary(["a", "b"])
    table = NameTable.of(NameGuide({"self": ("zzz",)}, "x = self."))
    assert table is not None
    assert NameConstraint(table, vocab).mask("") is None


def test_table_keeps_identifiers_only_and_drops_empty_receivers() -> None:
    table = NameTable.of(NameGuide({"self": ("b", "a", "not a name", "a"), "1x": ("a",),
                                    "os": ("",), "os.path": ("join",)}))
    assert table is not None
    assert dict(table.members) == {"self": ("a", "b"), "os.path": ("join",)}
    assert NameTable.of(NameGuide({"os": ("not-a-name",)})) is None
    assert NameTable.of(None) is None


def test_dotted_receiver() -> None:
    table = NameTable.of(NameGuide({"os.path": ("join", "sep")}, "x = os.path."))
    assert table is not None
    mask = NameConstraint(table, Vocabulary(["join", "jo", "exists", "("])).mask("")
    assert mask is not None and mask.tolist() == [True, True, False, False]


def test_cache_returns_the_same_answer() -> None:
    names = ("lineno", "pushback")
    first = VOCAB.allowed_after(names, "push")
    assert first is not None and VOCAB.allowed_after(names, "push") == first
    assert VOCAB.allowed_after(names, "q") is None


def test_guide_crosses_the_host_pipe() -> None:
    guide = NameGuide({"self": ("lineno", "pushback")}, "        if self.", ("self", "cls"))
    request = GenerationRequest(prompt="p", names=guide)
    assert unpack(pack(request, 0.0), 0.0).names == guide
    assert unpack(pack(GenerationRequest(prompt="p"), 0.0), 0.0).names is None


def test_bare_table_near_the_last_one_starts_from_it() -> None:
    vocab = Vocabulary(TEXTS)
    first = ("len", "result", "x")
    plain, _ = vocab.fresh_misfits(first)
    assert plain[_ids("ok")].all() and not plain[_ids("res")].any()
    # The cursor moved a line: `value` is spelled now, `result` no longer.
    plain, spaced = vocab.fresh_misfits(("len", "value", "x"))
    assert not plain[_ids("value")].any() and not spaced[_ids(" v")].any()
    assert not plain[_ids("res")].any()  # a name it lacks stays allowed: the check judges
    assert plain[_ids("ok")].all()
    # Far from it (more than FRESH_DRIFT names either way): computed in full again.
    far = tuple(sorted({"len", "x"} | {f"n{index}" for index in range(100)}))
    plain, _ = vocab.fresh_misfits(far)
    assert plain[_ids("res")].all() and plain[_ids("value")].all()


def test_a_huge_bare_name_is_left_to_the_check() -> None:
    """A document with one 2 MB identifier must not make a 2 MB-wide numpy string array."""
    table = NameTable.of(NameGuide({}, "        return ", (), ("len", "x" * 2_000_000)))
    assert table is not None and table.bare == ("len",)
    assert NameConstraint(table, VOCAB).mask("") is not None
