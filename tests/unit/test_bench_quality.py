"""The quality benchmark's hole cutting, splicing and sandboxed test runs."""

from __future__ import annotations

import pytest

from companion.bench.quality import (
    Case,
    Problem,
    multi_line_case,
    normalise,
    run_tests,
    sample,
    single_line_cases,
    splice,
)

PROBLEM = Problem(
    task_id="T/0",
    prompt='def total(values):\n    """Sum of positive values."""\n',
    solution="    result = 0\n    for value in values:\n        if value > 0:\n"
             "            result += value\n    return result\n",
    test="def check(candidate):\n    assert candidate([1, -2, 3]) == 4\n",
    entry_point="total",
)


def test_single_line_holes_cover_every_line() -> None:
    cases = single_line_cases(PROBLEM)
    assert [c.expected for c in cases] == [
        "result = 0", "for value in values:", "if value > 0:", "result += value",
        "return result"]
    assert cases[3].before.endswith("        if value > 0:\n            ")
    assert cases[3].after.startswith("    return result")


def test_multi_line_hole_is_the_first_block() -> None:
    case = multi_line_case(PROBLEM)
    assert case is not None
    assert case.expected == ("for value in values:\n        if value > 0:\n"
                             "            result += value")
    assert case.before.endswith("    result = 0\n    ")


def test_splice_and_sandboxed_tests() -> None:
    case = single_line_cases(PROBLEM)[4]
    assert run_tests(splice(case, "return result"), PROBLEM)
    assert not run_tests(splice(case, "return -1"), PROBLEM)


def test_a_hanging_candidate_times_out() -> None:
    case = single_line_cases(PROBLEM)[4]
    assert not run_tests(splice(case, "while True: pass"), PROBLEM)


def test_sample_and_normalise() -> None:
    cases: list[Case] = single_line_cases(PROBLEM)
    assert len(sample(cases, 2)) == 2 and sample(cases, 0) == cases
    assert normalise("  a  =\tb ") == "a = b"


@pytest.mark.parametrize("program", ["import os\nos.system('true')\nraise SystemExit(1)"])
def test_failing_programs_fail(program: str) -> None:
    assert not run_tests(program, PROBLEM)
