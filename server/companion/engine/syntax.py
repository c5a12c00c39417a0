"""What is the situation at the cursor, read from a tree-sitter syntax tree.

One module owns this question for every language `tree-sitter-language-pack` covers:
is the cursor inside a string or a comment, on the empty line of an empty block (room
for a multi-line suggestion), in the middle of an expression, or right before the end of
its block? The post-processing also asks the tree whether a candidate suggestion leaves
the document with more syntax errors than it had (`error_count`), which is how it trims
back to the last complete statement.

Parsers are built once per grammar. A grammar that cannot be had (not in the installed
language pack) means no tree: every caller then falls back to the lexer's view.
"""

from __future__ import annotations

import functools
import importlib
import logging
from dataclasses import dataclass

from tree_sitter import Node, Parser, Tree

from companion.engine.languages import LanguageSpec

log = logging.getLogger(__name__)

_STRING_TYPES = ("string", "template", "heredoc", "char_literal", "character_literal",
                 "rune_literal", "raw_string", "encapsed")
_KEYWORD_OPENERS = frozenset({
    "def", "class", "module", "if", "unless", "while", "until", "case", "begin", "for",
    "function",
})
_ENDS_EXPRESSION = frozenset({";", "{", "}", ")", "]", ":", "end", "fi", "done", "esac"})


@functools.cache
def parser_for(grammar: str) -> Parser | None:
    """The tree-sitter parser of `grammar`, or None when the language pack lacks it."""
    if not grammar:
        return None
    try:
        # Imported by name: the pack's typing stubs (and a bundled grammar's) are not
        # mypy-clean, and the call is one line.
        pack = importlib.import_module("tree_sitter_language_pack")
        parser: Parser = pack.get_parser(grammar)
        return parser
    except Exception as error:  # not installed, not in this pack, or a download refused
        log.info("no tree-sitter grammar for %s: %s", grammar, error)
        return None


def parse(spec: LanguageSpec, text: str) -> Tree | None:
    """The syntax tree of `text`, or None without a grammar."""
    parser = parser_for(spec.grammar)
    if parser is None:
        return None
    return parser.parse(text.encode("utf-8"))


def error_count(tree: Tree) -> int:
    """ERROR and MISSING nodes in the tree (0 for a document that parses)."""
    if not tree.root_node.has_error:
        return 0
    count = 0
    cursor = tree.walk()
    while True:
        node = cursor.node
        if node is not None and (node.is_error or node.is_missing):
            count += 1
        if node is not None and node.has_error and not node.is_error and cursor.goto_first_child():
            continue
        while not cursor.goto_next_sibling():
            if not cursor.goto_parent():
                return count


def errors_in(spec: LanguageSpec, text: str) -> int | None:
    """Syntax errors in `text`; None when there is no grammar to tell."""
    tree = parse(spec, text)
    return None if tree is None else error_count(tree)


@dataclass(frozen=True)
class Situation:
    """The cursor's syntactic situation."""

    node_type: str = ""  # the smallest named node around the cursor
    in_string: bool = False
    in_comment: bool = False
    empty_block: bool = False  # a blank line in a block that holds no statement yet
    mid_expression: bool = False  # text before the cursor on its line is an open expression
    block_end: bool = False  # the next line after the cursor closes the cursor's block

    @property
    def single_line(self) -> bool:
        """Inside a comment or a one-line string the suggestion finishes that line only."""
        return self.in_comment or self.in_string


def _is_string(node_type: str) -> bool:
    return any(part in node_type for part in _STRING_TYPES) and "interpolation" not in node_type


def _enclosing(node: Node | None, offset: int) -> tuple[bool, bool]:
    """(in a string, in a comment) for a cursor at byte `offset` within `node`."""
    while node is not None:
        inside = node.start_byte < offset < node.end_byte or (
            node.start_byte < offset == node.end_byte and node.type.endswith("comment")
            and not node.text.endswith(b"*/")  # type: ignore[union-attr]
        )
        if "interpolation" in node.type or node.type == "template_substitution":
            return False, False  # `${code}` in a string is code
        if inside and "comment" in node.type:
            return False, True
        if inside and _is_string(node.type):
            return True, False
        node = node.parent
    return False, False


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _opens_block(spec: LanguageSpec, line: str) -> bool:
    """Does `line` open a block (`{`, Python's `:`, `then`, `do`, `def name`)?"""
    code = line.strip()
    if spec.blocks == "indent":
        return code.endswith(":")
    words = code.replace(";", " ").split()
    return code.endswith("{") or (spec.blocks == "keywords" and bool(words) and (
        words[-1] in {"then", "do", "else"} or words[0] in _KEYWORD_OPENERS
        or (words[-1].startswith("|") and "do" in words)))


def _closes_block(spec: LanguageSpec, line: str, indent: str) -> bool:
    """Does `line`, the first one after the cursor's, end the cursor's block?"""
    code = line.strip()
    if not code:
        return True  # the end of the window
    if spec.blocks == "indent":
        return len(_indent(line)) < len(indent)
    first = code.split()[0].rstrip(";")
    return code[0] in "}])" or first in spec.end_keywords or first in {"else", "elif", "elsif"}


def situation(spec: LanguageSpec, prefix: str, suffix: str, line_prefix: str) -> Situation:
    """The situation of a cursor between `prefix` and `suffix`."""
    tree = parse(spec, prefix + suffix)
    if tree is None:
        return Situation()
    offset = len(prefix.encode("utf-8"))
    root = tree.root_node
    leaf = root.descendant_for_byte_range(max(0, offset - 1), offset)
    in_string, in_comment = _enclosing(leaf, offset)
    named = root.named_descendant_for_byte_range(offset, offset)
    node_type = named.type if named is not None else ""
    blank = not line_prefix.strip()
    above = next((line for line in reversed(prefix.split("\n")[:-1]) if line.strip()), "")
    below = next((line for line in suffix.split("\n")[1:] if line.strip()), "")
    block_end = _closes_block(spec, below, line_prefix if blank else _indent(line_prefix))
    empty_block = blank and block_end and not (in_string or in_comment) and _opens_block(
        spec, above)
    mid_expression = False
    end = len(prefix.rstrip().encode("utf-8"))
    if not blank and not (in_string or in_comment) and end > 0:
        before = root.descendant_for_byte_range(end - 1, end)
        if before is not None and not before.is_named:  # an operator, keyword or bracket
            mid_expression = before.type not in _ENDS_EXPRESSION
        elif before is not None:
            mid_expression = before.is_error or (
                before.parent is not None and before.parent.is_error)
    return Situation(node_type, in_string, in_comment, empty_block, mid_expression, block_end)
