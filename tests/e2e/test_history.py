"""Local history end to end: the real server and model record what was shown and kept,
`companion stats` reads it back, and companion/status reports the acceptance rate."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import LanguageClient

from companion.lspclient import plain
from tests.e2e.conftest import (
    assert_default_backend,
    cursor_of,
    inline,
    insert_text,
    open_document,
    status,
    wait_status,
)
from tests.e2e.test_inline import FUNCTION_BODY

MakeClient = Callable[..., Awaitable[LanguageClient]]
# These tests count what is recorded, not how fast: on a busy machine a default 2.5 s
# deadline may end a generation with nothing to show, and an empty answer records nothing.
PATIENT = {"inlineDeadlineMs": 30000}


def stats(data_dir: Path, *args: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "companion", "stats", "--json", *args],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "COMPANION_DATA_DIR": str(data_dir)},
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


async def stats_when(data_dir: Path, ready: Callable[[dict[str, Any]], bool],
                     timeout: float = 15) -> dict[str, Any]:
    """`companion stats --json` once the server's writer has caught up."""
    deadline = time.monotonic() + timeout
    while True:
        report = await asyncio.to_thread(stats, data_dir)
        if ready(report) or time.monotonic() > deadline:
            return report
        await asyncio.sleep(0.2)


async def accept(client: LanguageClient, item: types.InlineCompletionItem,
                 extra: dict[str, Any] | None = None) -> None:
    assert item.command is not None
    arguments = list(item.command.arguments or [])
    if extra:
        arguments = [{**arguments[0], **extra}]
    await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=item.command.command, arguments=arguments)
    )


def stored_rows(data_dir: Path) -> list[sqlite3.Row]:
    connection = sqlite3.connect(data_dir / "history.sqlite3")
    connection.row_factory = sqlite3.Row
    try:
        return connection.execute("SELECT * FROM suggestions ORDER BY rowid").fetchall()
    finally:
        connection.close()


async def test_an_accepted_suggestion_is_recorded_and_reported(
    make_client: MakeClient, tmp_path: Path
) -> None:
    client = await make_client(PATIENT, env={"COMPANION_DATA_DIR": str(tmp_path)})
    text, position = cursor_of(FUNCTION_BODY)
    uri = open_document(client, text, "history.py")
    items = await inline(client, uri, position)
    assert items and insert_text(items[0]).strip()
    await accept(client, items[0])

    current = await status(client)
    backend = assert_default_backend(current)  # whichever local backend auto chose here
    assert (current["shown"], current["accepted"]) == (1, 1)
    assert current["acceptanceRate"] == 1.0
    assert current["verdict"]["level"] in ("ok", "slow")
    assert current["verdict"]["thresholds"]["slowP95Ms"] == PATIENT["inlineDeadlineMs"]
    assert current["history"]["enabled"] is True
    assert current["history"]["path"] == str(tmp_path / "history.sqlite3")

    report = await stats_when(tmp_path, lambda r: r["suggestions"]["accepted"] == 1)
    totals = report["suggestions"]
    assert (totals["shown"], totals["accepted"], totals["acceptanceRate"]) == (1, 1, 1.0)
    assert totals["acceptedChars"] == len(insert_text(items[0]))
    assert report["byLanguage"]["python"]["accepted"] == 1
    assert report["byTrigger"]["invoked"]["shown"] == 1
    (latency,) = report["latency"]
    assert (latency["backend"], latency["model"]) == (backend, "smollm2-135m-instruct")
    assert latency["p50Ms"] > 0
    assert [load["backend"] for load in report["loads"]] == [backend]
    (row,) = stored_rows(tmp_path)
    assert row["text"] is None  # no source text without historyKeepText
    assert row["tokens"] > 0 and row["prompt_tokens"] > 0 and row["decode_ms"] > 0


