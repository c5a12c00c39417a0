"""Every language, end to end: ghost text and hovers in JavaScript, TypeScript, Go, Rust,
Java and C through the real server and the real embedded model.

The model's greedy text changes with the machine, so the tests assert properties: the
ghost text leaves the document's brackets balanced, never repeats the code after the
cursor, and a hover on a function defined in the file shows its signature, its doc
comment and an explanation.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient

from companion.engine.blocks import CLOSER_LINE
from companion.engine.brackets import balance
from companion.engine.languages import spec_for
from tests.e2e.conftest import cursor_of, inline, insert_text

MakeClient = Callable[..., Awaitable[LanguageClient]]
log = logging.getLogger(__name__)

# (VS Code language id, file name, document with the cursor █, the function to hover,
#  its signature, its doc comment)
SAMPLES = [
    ("javascript", "cart.js",
     "/** The total price of the items. */\nfunction total(items) {\n  let sum = 0;\n"
     "  for (const item of items) {\n    █\n  }\n  return sum;\n}\n\n"
     "console.log(total([{ price: 2 }]));\n",
     "total", "function total(items)", "The total price of the items."),
    ("typescriptreact", "users.tsx",
     "interface User { name: string; age: number }\n\n"
     "/** One row per user. */\nexport function summarize(users: User[]) {\n"
     "  return users.map((user, index) => ({█\n}\n\nsummarize([]);\n",
     "summarize", "export function summarize(users: User[])", "One row per user."),
    ("go", "sum.go",
     "package main\n\n// Sum adds the numbers in xs.\nfunc Sum(xs []int) int {\n\t█\n}\n\n"
     "func main() {\n\tprintln(Sum([]int{1, 2}))\n}\n",
     "Sum", "func Sum(xs []int) int", "Sum adds the numbers in xs."),
    ("rust", "max.rs",
     "/// The largest value, if any.\nfn largest(xs: &[i32]) -> Option<i32> {\n"
     "    let mut best = None;\n    for &x in xs {\n        █\n    }\n    best\n}\n\n"
     "fn main() {\n    println!(\"{:?}\", largest(&[1, 2]));\n}\n",
     "largest", "fn largest(xs: &[i32]) -> Option<i32>", "The largest value, if any."),
    ("java", "Stats.java",
     "class Stats {\n    /** The largest of the values. */\n    static int max(int[] xs) {\n"
     "        int best = xs[0];\n        for (int x : xs) {\n            █\n        }\n"
     "        return best;\n    }\n\n    public static void main(String[] args) {\n"
     "        System.out.println(max(new int[] {1, 2}));\n    }\n}\n",
     "max", "static int max(int[] xs)", "The largest of the values."),
    ("c", "max.c",
     "#include <stdio.h>\n\n/* The largest of n values. */\nint max(const int *xs, int n) {\n"
     "    int best = xs[0];\n    for (int i = 1; i < n; i++) {\n        █\n    }\n"
     "    return best;\n}\n\nint main(void) {\n    int xs[] = {1, 2};\n"
     "    printf(\"%d\\n\", max(xs, 2));\n}\n",
     "max", "int max(const int *xs, int n)", "The largest of n values."),
]


def _open(client: LanguageClient, language: str, name: str, text: str) -> str:
    uri = (Path("/tmp/companion-e2e/languages") / name).as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id=language, version=1,
                                             text=text)))
    return uri


def _next_statement(document: str) -> str:
    """The first line after the cursor's that is more than closers."""
    after = document.split("█", 1)[1]
    return next((line.strip() for line in after.split("\n")[1:]
                 if line.strip() and not CLOSER_LINE.match(line.strip())), "")


async def test_ghost_text_keeps_brackets_balanced_in_every_language(
        make_client: MakeClient) -> None:
    client = await make_client({"inlineDeadlineMs": 4000})
    answered = 0
    for language, name, document, *_ in SAMPLES:
        text, position = cursor_of(document)
        uri = _open(client, language, name, text)
        items = await inline(client, uri, position)
        assert len(items) <= 1
        if not items:
            continue
        ghost = insert_text(items[0])
        log.warning("%s ghost text: %r", language, ghost)
        answered += bool(ghost.strip())
        spec = spec_for(language)
        _, open_before = balance(text, spec)
        stray, open_after = balance(document.replace("█", ghost), spec)
        # No closer the code after the cursor already has, nothing left open.
        assert not stray, f"{language}: a closer too many in {ghost!r}"
        assert open_after <= open_before, f"{language}: brackets left open by {ghost!r}"
        following = _next_statement(document)
        lines = [line.strip() for line in ghost.split("\n")]
        assert following not in lines, f"{language}: repeats {following!r} in {ghost!r}"
    assert answered >= len(SAMPLES) // 2, "the model should answer in most languages"


async def test_hover_explains_a_function_in_every_language(make_client: MakeClient) -> None:
    client = await make_client({"hoverDeadlineMs": 60000})
    for language, name, document, function, signature, doc in SAMPLES:
        text = document.replace("█", "")
        uri = _open(client, language, name, text)
        lines = text.split("\n")
        row = next(index for index, line in enumerate(lines)
                   if function + "(" in line and index > 0 and signature not in line
                   and not line.lstrip().startswith(("/", "*")))
        result = await client.text_document_hover_async(types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=row, character=lines[row].index(function + "(") + 1)))
        assert result is not None, f"{language}: no hover on a use of {function}"
        assert isinstance(result.contents, types.MarkupContent)
        value = result.contents.value
        assert f"```{spec_for(language).tag}\n{signature}\n```" in value, value
        assert doc in value, value
        assert "✦ Companion:" in value, f"{language}: no explanation in {value!r}"
        explanation = value.split("✦ Companion:", 1)[1].strip()
        assert len(explanation.split()) >= 5, f"{language}: {explanation!r}"
