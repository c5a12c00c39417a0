"""The receivers the name guide sends (engine/names_guide.py), from real documents: what
the name check after decoding would judge, and nothing it would not."""

from __future__ import annotations

import time

import pytest

from companion.engine import names, names_guide
from tests.unit.test_names import post_context

CLASS = '''import os
import json as j


class Reader:
    def __init__(self, stream):
        self.stream = stream
        self.pushback = []

    def read(self):
        return self.█
'''


def _table(document: str, automatic: bool = False) -> dict[str, tuple[str, ...]]:
    return names_guide.member_table(post_context(document), document.replace("█", ""),
                                    automatic)


def _with_modules(document: str) -> dict[str, tuple[str, ...]]:
    """The table once jedi has answered for the imports (its first lookup takes seconds)."""
    until = time.monotonic() + 30
    table = _table(document)
    while "j" not in table and time.monotonic() < until:
        time.sleep(0.2)
        table = _table(document)
    return table


def test_self_and_imported_modules() -> None:
    table = _with_modules(CLASS)
    assert {"__init__", "pushback", "read", "stream", "__class__"} <= set(table["self"])
    assert "lineno" not in table["self"] and table["self"] == table["cls"]
    assert {"environ", "getcwd", "path"} <= set(table["os"])
    assert {"dumps", "loads"} <= set(table["j"])
    assert "json" not in table  # bound as j
    assert all(list(names) == sorted(names) for names in table.values())


def test_typing_requests_never_wait_for_jedi(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []

    def names_of(statement: str, local: str, path: str, wait_s: float) -> None:
        waits.append(wait_s)

    monkeypatch.setattr(names.MODULES, "names", names_of)
    table = _table(CLASS, automatic=True)
    assert waits and max(waits) == 0.0
    assert "os" not in table and "self" in table


def test_a_rebound_module_is_not_guided() -> None:
    rebound = CLASS.replace("import os\n", "import os\nos = object()\n")
    table = _with_modules(rebound)
    assert "j" in table and "os" not in table


def test_a_class_the_file_does_not_tell_completely_is_not_guided() -> None:
    document = CLASS.replace("class Reader:", "class Reader(Base):")
    assert "self" not in _table(document)


def test_strings_other_languages_and_off(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _table(CLASS.replace("return self.█", "return 'self.█'")) == {}
    assert names_guide.member_table(post_context("let x = self.█", path="a.js"), "") == {}
    monkeypatch.setenv(names.ENV, "0")
    assert _table(CLASS) == {}


def test_an_error_leaves_the_request_unguided(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(names_guide, "self_attributes", broken)
    assert _table(CLASS) == {}


def test_what_binds_a_module_name_other_than_an_import() -> None:
    """`bound_names` reads each line on its own (cached) and the parameter lists across
    lines: a name any of these forms binds is not judged as the module."""
    from companion.engine.names_modules import bound_names

    text = ("import json as j\nfrom os import path as p\n"
            "a = 1\nb: int = 2\nc, d = 3, 4\nfor e in []:\n    pass\n"
            "with open(a) as f:\n    pass\n"
            "def g(\n    h,\n    i=None,\n):\n    return h == i\n"
            "class K:\n    pass\n")
    assert bound_names(text) >= {"a", "b", "c", "d", "e", "f", "g", "h", "i", "K"}
    assert not bound_names(text) & {"j", "p", "json", "path"}
    edited = text.replace("a = 1", "j = 1")  # one line changed: its answer read again
    assert "j" in bound_names(edited) and "a" not in bound_names(edited)


BARE = '''import os
from collections import OrderedDict


def total(items, scale=2):
    counted = OrderedDict()
    for item in items:
        counted[item] = len(item) * scale
        counted.move_to_end(item)
    # comments count too (lenient, as the check): mentioned_in_a_comment
    return typed_only_here + █
'''


def test_bare_names_are_what_the_check_counts_off_the_cursor_line() -> None:
    document = BARE.replace("█", "")
    bare = names_guide.bare_names(post_context(BARE), document)
    assert list(bare) == sorted(set(bare))
    assert {"os", "OrderedDict", "total", "items", "scale", "counted", "item",
            "mentioned_in_a_comment"} <= set(bare)
    assert {"len", "None", "return", "print"} <= set(bare)
    assert "typed_only_here" not in bare  # the cursor's line: the engine adds it as it goes
    assert "move_to_end" not in bare  # spelled only after a `.`: no bare name
    # The same table while the user types on the line: the engine's cache holds.
    typed = BARE.replace("█", "sca█")
    assert names_guide.bare_names(post_context(typed), typed.replace("█", "")) == bare


def test_bare_names_are_not_guided_where_the_check_does_not_judge_them(
        monkeypatch: pytest.MonkeyPatch) -> None:
    star = "from os.path import *\n" + BARE
    assert names_guide.bare_names(post_context(star), star.replace("█", "")) == ()
    in_string = BARE.replace("█", "'█")
    assert names_guide.bare_names(post_context(in_string), in_string.replace("█", "")) == ()
    monkeypatch.setenv(names.ENV, "0")
    assert names_guide.bare_names(post_context(BARE), BARE.replace("█", "")) == ()
