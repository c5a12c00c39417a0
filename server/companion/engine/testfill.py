"""Model-written test cases for the pytest scaffold.

The template always gives a valid test file; when a model is loaded it is asked to finish
`assert name(` lines from the function's source. A line is kept only if it compiles and
states an expected value (`==`); the scaffold never depends on the model being right, and
the server never runs what the model wrote.
"""

from __future__ import annotations

import ast
import builtins

from companion.engine.completer import Engine
from companion.engine.prompts import Prompt

MAX_CASES = 2


def _valid_assertion(line: str, name: str) -> bool:
    if "==" not in line or not line.startswith(f"assert {name}("):
        return False
    try:
        tree = ast.parse(line)
    except SyntaxError:
        return False
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Assert):
        return False
    # Only the function itself, builtins and literals: a name the model made up would
    # fail as a NameError, not as a wrong expected value.
    known = {name} | set(dir(builtins))
    return all(node.id in known for node in ast.walk(tree) if isinstance(node, ast.Name))


async def model_assertions(engine: Engine, source: str, name: str) -> list[str]:
    """Up to MAX_CASES `assert name(...) == ...` lines written by the model."""
    found: list[str] = []
    written = ""
    for _ in range(MAX_CASES):
        text = f"{source.rstrip()}\n\n\ndef test_{name}():\n{written}    assert {name}("
        answer = await engine.generate_text(
            f"testfill:{name}", Prompt(text, ("\n",)), max_tokens=40, timeout_s=20
        )
        if not answer:
            break
        line = f"assert {name}({answer.strip()}"
        if not _valid_assertion(line, name) or line in found:
            break
        found.append(line)
        written += f"    {line}\n"
    return found


def with_examples(test_file: str, name: str, assertions: list[str]) -> str:
    """The template's test file plus a test of the model's cases (unchanged if none, or
    if the result would not compile)."""
    if not assertions:
        return test_file
    body = "\n".join(f"    {line}" for line in assertions)
    extended = (
        f"{test_file.rstrip()}\n\n\ndef test_{name}_examples() -> None:\n"
        f"    # Written by the model from the source of {name}: check the expected values.\n"
        f"{body}\n"
    )
    try:
        compile(extended, "test_scaffold.py", "exec")
    except SyntaxError:
        return test_file
    return extended