async def test_partial_accepts_rejections_and_kept_text(
    make_client: MakeClient, tmp_path: Path
) -> None:
    client = await make_client({**PATIENT, "historyKeepText": True},
                               env={"COMPANION_DATA_DIR": str(tmp_path)})
    text, position = cursor_of(FUNCTION_BODY)
    uri = open_document(client, text, "partial.py")
    first = await inline(client, uri, position)
    assert first
    await accept(client, first[0], {"acceptedChars": 3})
    await asyncio.sleep(0.3)  # on screen long enough to be judged
    assert await inline(client, uri, position)  # replaces the first (from the cache: fast)
    current = await status(client)
    assert (current["shown"], current["accepted"], current["partiallyAccepted"]) == (2, 0, 1)
    assert current["rejected"] == 0  # a partial accept is never turned into a rejection

    await asyncio.sleep(0.3)
    assert await inline(client, uri, position)  # replaces the second, shown for ≥ 250 ms
    current = await status(client)
    assert current["rejected"] == 1
    assert current["acceptanceRate"] == round(1 / 3, 4)

    # Another document's suggestion is not replaced by one for this document.
    other = open_document(client, text.replace("total_value", "total"), "other.py")
    assert await inline(client, other, position)
    # However fast the model answered for other.py, the third has been shown ≥ 250 ms now.
    await asyncio.sleep(0.3)
    assert await inline(client, uri, position)  # replaces (or follows the expiry of) the third
    current = await status(client)
    assert (current["shown"], current["rejected"]) == (5, 2)

    report = await stats_when(tmp_path, lambda r: r["suggestions"]["rejected"] >= 2)
    assert report["suggestions"]["partiallyAccepted"] == 1
    assert report["suggestions"]["acceptedChars"] == 3
    assert report["suggestions"]["rejected"] >= 2  # more once the 10 s timers have run
    rows = stored_rows(tmp_path)
    assert rows[0]["text"] == insert_text(first[0])  # historyKeepText: true
    assert rows[0]["outcome"] == "partial"


async def test_history_disabled_writes_nothing(make_client: MakeClient, tmp_path: Path) -> None:
    client = await make_client({**PATIENT, "historyEnabled": False},
                               env={"COMPANION_DATA_DIR": str(tmp_path)})
    text, position = cursor_of(FUNCTION_BODY)
    uri = open_document(client, text, "off.py")
    items = await inline(client, uri, position)
    assert items
    await accept(client, items[0])
    # The AI item of the completion list carries the accept command too.
    completion = await client.text_document_completion_async(
        types.CompletionParams(text_document=types.TextDocumentIdentifier(uri=uri),
                               position=position))
    assert isinstance(completion, types.CompletionList)
    (ai,) = [item for item in completion.items if item.sort_text == "0000"]
    assert ai.command is not None and ai.command.command == "companion.accepted"
    await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command=ai.command.command, arguments=ai.command.arguments))
    current = await status(client)
    assert current["accepted"] == 1 and current["acceptanceRate"] == 1.0
    assert current["completionItems"]["shown"] == current["completionItems"]["accepted"] == 1
    assert current["history"] == {"enabled": False, "keepText": False, "path": None}
    await client.shutdown_session()
    assert list(tmp_path.iterdir()) == []


FAULT_SOURCE = "class Point:\n    def __init__(self, x, y):\n        █\n"


async def test_model_errors_and_template_fallbacks_are_recorded_with_their_reason(
    make_client: MakeClient, tmp_path: Path
) -> None:
    client = await make_client({}, env={"COMPANION_DATA_DIR": str(tmp_path),
                                        "COMPANION_TEST_FAULT": "raise:1"})
    text, position = cursor_of(FAULT_SOURCE)
    uri = open_document(client, text, "fault.py")
    # The warm-up (a prefill, which the fault lets through) is done and not a fault.
    await wait_status(client, lambda s: s["requests"].get("warmups", 0) >= 1
                      and s["inFlight"] == 0, 60, "the warm-up")
    items = await inline(client, uri, position)
    assert [insert_text(item) for item in items] == ["self.x = x\n        self.y = y"]
    current = await status(client)
    assert current["verdict"]["level"] == "degraded"
    assert any("failing" in reason for reason in current["verdict"]["reasons"])

    report = await stats_when(tmp_path, lambda r: r["fallbacks"]["templateSuggestions"] == 1
                              and bool(r["fallbacks"]["events"]))
    (reason,) = report["fallbacks"]["reasons"]
    assert reason.startswith("model error:") and "injected fault" in reason
    assert [event["kind"] for event in report["fallbacks"]["events"]] == ["model-error"]
    assert report["latency"][0]["bySource"] == {"templates": 1}


