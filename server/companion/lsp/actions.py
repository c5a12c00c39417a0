"""textDocument/codeAction (scaffolds) and the `companion.explain` command.

Scaffolds are templates filled with names from the document (`companion.scaffolds`);
their edits become a WorkspaceEdit that inserts into the document or creates new files —
`CreateFile` only when the client says it supports it, and never over an existing file.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from lsprotocol import types

from companion import scaffolds
from companion.engine.context import split_lines, utf16_to_index
from companion.engine.explain import (
    Definition,
    explanation_question,
    find_definition,
    selection_question,
)
from companion.engine.explain import static_markdown as static_part
from companion.engine.explanations import EXPLAIN_TIMEOUT_S, explain_prompt_text
from companion.engine.languages import spec_for
from companion.engine.testfill import model_assertions, with_examples
from companion.lsp.server import CompanionServer

log = logging.getLogger(__name__)

EXPLAIN_COMMAND = "companion.explain"
SCAFFOLD_KIND = types.CodeActionKind.Source + ".scaffold"


def _can_create_files(ls: CompanionServer) -> bool:
    workspace = ls.client_capabilities.workspace
    edit = workspace.workspace_edit if workspace else None
    if edit is None or not edit.document_changes:
        return False
    return types.ResourceOperationKind.Create in (edit.resource_operations or [])


def _end_position(lines: list[str], line: int) -> types.Position:
    if line < len(lines):
        return types.Position(line=line, character=0)
    return types.Position(line=len(lines) - 1, character=len(lines[-1]))


def workspace_edit(
    uri: str, lines: list[str], edits: list[scaffolds.ScaffoldEdit], document_changes: bool
) -> types.WorkspaceEdit:
    """The LSP form of a scaffold's edits."""
    if not document_changes:
        position_edits = [
            types.TextEdit(range=types.Range(start=(p := _end_position(lines, e.line)), end=p),
                           new_text=e.text)
            for e in edits
        ]
        return types.WorkspaceEdit(changes={uri: position_edits})
    changes: list[Any] = []
    for edit in edits:
        if edit.create:
            target = Path(edit.path).as_uri()
            changes.append(types.CreateFile(
                uri=target,
                options=types.CreateFileOptions(overwrite=False, ignore_if_exists=False),
            ))
            start = types.Position(line=0, character=0)
        else:
            target = uri
            start = _end_position(lines, edit.line)
        changes.append(types.TextDocumentEdit(
            text_document=types.OptionalVersionedTextDocumentIdentifier(uri=target, version=None),
            edits=[types.TextEdit(range=types.Range(start=start, end=start), new_text=edit.text)],
        ))
    return types.WorkspaceEdit(document_changes=changes)


def _can_resolve_edits(ls: CompanionServer) -> bool:
    text_document = ls.client_capabilities.text_document
    action = text_document.code_action if text_document else None
    support = action.resolve_support if action else None
    return bool(support and "edit" in support.properties)


async def _filled(ls: CompanionServer, offer_id: str, text: str, line: int,
                  edits: list[scaffolds.ScaffoldEdit]) -> list[scaffolds.ScaffoldEdit]:
    """The pytest scaffold with test cases written by the model (when one is loaded)."""
    name = offer_id.partition(":")[2]
    source = ""
    for index, row in enumerate(split_lines(text)):
        if name and row.lstrip().startswith((f"def {name}(", f"async def {name}(")):
            found = find_definition(text, index, row.index(name))
            source = found.source if found else ""
            break
    if not source or ls.engine.current.spec is None:
        return edits
    try:
        assertions = await model_assertions(ls.engine, source, name)
    except Exception as error:  # the template is the answer whatever the model does
        log.info("model test cases skipped: %s", error)
        return edits
    return [
        scaffolds.ScaffoldEdit(e.path, with_examples(e.text, name, assertions), e.create, e.line)
        if e.create else e
        for e in edits
    ]


