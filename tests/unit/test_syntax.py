"""The cursor's situation from the tree, per language (tests/golden/situations.json), and
the syntax error counts post-processing relies on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from companion.engine import syntax
from companion.engine.languages import SPECS, spec_for

CASES: list[dict[str, Any]] = json.loads(
    (Path(__file__).parents[1] / "golden" / "situations.json").read_text(encoding="utf-8")
)["cases"]


@pytest.mark.parametrize("case", CASES, ids=[f"{c['language']}: {c['name']}" for c in CASES])
def test_situation(case: dict[str, Any]) -> None:
    prefix, _, suffix = case["document"].partition("█")
    line_prefix = prefix.rsplit("\n", 1)[-1]
    found = syntax.situation(spec_for(case["language"]), prefix, suffix, line_prefix)
    for field, value in case["expected"].items():
        assert getattr(found, field) == value, f"{field}: {found}"


@pytest.mark.parametrize("language", sorted(SPECS))
def test_every_language_with_a_grammar_parses(language: str) -> None:
    spec = SPECS[language]
    assert syntax.parser_for(spec.grammar) is not None, f"no grammar {spec.grammar!r}"


def test_error_counts() -> None:
    spec = spec_for("javascript")
    assert syntax.errors_in(spec, "function f() { return 1; }\n") == 0
    assert (syntax.errors_in(spec, "function f() { return (1; }\n") or 0) > 0
    assert syntax.errors_in(spec_for("plaintext"), "anything") is None


def test_no_grammar_means_no_situation() -> None:
    assert syntax.situation(spec_for("plaintext"), "a ", "b", "a ") == syntax.Situation()
    assert syntax.parser_for("no-such-grammar") is None
