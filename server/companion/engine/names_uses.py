"""What a suggestion uses and binds, read with tree-sitter (error-tolerant), for the name
check (`names.py`).

A name is bound by the code itself when it is an assignment, def/class or parameter,
for/with/except/import target, comprehension or lambda variable, `:=` or match pattern;
every other identifier is a use: a bare name, or `receiver.attribute` for an identifier
receiver (`self.x = ...` defines x). What does not parse (prose, a half statement) is
neither.
"""

from __future__ import annotations

from dataclasses import dataclass

from tree_sitter import Node

from companion.engine import syntax
from companion.engine.languages import spec_for


def _identifiers(node: Node) -> list[Node]:
    """The identifiers a binding target binds (`a`, `a, *b`, `(a, b)`; not `x.a`, `x[a]`)."""
    if node.type == "identifier":
        return [node]
    if node.type in ("pattern_list", "tuple_pattern", "list_pattern", "tuple", "list",
                     "list_splat_pattern", "parenthesized_expression", "as_pattern_target",
                     "expression_list", "list_splat", "dictionary_splat_pattern"):
        found: list[Node] = []
        for child in node.named_children:
            found.extend(_identifiers(child))
        return found
    return []


def _bindings(root: Node) -> set[int]:
    """Start bytes of the identifiers that the code binds (a cheap single walk)."""
    bound: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        kind = node.type
        targets: list[Node | None] = []
        if kind in ("assignment", "augmented_assignment", "for_statement", "for_in_clause"):
            targets.append(node.child_by_field_name("left"))
        elif kind in ("function_definition", "class_definition", "named_expression"):
            targets.append(node.child_by_field_name("name"))
        elif kind in ("parameters", "lambda_parameters"):
            for child in node.named_children:
                if child.type == "identifier":
                    targets.append(child)
                elif child.type in ("default_parameter", "typed_default_parameter"):
                    targets.append(child.child_by_field_name("name"))
                elif child.type == "typed_parameter":
                    targets.extend(child.named_children[:1])
                elif child.type in ("list_splat_pattern", "dictionary_splat_pattern"):
                    targets.append(child)
        elif kind == "as_pattern":
            targets.append(node.child_by_field_name("alias"))
        elif kind in ("global_statement", "nonlocal_statement"):
            targets.extend(node.named_children)
        elif kind == "keyword_argument":
            targets.append(node.child_by_field_name("name"))
        elif kind in ("import_statement", "import_from_statement", "future_import_statement"):
            bound.update(_every_identifier(node))  # a module path is no use of a name
        elif kind == "case_pattern" or kind == "keyword_pattern":
            bound.update(_every_identifier(node))  # match patterns bind (lenient)
        for target in targets:
            if target is not None:
                for identifier in _identifiers(target):
                    bound.add(identifier.start_byte)
        stack.extend(node.children)
    return bound


def _every_identifier(node: Node) -> set[int]:
    found: set[int] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type == "identifier":
            found.add(current.start_byte)
        stack.extend(current.children)
    return found


def _statement_start(node: Node) -> int:
    """The start byte of the statement around `node`."""
    current: Node | None = node
    while current is not None and current.parent is not None:
        if current.parent.type in ("module", "block"):
            return current.start_byte
        current = current.parent
    return node.start_byte


@dataclass(frozen=True)
class Uses:
    bare: list[tuple[str, int, int]]  # (name, start byte, statement start byte)
    attributes: list[tuple[str, str, int, int]]  # (receiver, attribute, start, statement)
    defined: set[str]  # names the suggestion binds
    # `self.x = ...` in the suggestion: x → where it exists from (the assignment's end,
    # relative to the suggestion's start: a use before that is no use of it)
    defined_attributes: dict[str, int]


def uses(snippet: bytes, base: int) -> Uses:
    """What the code in `snippet` from byte `base` on uses and binds."""
    tree = syntax.parse(spec_for("python"), snippet.decode("utf-8", errors="replace"))
    if tree is None:
        return Uses([], [], set(), {})
    root = tree.root_node
    bound = _bindings(root)
    bare: list[tuple[str, int, int]] = []
    attributes: list[tuple[str, str, int, int]] = []
    defined: set[str] = set()
    defined_attributes: dict[str, int] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" and node.end_byte > base:
            continue  # what does not parse (prose, a half statement) is not judged
        stack.extend(reversed(node.children))
        if node.end_byte <= base:
            continue
        if node.type == "attribute":
            receiver = node.child_by_field_name("object")
            attribute = node.child_by_field_name("attribute")
            if receiver is None or attribute is None or receiver.type != "identifier":
                continue
            owner = _text(receiver)
            assignment = _assignment_of(node)
            if assignment is not None:
                name = _text(attribute)
                end = assignment.end_byte - base
                defined_attributes[name] = min(end, defined_attributes.get(name, end))
            elif attribute.end_byte > base:
                attributes.append((owner, _text(attribute), receiver.start_byte - base,
                                   _statement_start(node) - base))
            continue
        if node.type != "identifier":
            continue
        parent = node.parent
        if parent is not None and parent.type == "attribute" and \
                parent.child_by_field_name("attribute") == node:
            continue
        if node.start_byte in bound:
            defined.add(_text(node))
            continue
        bare.append((_text(node), node.start_byte - base, _statement_start(node) - base))
    return Uses(bare, attributes, defined, defined_attributes)


def _assignment_of(node: Node) -> Node | None:
    """The assignment, loop or `with` that the attribute `node` is (part of) the target
    of, else None. A loop's target exists from the loop's header on."""
    child, parent = node, node.parent
    while parent is not None and parent.type in ("pattern_list", "tuple_pattern",
                                                 "list_pattern", "tuple", "list"):
        child, parent = parent, parent.parent
    if parent is None:
        return None
    if parent.type in ("assignment", "augmented_assignment", "for_statement"):
        if parent.child_by_field_name("left") != child:
            return None
        return child if parent.type == "for_statement" else parent
    return parent if parent.type == "as_pattern_target" else None


def _text(node: Node) -> str:
    return (node.text or b"").decode("utf-8", errors="replace")
