"""Finding the definition under the cursor for hovers (no model)."""

from __future__ import annotations

from companion.engine.explain import Explainer, find_definition, static_markdown, word_at

SOURCE = '''import os.path as osp
from typing import Any


class Cart:
    """A shopping cart."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.items: list[Any] = []

    def add(self, item: Any) -> None:
        """Put an item in the cart."""
        self.items.append(item)


def checkout(cart: Cart) -> int:
    total = len(cart.items)
    return total


cart = Cart("ada")
checkout(cart)
print(osp.join("a", "b"))
'''


def test_word_at() -> None:
    assert word_at("checkout(cart)", 3) == "checkout"
    assert word_at("checkout(cart)", 10) == "cart"
    assert word_at("   ", 1) == ""


def test_function_from_its_call_site() -> None:
    definition = find_definition(SOURCE, 22, 2)
    assert definition is not None
    assert definition.kind == "function"
    assert definition.signature == "def checkout(cart: Cart) -> int:"
    assert definition.line == 16
    assert definition.use_line == "checkout(cart)"
    assert "return total" in definition.source


def test_class_method_and_docstrings() -> None:
    cls = find_definition(SOURCE, 21, 8)  # Cart( in `cart = Cart("ada")`
    assert cls is not None and cls.kind == "class" and cls.docstring == "A shopping cart."
    method = find_definition(SOURCE, 11, 9)
    assert method is not None and method.kind == "method"
    assert method.docstring == "Put an item in the cart."
    assert method.use_line == ""  # hovering the definition itself


def test_variables_parameters_and_imports() -> None:
    variable = find_definition(SOURCE, 18, 12)  # `total` in `return total`
    assert variable is not None and variable.kind == "variable"
    assert variable.signature == "total = len(cart.items)"
    parameter = find_definition(SOURCE, 17, 16)  # `cart` inside checkout
    assert parameter is not None and parameter.kind == "parameter"
    assert "parameter of checkout" in parameter.signature
    imported = find_definition(SOURCE, 23, 7)  # osp
    assert imported is not None and imported.kind == "import"


def test_keywords_and_blank_spots_have_no_hover() -> None:
    assert find_definition(SOURCE, 16, 1) is None  # `def`
    assert find_definition(SOURCE, 3, 0) is None  # blank line
    assert find_definition(SOURCE, 99, 0) is None


def test_code_that_does_not_parse_still_finds_definitions() -> None:
    broken = SOURCE + "\nvalue = checkout(\n"
    definition = find_definition(broken, 22, 2)
    assert definition is not None and definition.signature.startswith("def checkout")
    cls = find_definition(broken, 21, 8)
    assert cls is not None and cls.docstring == "A shopping cart."


def test_static_markdown() -> None:
    definition = find_definition(SOURCE, 22, 2)
    assert definition is not None
    text = static_markdown(definition, "/work/shop.py")
    assert text.startswith("```python\ndef checkout(cart: Cart) -> int:\n```")
    assert "shop.py:17" in text


def test_explainer_cache_is_bounded() -> None:
    explainer = Explainer(size=2)
    explainer.put("a", "first")
    assert explainer.get("a") == "first"
    explainer.put("b", "second")
    explainer.put("c", "third")
    assert explainer.get("a") is None  # bounded


def test_model_written_assertions_are_checked() -> None:
    from companion.engine.testfill import _valid_assertion, with_examples

    assert _valid_assertion("assert add(1, 2) == 3", "add")
    assert not _valid_assertion("assert add(1, 2)", "add")  # no expected value
    assert not _valid_assertion('assert add(name, 2) == 3', "add")  # a made-up name
    assert not _valid_assertion("assert add(1, == 3", "add")
    assert not _valid_assertion("import os; assert add(1) == 1", "add")
    base = "def test_add() -> None:\n    assert add(0, 0) == 0\n"
    assert with_examples(base, "add", []) == base
    extended = with_examples(base, "add", ["assert add(1, 2) == 3"])
    assert "def test_add_examples() -> None:" in extended
    compile(extended, "t.py", "exec")
