"""How often a suggestion leaves the document's brackets balanced, per language.

Two measurements over the golden documents (tests/golden/postprocess.json and
tests/golden/languages/*.json, the cursor marked with █):

- `golden`: the recorded raw model output inserted as it is (naive) against the same
  output after post-processing;
- `model`: what the real server with its model answers at each of those cursors.

A suggestion counts as balanced when the document has no closer too many afterwards and
no more brackets open than before (`engine.brackets.leaves_balanced`).

    python -m companion.bench.languages [--no-model] [--json] [--golden DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types

from companion.engine.brackets import leaves_balanced
from companion.engine.context import build_context, split_lines
from companion.engine.languages import spec_for
from companion.engine.postprocess import PostContext, clean

MARKER = "█"
DEFAULT_GOLDEN = Path(__file__).resolve().parents[3] / "tests" / "golden"


@dataclass
class Share:
    """Balanced suggestions out of all, for one language."""

    language: str
    cases: int = 0
    naive: int = 0  # raw output balanced
    cleaned: int = 0  # post-processed output balanced
    asked: int = 0  # distinct documents the live server was asked about
    served: int = 0  # its answers that leave the brackets balanced
    answered: int = 0  # its non-empty answers
    examples: list[str] = field(default_factory=list)  # a few of its answers


def load_cases(golden: Path) -> list[dict[str, Any]]:
    """Every golden case, with its language."""
    cases: list[dict[str, Any]] = []
    for path in [golden / "postprocess.json", *sorted((golden / "languages").glob("*.json"))]:
        data = json.loads(path.read_text(encoding="utf-8"))
        language = data.get("language", "python")
        cases.extend({"language": language, **case} for case in data["cases"])
    return cases


def _context(document: str, language: str) -> PostContext:
    before = document.partition(MARKER)[0]
    lines = split_lines(before)
    cursor = build_context(document.replace(MARKER, ""), len(lines) - 1, len(lines[-1]),
                           language=language)
    return PostContext(cursor)


def golden_shares(cases: list[dict[str, Any]]) -> dict[str, Share]:
    """Naive against post-processed, over the recorded raw outputs."""
    shares: dict[str, Share] = {}
    for case in cases:
        language, document = case["language"], case["document"]
        spec = spec_for(language)
        share = shares.setdefault(language, Share(language))
        share.cases += 1
        cleaned = clean(case["raw"], _context(document, language)).text
        share.naive += leaves_balanced(document, case["raw"], MARKER, spec)
        share.cleaned += leaves_balanced(document, cleaned, MARKER, spec)
    return shares


_EXTENSIONS = {"python": "py", "javascript": "js", "typescript": "ts", "tsx": "tsx",
               "go": "go", "rust": "rs", "java": "java", "c": "c", "cpp": "cpp",
               "csharp": "cs", "ruby": "rb", "php": "php", "shell": "sh"}


async def served_shares(cases: list[dict[str, Any]], shares: dict[str, Share]) -> None:
    """Ask the real server (default settings, its model) at every golden cursor."""
    from companion.lspclient import CompanionClient

    client = CompanionClient()
    await client.start({"inlineDeadlineMs": 4000})
    try:
        await client.wait_ready()
        folder = Path(tempfile.mkdtemp(prefix="companion-bench-languages-"))
        seen: set[tuple[str, str]] = set()
        for number, case in enumerate(cases):
            language, document = case["language"], case["document"]
            if (language, document) in seen:
                continue
            seen.add((language, document))
            before = document.partition(MARKER)[0]
            lines = split_lines(before)
            path = folder / f"case{number}.{_EXTENSIONS.get(language, 'txt')}"
            uri = client.open(path, document.replace(MARKER, ""), language)
            await client.idle()  # the opened file's warm-up first, as a reader would wait
            # Invoked, as a user asking for a suggestion: the whole deadline, not the
            # typing budget (this measures the output, not the speed).
            result = await client.text_document_inline_completion_async(
                types.InlineCompletionParams(
                    text_document=types.TextDocumentIdentifier(uri=uri),
                    position=types.Position(line=len(lines) - 1, character=len(lines[-1])),
                    context=types.InlineCompletionContext(
                        trigger_kind=types.InlineCompletionTriggerKind.Invoked)))
            items = (result.items if isinstance(result, types.InlineCompletionList)
                     else result or [])
            text = items[0].insert_text if items else ""
            ghost = text if isinstance(text, str) else text.value
            share = shares[language]
            share.asked += 1
            share.answered += bool(ghost.strip())
            if ghost.strip() and len(share.examples) < 3:
                share.examples.append(ghost)
            share.served += leaves_balanced(document, ghost, MARKER, spec_for(language))
            client.close_document(uri)
    finally:
        await client.close()


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:5.1f}%" if whole else "    -"


def report(shares: dict[str, Share], with_model: bool) -> str:
    rows = ["language     cases  naive   cleaned"
            + ("  asked  served  answered" if with_model else "")]
    for share in sorted(shares.values(), key=lambda s: s.language):
        row = (f"{share.language:<12} {share.cases:>5}  {_percent(share.naive, share.cases)}"
               f"  {_percent(share.cleaned, share.cases)}")
        if with_model:
            row += (f"  {share.asked:>5}  {_percent(share.served, share.asked)}"
                    f"  {share.answered:>8}")
        rows.append(row)
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m companion.bench.languages",
                                     description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--golden", type=Path, default=DEFAULT_GOLDEN)
    parser.add_argument("--no-model", action="store_true", help="only the recorded outputs")
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args(argv)
    cases = load_cases(options.golden)
    shares = golden_shares(cases)
    if not options.no_model:
        asyncio.run(served_shares(cases, shares))
    if options.json:
        print(json.dumps([asdict(share) for share in shares.values()], indent=2))
    else:
        print(report(shares, not options.no_model))
    return 0


if __name__ == "__main__":
    sys.exit(main())
