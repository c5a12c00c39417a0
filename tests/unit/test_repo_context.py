"""Repository context on real files (this package's own sources): jedi definitions, the
attributes of self's class, similar windows, the caches and the time cap."""

from __future__ import annotations

import time
from pathlib import Path

import companion.engine.completer as completer_module
from companion.engine.context import build_context
from companion.engine.prompts import build_prompt
from companion.engine.repo_context import (
    RepoContext,
    SimilarWindows,
    identifiers,
    jaccard,
    project_root,
    python_definitions,
)

COMPLETER = Path(completer_module.__file__)
ENGINE = COMPLETER.parent
COMPLETER_TEXT = COMPLETER.read_text(encoding="utf-8")
BACKGROUND = ENGINE / "background.py"
BACKGROUND_TEXT = BACKGROUND.read_text(encoding="utf-8")


def _cursor_after(text: str, marker: str) -> tuple[int, int]:
    """The (line, column) right after the first `marker` in `text`."""
    index = text.index(marker) + len(marker)
    before = text[:index].split("\n")
    return len(before) - 1, len(before[-1])


def _context(text: str, marker: str, path: Path = COMPLETER, prefix_chars: int = 1200):
    line, column = _cursor_after(text, marker)
    return build_context(text, line, column, prefix_chars=prefix_chars, path=str(path))


def test_project_root_is_above_the_outermost_package() -> None:
    assert project_root(str(COMPLETER)) == str(ENGINE.parent.parent)


def test_identifiers_leave_out_keywords_and_builtins() -> None:
    assert identifiers("for item in sorted(values): self.total += item") == {
        "item", "values", "total"}
    assert jaccard({"a", "b"}, {"b", "c"}) == 1 / 3
    assert jaccard(set(), set()) == 0.0


def test_a_called_function_from_another_module_comes_with_signature_and_docstring() -> None:
    ctx = _context(BACKGROUND_TEXT, "            prompt = build_prompt(")
    found = python_definitions(BACKGROUND_TEXT, str(BACKGROUND), ctx)
    line = next(line for line in found if "def build_prompt(" in line)
    assert line.startswith("companion/engine/prompts.py: ")
    assert "family" in line and "The prompt for a completion" in line


def test_selfs_class_lists_its_methods_and_attributes() -> None:
    ctx = _context(COMPLETER_TEXT, "gives way\n        overtaken = ")
    found = python_definitions(COMPLETER_TEXT, str(COMPLETER), ctx)
    summary = next(line for line in found if line.startswith("class Engine (self):"))
    assert "settings" in summary and "debounce" in summary  # assigned in __init__
    assert "complete(" in summary


def test_a_module_used_with_a_dot_lists_its_public_names(tmp_path: Path) -> None:
    package = tmp_path / "shop"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "pricing.py").write_text(
        "def net_price(gross: float, rate: float) -> float:\n"
        '    """The price without tax."""\n'
        "    return gross / (1 + rate)\n\n\n"
        "def _hidden() -> None: ...\n")
    text = "from shop import pricing\n\n\ndef total(items):\n    return pricing."
    path = package / "cart.py"
    path.write_text(text)
    ctx = build_context(text, 4, len("    return pricing."), path=str(path))
    found = python_definitions(text, str(path), ctx)
    assert any(line.startswith("module shop.pricing") and "net_price" in line
               and "_hidden" not in line for line in found), found


def test_definitions_visible_in_the_window_are_left_out() -> None:
    text = "def helper(a):\n    return a\n\n\ndef main():\n    return helper("
    ctx = build_context(text, 5, len("    return helper("), path="/tmp/standalone_module.py")
    assert not any("helper" in line for line in python_definitions(text, ctx.path, ctx))