async def test_a_failed_load_is_recorded_and_judged_degraded(
    make_client: MakeClient, tmp_path: Path
) -> None:
    client = await make_client({}, env={"COMPANION_DATA_DIR": str(tmp_path),
                                        "COMPANION_TEST_FAULT": "load"})
    current = await status(client)
    assert current["state"] == "templates"
    assert current["verdict"]["level"] == "degraded"
    assert "no model is loaded: templates answer" in current["verdict"]["reasons"]
    report = await stats_when(tmp_path, lambda r: bool(r["loads"]))
    assert report["loads"][0]["backend"] == "templates"
    kinds_and_details = [(e["kind"], e["detail"]) for e in report["fallbacks"]["events"]]
    assert any(kind == "fallback" and "failed to load" in detail
               for kind, detail in kinds_and_details), kinds_and_details


async def test_a_corrupt_history_file_is_moved_aside_with_one_warning(
    make_client: MakeClient, tmp_path: Path
) -> None:
    (tmp_path / "history.sqlite3").write_bytes(b"garbage, not SQLite\n" * 100)
    client = await make_client(PATIENT, env={"COMPANION_DATA_DIR": str(tmp_path)})
    text, position = cursor_of(FUNCTION_BODY)
    items = await inline(client, open_document(client, text, "corrupt.py"), position)
    assert items, "suggestions do not depend on history"
    await stats_when(tmp_path, lambda r: r["suggestions"]["shown"] == 1)
    warnings = [m.message for m in client.log_messages if "corrupt" in m.message]
    assert len(warnings) == 1, warnings
    assert "moved aside to history.sqlite3.corrupt-" in warnings[0]
    assert len(list(tmp_path.glob("history.sqlite3.corrupt-*"))) == 1


def edit(client: LanguageClient, uri: str, version: int, start: types.Position,
         end: types.Position, text: str) -> None:
    """An incremental didChange, as the editor sends it."""
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=start, end=end), text=text)],
    ))


def end_of(position: types.Position, inserted: str) -> types.Position:
    """Where `inserted`, typed at `position`, ends (ASCII: UTF-16 units are characters)."""
    lines = inserted.split("\n")
    if len(lines) == 1:
        return types.Position(line=position.line, character=position.character + len(lines[0]))
    return types.Position(line=position.line + len(lines) - 1, character=len(lines[-1]))


async def accept_in_document(client: LanguageClient, name: str
                             ) -> tuple[str, types.Position, str, str]:
    """Open a document, get ghost text, insert it as the editor does, then accept it:
    (uri, where it went, the text, its id)."""
    text, position = cursor_of(FUNCTION_BODY)
    uri = open_document(client, text, name)
    items = await inline(client, uri, position)
    assert items and insert_text(items[0]).strip()
    ghost = insert_text(items[0])
    edit(client, uri, 2, position, position, ghost)
    await accept(client, items[0])
    assert items[0].command is not None
    suggestion_id = plain(items[0].command.arguments)[0]["id"]
    return uri, position, ghost, suggestion_id


DELAYS = {"COMPANION_RETENTION_DELAYS_S": "1,2,3"}
CHECKPOINTS = ("1s", "2s", "3s")


def checks_made(retention: dict[str, Any]) -> int:
    return sum(c["checked"] + c["unknown"] for c in retention["checkpoints"])


