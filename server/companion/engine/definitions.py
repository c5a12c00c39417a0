"""Definitions in any language, from its tree-sitter tree: for hovers and explanations.

The hover's static part: the definition's signature (its text up to the body), its doc
comment (JSDoc and `/** */`, Rust's and C#'s `///`, Go's `// Name ...` lines, `#` in
Ruby and the shell) and where it is. A name the file imports (`import { x } from`, `use
a::B`, `import "fmt"`) resolves to the import. Python has its own reader in `explain`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tree_sitter import Node

from companion.engine import syntax
from companion.engine.languages import LanguageSpec

MAX_SOURCE_CHARS = 2400
MAX_SIGNATURE_CHARS = 300

_FUNCTIONS = frozenset({
    "function_declaration", "function_definition", "function_item", "method_definition",
    "method_declaration", "method", "singleton_method", "constructor_declaration",
    "generator_function_declaration", "method_signature", "abstract_method_signature",
    "function_signature", "function_signature_item", "local_function_statement",
    "operator_declaration", "destructor_declaration",
})
_TYPES = frozenset({
    "class_declaration", "class_definition", "class_specifier", "struct_specifier",
    "union_specifier", "enum_specifier", "struct_item", "enum_item", "union_item",
    "trait_item", "type_item", "mod_item", "interface_declaration", "struct_declaration",
    "enum_declaration", "record_declaration", "type_spec", "type_alias_declaration",
    "class", "module", "trait_declaration", "abstract_class_declaration",
})
_VARIABLES = frozenset({
    "variable_declarator", "const_spec", "var_spec", "let_declaration", "const_item",
    "static_item", "init_declarator", "const_declaration_item",
})
_IMPORTS = frozenset({
    "import_statement", "import_declaration", "use_declaration", "using_directive",
    "namespace_use_declaration", "import_spec",
})
# Nodes that wrap a definition and carry its doc comment before them.
_WRAPPERS = frozenset({
    "export_statement", "lexical_declaration", "variable_declaration", "type_declaration",
    "const_declaration", "var_declaration", "template_declaration", "decorated_definition",
    "declaration", "field_declaration", "local_variable_declaration", "ambient_declaration",
})
_CLASS_BODIES = frozenset({
    "class_body", "declaration_list", "field_declaration_list", "body_statement",
    "interface_body", "impl_item", "object_type",
})
_NAME_TYPES = ("identifier", "name", "constant", "word", "variable_name")
_BODY_FIELDS = ("body", "value")


@dataclass(frozen=True)
class Found:
    """A definition found in the tree."""

    name: str
    kind: str  # "function" | "method" | "class" | "variable" | "import"
    signature: str
    doc: str
    source: str
    line: int  # where the definition starts (an `export` or a declaration included)
    name_line: int  # where its name is


def _is_name(node: Node) -> bool:
    return node.type.endswith(_NAME_TYPES) or node.type in {"field_identifier", "word"}


def _name_of(node: Node) -> Node | None:
    """The node naming a definition: its `name` field, or the identifier at the end of
    its `declarator` chain (C's `int *max(int a)`)."""
    name = node.child_by_field_name("name")
    if name is not None:
        return name
    current: Node | None = node
    for _ in range(6):
        if current is None:
            return None
        if current is not node and _is_name(current):
            if current.type == "qualified_identifier":
                return current.child_by_field_name("name") or current
            return current
        current = current.child_by_field_name("declarator") or current.child_by_field_name(
            "pattern")
    return None


def _text(node: Node) -> str:
    return (node.text or b"").decode("utf-8", "replace")


def _outer(node: Node) -> Node:
    """The definition with the nodes that wrap it (`export`, `const x = ...`)."""
    while node.parent is not None and node.parent.type in _WRAPPERS:
        node = node.parent
    return node


def _signature(node: Node, outer: Node) -> str:
    body: Node | None = None
    for field in _BODY_FIELDS:
        body = node.child_by_field_name(field)
        if body is not None:
            break
    if body is not None and body.type in _FUNCTION_VALUES:
        body = body.child_by_field_name("body") or body
    text = _text(outer)
    if body is not None and body.start_byte > outer.start_byte:
        text = text[: body.start_byte - outer.start_byte]
    text = text.strip().rstrip("{=").rstrip()
    if len(text) > MAX_SIGNATURE_CHARS or text.count("\n") > 5:
        text = text.split("\n", 1)[0]
    return text


_DOC_MARKERS = re.compile(r"^\s*(?:/\*\*+|/\*!?|\*/|\*|///?!?|//|#|--)\s?")


def _clean_comment(text: str) -> list[str]:
    lines = []
    for line in text.replace("*/", "").split("\n"):
        line = _DOC_MARKERS.sub("", line).rstrip()
        line = re.sub(r"</?(?:summary|remarks|returns)>", "", line).strip()
        lines.append(line)
    return lines


def _doc(outer: Node) -> str:
    """The comments right above a definition (no blank line between), as text."""
    comments: list[str] = []
    expected_row = outer.start_point[0]
    sibling = outer.prev_named_sibling
    while sibling is not None:
        if sibling.type in {"attribute_item", "attribute", "decorator", "annotation"}:
            expected_row = sibling.start_point[0]
            sibling = sibling.prev_named_sibling
            continue
        if "comment" not in sibling.type or sibling.end_point[0] < expected_row - 1:
            break
        text = _text(sibling).strip()
        if text.startswith("#!"):
            break
        comments.insert(0, text)
        expected_row = sibling.start_point[0]
        sibling = sibling.prev_named_sibling
    lines = [line for comment in comments for line in _clean_comment(comment)]
    return "\n".join(lines).strip()


_FUNCTION_VALUES = frozenset({"arrow_function", "function_expression", "function",
                              "func_literal", "lambda_expression", "closure_expression"})


def _kind(node: Node) -> str:
    if node.type in _TYPES:
        return "class"
    if node.type in _VARIABLES:
        value = node.child_by_field_name("value")
        return "function" if value is not None and value.type in _FUNCTION_VALUES else (
            "variable")
    parent = node.parent
    while parent is not None and parent.type in _WRAPPERS:
        parent = parent.parent
    return "method" if parent is not None and parent.type in _CLASS_BODIES else "function"


def _imports(node: Node, name: str) -> bool:
    return any(
        _is_name(leaf) and _text(leaf) == name for leaf in _leaves(node)
    ) or f'"{name}"' in _text(node) or f"/{name}\"" in _text(node)


def _leaves(node: Node) -> list[Node]:
    found: list[Node] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if current.child_count == 0:
            found.append(current)
        stack.extend(current.children)
    return found


def definitions(spec: LanguageSpec, text: str, name: str) -> list[Found]:
    """Every definition of `name` in `text`, in document order."""
    tree = syntax.parse(spec, text)
    if tree is None:
        return []
    found: list[Found] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        stack.extend(reversed(node.named_children))
        if node.type in _IMPORTS and _imports(node, name):
            source = _text(node).strip()
            found.append(Found(name, "import", source.split("\n")[0], "", source,
                               node.start_point[0], node.start_point[0]))
            continue
        if node.type not in _FUNCTIONS and node.type not in _TYPES \
                and node.type not in _VARIABLES:
            continue
        named = _name_of(node)
        if named is None or _text(named) != name:
            continue
        outer = _outer(node)
        found.append(Found(name, _kind(node), _signature(node, outer), _doc(outer),
                           _text(outer)[:MAX_SOURCE_CHARS], outer.start_point[0],
                           named.start_point[0]))
    found.sort(key=lambda definition: definition.line)
    return found


def name_at(spec: LanguageSpec, text: str, line: int, column: int) -> str:
    """The identifier under (line, column) (str indices), or "" on a keyword, in a
    comment or a string, or where there is no grammar."""
    tree = syntax.parse(spec, text)
    if tree is None:
        return ""
    lines = text.split("\n")
    if not 0 <= line < len(lines):
        return ""
    row = lines[line]
    for offset in (column, column - 1):
        if not 0 <= offset < len(row):
            continue
        byte = len(row[:offset].encode("utf-8"))
        node = tree.root_node.descendant_for_point_range((line, byte), (line, byte))
        if node is not None and _is_name(node) and node.child_count == 0:
            return _text(node).lstrip("$")
    return ""