def test_similar_windows_find_the_matching_code_in_another_file() -> None:
    prompts = ENGINE / "prompts.py"
    postprocess = ENGINE / "postprocess.py"
    documents = {str(p): p.read_text(encoding="utf-8") for p in (prompts, postprocess)}
    # Code that looks like the FIM templates of prompts.py.
    query = ('FIM_TEMPLATES["qwen2.5-coder"] = FimTemplate("<|fim_prefix|>", '
             '"<|fim_suffix|>", "<|fim_middle|>", stop)\nprefix suffix middle render')
    best = SimilarWindows().best(query, documents, budget_chars=800)
    assert best and best[0][0] == str(prompts)
    assert any("FimTemplate" in line for line in best[0][2])
    assert sum(len(line) + 3 for _, _, lines in best for line in lines) <= 800


def test_window_sets_are_cached_per_text() -> None:
    windows = SimilarWindows()
    first = windows.windows("a.py", COMPLETER_TEXT)
    assert windows.windows("a.py", COMPLETER_TEXT) is first
    assert windows.windows("a.py", COMPLETER_TEXT + "\nx = 1") is not first


def test_header_is_commented_stays_put_in_its_window_and_has_the_other_file() -> None:
    repo = RepoContext()
    try:
        ctx = _context(BACKGROUND_TEXT, "            prompt = build_prompt(")
        # Another open file with code like the cursor's (a copy of the lines above it).
        line = ctx.line
        lines = BACKGROUND_TEXT.split("\n")
        documents = {"/work/elsewhere/snapshot.py": "\n".join(lines[line - 40 : line - 5]),
                     str(ENGINE / "prompts.py"): (ENGINE / "prompts.py").read_text("utf-8"),
                     str(BACKGROUND): BACKGROUND_TEXT}  # the document itself is skipped
        header, complete = repo.header("file:///c.py", BACKGROUND_TEXT, ctx, documents,
                                       wait_s=60)
        assert complete and header.endswith("\n\n")
        assert all(line.startswith("# ") for line in header.rstrip("\n").split("\n"))
        assert "def build_prompt(" in header
        assert "# Similar code in snapshot.py (line " in header
        assert "completer.py" not in header.split("Names used")[0]
        assert header.index("Similar code") < header.index("Names used")  # rarely changes
        # The next keystroke in the same window: the same header, whatever jedi says.
        typed = BACKGROUND_TEXT.replace("prompt = build_prompt(", "prompt = build_prompt(c", 1)
        again, _ = repo.header("file:///c.py", typed, ctx, documents, wait_s=0)
        assert again == header
        prompt = build_prompt(ctx, "smollm2", False, repo_header=header)
        assert prompt.text.startswith(header) and prompt.text.endswith(ctx.prefix)
    finally:
        repo.shutdown()


def test_a_keystroke_never_waits_for_jedi() -> None:
    """With no time to wait, the header comes back before jedi has answered (marked
    incomplete), and a later request for the same version gets jedi's lines."""
    repo = RepoContext()
    try:
        ctx = _context(BACKGROUND_TEXT, "            prompt = build_prompt(")
        text = BACKGROUND_TEXT + "\n# a version jedi has not seen\n"
        started = time.perf_counter()
        _, complete = repo.header("file:///d.py", text, ctx, {}, wait_s=0)
        waited = time.perf_counter() - started
        assert not complete
        deadline = time.monotonic() + 60
        found: list[str] = []
        while time.monotonic() < deadline:
            found, complete = repo.definitions("file:///d.py", text, ctx, wait_s=1)
            if complete:
                break
        assert complete and any("def build_prompt(" in line for line in found)
        assert repo.jedi_timeouts >= 1
        assert waited < 5  # no jedi in it (jedi alone takes ~0.3 s here)
    finally:
        repo.shutdown()


def test_other_languages_get_no_jedi() -> None:
    repo = RepoContext()
    try:
        ctx = build_context("let x = 1;\n", 1, 0, language="javascript", path="a.js")
        assert repo.definitions("file:///a.js", "let x = 1;\n", ctx, wait_s=1) == ([], True)
    finally:
        repo.shutdown()