def register(server: CompanionServer) -> None:
    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[SCAFFOLD_KIND], resolve_provider=True),
    )
    def code_action(ls: CompanionServer, params: types.CodeActionParams) -> list[types.CodeAction]:
        """Scaffolds that fit the cursor: a whole app in an empty file, CRUD for a class,
        tests for a function."""
        ls.engine.metrics.count("codeAction")
        document = ls.document(params.text_document.uri)
        if document is None:
            return []
        text, path = document.source, document.path
        line = params.range.start.line
        lines = split_lines(text)
        if not 0 <= line < len(lines) or not path:
            return []
        can_create = _can_create_files(ls)
        model_fill = ls.engine.current.spec is not None and _can_resolve_edits(ls)
        actions = []
        for offer in scaffolds.offers(text, line, path):
            try:
                edits = scaffolds.render(offer.id, text, line, path)
            except ValueError as reason:
                log.info("scaffold %s does not apply: %s", offer.id, reason)
                continue
            if any(edit.create for edit in edits) and not can_create:
                continue  # the client cannot create files: offer only in-document edits
            title = offer.title if offer.title.startswith("Scaffold") else (
                f"Scaffold: {offer.title}")
            data = {"id": offer.id, "uri": params.text_document.uri, "line": line}
            if offer.kind == "function" and model_fill:
                # The model writes test cases when the user picks this one (resolve).
                actions.append(types.CodeAction(title=title, kind=SCAFFOLD_KIND, data=data))
                continue
            actions.append(types.CodeAction(
                title=title,
                kind=SCAFFOLD_KIND,
                edit=workspace_edit(params.text_document.uri, lines, edits, can_create),
                data=data,
            ))
        return actions

    @server.feature(types.CODE_ACTION_RESOLVE)
    async def code_action_resolve(ls: CompanionServer, action: types.CodeAction
                                  ) -> types.CodeAction:
        """The edit of a scaffold whose test cases the model writes."""
        data = action.data if isinstance(action.data, dict) else {}
        uri, offer_id, line = data.get("uri"), data.get("id"), data.get("line")
        if action.edit is not None or not isinstance(uri, str) or not isinstance(offer_id, str):
            return action
        document = ls.document(uri)
        if document is None or not isinstance(line, int):
            return action
        text, lines = document.source, split_lines(document.source)
        try:
            edits = scaffolds.render(offer_id, text, line, document.path)
        except ValueError as reason:
            ls.log_line(f"scaffold {offer_id} no longer applies: {reason}",
                        types.MessageType.Warning)
            return action
        edits = await _filled(ls, offer_id, text, line, edits)
        action.edit = workspace_edit(uri, lines, edits, _can_create_files(ls))
        return action

    @server.command(EXPLAIN_COMMAND)
    async def explain_command(ls: CompanionServer, *args: Any) -> str:
        """Markdown explaining the code in a range: arguments uri, range, [question]."""
        if len(args) < 2 or not isinstance(args[0], str) or not isinstance(args[1], dict):
            return "Companion: `companion.explain` needs a document URI and a range."
        uri, raw_range = args[0], args[1]
        question = args[2] if len(args) > 2 and isinstance(args[2], str) else ""
        document = ls.document(uri)
        if document is None:
            return f"Companion: {uri} is not open."
        try:
            start, end = raw_range["start"], raw_range["end"]
            lines = split_lines(document.source)
            first, last = int(start["line"]), int(end["line"])
            begin = utf16_to_index(lines[first], int(start["character"]), ls.position_encoding)
            finish = utf16_to_index(lines[last], int(end["character"]), ls.position_encoding)
        except (KeyError, TypeError, ValueError, IndexError):
            return "Companion: the range is not a valid LSP range in this document."
        definition: Definition | None = None
        language = document.language_id or ""
        if (first, begin) == (last, finish):  # an empty selection: the symbol under it
            definition = find_definition(document.source, first, begin, language,
                                         document.path)
            if definition is None:
                return "Companion: nothing to explain here; select some code."
            code = definition.source
            question = question or explanation_question(definition)
        else:
            selected = lines[first : last + 1]
            selected[-1] = selected[-1][:finish]
            selected[0] = selected[0][begin:]
            code = "\n".join(selected)
            question = question or selection_question(language, document.path)
        key = f"{hash((code, question))}"
        spec = spec_for(language, document.path)
        user = explain_prompt_text(definition, code, question, spec.id)
        answer = await ls.explanations.explain(key, user, EXPLAIN_TIMEOUT_S, spec.id)
        header = static_part(definition, document.path) + "\n\n---\n\n" if definition else ""
        if answer:
            return f"{header}**✦ Companion:** {answer}"
        state = ls.engine.current
        reason = "no model is loaded" if state.spec is None else "the model did not answer in time"
        return f"{header}Companion could not explain this: {reason} ({state.backend.name})."