async def test_retention_of_accepted_code_kept_deleted_and_closed(
    make_client: MakeClient, tmp_path: Path
) -> None:
    client = await make_client(PATIENT, env={"COMPANION_DATA_DIR": str(tmp_path), **DELAYS})
    # (a) accepted and left alone, while lines are inserted above it.
    kept_uri, _, _, kept_id = await accept_in_document(client, "kept.py")
    origin = types.Position(line=0, character=0)
    edit(client, kept_uri, 3, origin, origin, "import math\nimport logging\n\n")
    # (b) accepted, then deleted again.
    gone_uri, position, ghost, gone_id = await accept_in_document(client, "deleted.py")
    edit(client, gone_uri, 3, position, end_of(position, ghost), "")
    # (c) accepted, then the document was closed: unknown, not lost.
    closed_uri, _, _, closed_id = await accept_in_document(client, "closed.py")
    client.text_document_did_close(types.DidCloseTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=closed_uri)))

    current = await wait_status(
        client, lambda s: s["retention"]["pending"] == 0
        and checks_made(s["retention"]) == 9, 60, "every retention check")
    retention = current["retention"]
    assert [(c["after"], c["checked"], c["kept"], c["unknown"], c["rate"])
            for c in retention["checkpoints"]] == [(c, 2, 1, 1, 0.5) for c in CHECKPOINTS]
    assert retention["keptAt"] == 0.5

    report = await stats_when(tmp_path, lambda r: checks_made(r["retention"]) == 9)
    in_stats = [c for c in report["retention"]["checkpoints"] if c["after"] in CHECKPOINTS]
    assert [(c["after"], c["checked"], c["kept"], c["unknown"], c["rate"])
            for c in in_stats] == [(c, 2, 1, 1, 0.5) for c in CHECKPOINTS]
    connection = sqlite3.connect(tmp_path / "history.sqlite3")
    try:
        rows = connection.execute(
            "SELECT suggestion, checkpoint, state, score, kept FROM retention").fetchall()
        columns = [r[1] for r in connection.execute("PRAGMA table_info(retention)")]
    finally:
        connection.close()
    assert "text" not in columns
    by_id: dict[str, list[tuple[str, str, float | None, int | None]]] = {}
    for suggestion, *rest in rows:
        by_id.setdefault(suggestion, []).append(tuple(rest))  # type: ignore[arg-type]
    assert by_id[kept_id] == [(c, "checked", 1.0, 1) for c in CHECKPOINTS]
    assert [(c, state, kept) for c, state, _, kept in by_id[gone_id]] == [
        (c, "checked", 0) for c in CHECKPOINTS]
    assert all(score is not None and score < 0.5 for _, _, score, _ in by_id[gone_id])
    assert by_id[closed_id] == [(c, "closed", None, None) for c in CHECKPOINTS]
    # No text anywhere in the database without historyKeepText.
    assert stored_rows(tmp_path)[0]["text"] is None


async def test_retention_is_in_the_status_without_history_and_bad_accepts_are_harmless(
    make_client: MakeClient, tmp_path: Path
) -> None:
    client = await make_client({**PATIENT, "historyEnabled": False},
                               env={"COMPANION_DATA_DIR": str(tmp_path),
                                    "COMPANION_RETENTION_DELAYS_S": "0.5"})
    await accept_in_document(client, "session.py")
    for arguments in ([{"id": "no-such-id", "source": "model"}], [], ["garbage"]):
        await client.workspace_execute_command_async(types.ExecuteCommandParams(
            command="companion.accepted", arguments=arguments))
    current = await wait_status(client, lambda s: checks_made(s["retention"]) == 1,
                                30, "the retention check")
    (checkpoint,) = current["retention"]["checkpoints"]
    assert (checkpoint["after"], checkpoint["rate"]) == ("0.5s", 1.0)
    assert current["retention"]["pending"] == 0
    await client.shutdown_session()
    assert list(tmp_path.iterdir()) == []  # history off: nothing written
