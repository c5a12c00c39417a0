"""`companion demo`: a real LSP session on a sample file, printed as an editor shows it.

Starts `python -m companion serve`, opens the file, types at a few places (incremental
didChange, as an editor sends), asks for inline completions, completion items, hovers
and code actions, and prints what would appear with the time each request took.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from lsprotocol import types

from companion.engine.context import split_lines
from companion.lspclient import CompanionClient

SAMPLE = Path(__file__).with_name("sample.py")
DIM, BOLD, RESET = "\033[2m", "\033[1m", "\033[0m"


@dataclass(frozen=True)
class Step:
    """Type `text` at (line, character), then ask at the end of what was typed."""

    title: str
    line: int
    character: int
    text: str


def sample_steps(lines: list[str]) -> list[Step]:
    """Edits for the bundled sample: a new function body, a mid-call line, a loop body."""
    main_line = next(i for i, line in enumerate(lines) if line.startswith("if __name__"))
    restock_loop = next(i for i, line in enumerate(lines) if "for item in items:" in line)
    return [
        Step(
            "a new function: cursor on its empty body line",
            main_line - 2,
            0,
            "def average_price(items: list[Item]) -> float:\n"
            '    """The mean price of the items (0.0 for none)."""\n    ',
        ),
        Step("typing inside a call in the main block", len(lines) - 1, 0,
             "    print(cheapest("),
        Step("a new line in a loop body", restock_loop, len(lines[restock_loop]),
             "\n        item."),
    ]


def file_steps(lines: list[str]) -> list[Step]:
    """For any file: an empty line opened under the first three block openers."""
    steps = []
    for index, line in enumerate(lines):
        if line.rstrip().endswith(":") and not line.lstrip().startswith("#"):
            indent = len(line) - len(line.lstrip()) + 4
            steps.append(Step(f"new line under `{line.strip()[:40]}`", index, len(line),
                              "\n" + " " * indent))
        if len(steps) == 3:
            break
    return steps


def _end_of(step: Step) -> tuple[int, int]:
    added = step.text.split("\n")
    if len(added) == 1:
        return step.line, step.character + len(step.text)
    return step.line + len(added) - 1, len(added[-1])


def _show(out: TextIO, line_text: str, ghost: str, color: bool) -> None:
    ghost_lines = ghost.split("\n")
    dim, reset = (DIM, RESET) if color else ("", "")
    out.write(f"    │ {line_text}{dim}{ghost_lines[0]}{reset}\n")
    for extra in ghost_lines[1:]:
        out.write(f"    │ {dim}{extra}{reset}\n")


async def run_demo(path: Path | None, out: TextIO, settings: dict[str, Any]) -> int:
    """The whole session; returns the exit code."""
    color = out.isatty()
    bold, reset = (BOLD, RESET) if color else ("", "")
    target = path or SAMPLE
    text = target.read_text(encoding="utf-8")
    lines = split_lines(text)
    steps = sample_steps(lines) if path is None else file_steps(lines)
    client = CompanionClient()
    started = time.perf_counter()
    try:
        await client.start(settings)
        out.write(f"{bold}Companion demo{reset}: a real LSP session over stdio "
                  f"(python -m companion serve)\n")
        status = await client.wait_ready()
        out.write(
            f"model: {status['backend']} · {status['model']} on {status['device']} "
            f"— {status['state']} in {status['loadSeconds']:.1f} s ({status['reason']})\n"
        )
        for note in status.get("steps", []):
            out.write(f"  fallback: {note}\n")
        uri = client.open(target, text)
        warm_started = time.perf_counter()
        await client.idle()  # the background prefill of the opened file, as a reader waits
        out.write(f"file: {target} ({len(lines)} lines; processed in the background in "
                  f"{(time.perf_counter() - warm_started) * 1000:.0f} ms)\n")
        first_latency: float | None = None
        for number, step in enumerate(steps, start=1):
            client.insert(uri, step.line, step.character, step.text)
            line, character = _end_of(step)
            request_started = time.perf_counter()
            items = await client.inline(uri, line, character)
            elapsed = (time.perf_counter() - request_started) * 1000
            if first_latency is None:
                first_latency = (time.perf_counter() - started) * 1000
            out.write(f"\n{bold}[{number}] inline completion at {line + 1}:{character + 1}"
                      f"{reset} — {step.title} ({elapsed:.0f} ms)\n")
            current = _typed_line(step)
            if items:
                ghost = items[0].insert_text
                ghost = ghost if isinstance(ghost, str) else ghost.value
                _show(out, current, ghost, color)
                # Accept it with Tab, as a user would: the text lands in the document and
                # the server is told (a local counter, nothing leaves the machine).
                client.insert(uri, line, character, ghost)
                command = items[0].command
                if command is not None:
                    await client.call("accept", client.workspace_execute_command_async(
                        types.ExecuteCommandParams(command=command.command,
                                                   arguments=command.arguments)))
                last_end = _advance(line, character, ghost)
            else:
                out.write(f"    │ {current}   (no suggestion)\n")
                last_end = (line, character)
        # Completion items on a fresh line below the last edit.
        last_line, last_char = last_end if steps else (0, 0)
        client.insert(uri, last_line, last_char, "\n        ")
        last_line, last_char = last_line + 1, 8
        request_started = time.perf_counter()
        completion_items = await client.complete(uri, last_line, last_char)
        elapsed = (time.perf_counter() - request_started) * 1000
        out.write(f"\n{bold}completion items at {last_line + 1}:{last_char + 1}{reset} "
                  f"({elapsed:.0f} ms, {len(completion_items)} items)\n")
        for item in completion_items[:6]:
            detail = item.label_details.description if item.label_details else item.detail
            out.write(f"    {item.label:<40} {detail or ''}\n")
        await _extras(client, uri, lines, out, bold, reset)
        status = await client.status()
        latency = status["latency"]
        out.write(
            f"\n{bold}status{reset}: {status['backend']} · {status['model']}, "
            f"memory {status['memoryMB']:.0f} MB, requests {status['requests']}, "
            f"inline p50 {latency['p50Ms']} ms / p95 {latency['p95Ms']} ms; "
            f"first ghost text {first_latency or 0:.0f} ms after process start\n"
        )
        return 0
    except Exception as error:
        out.write(f"demo failed: {error.__class__.__name__}: {error}\n")
        for server_line in list(client.stderr_tail)[-15:]:
            out.write(f"  server: {server_line}\n")
        return 1
    finally:
        await client.close()


async def _extras(
    client: CompanionClient, uri: str, lines: list[str], out: TextIO, bold: str, reset: str
) -> None:
    """Hover and code actions, when the server offers them."""
    capabilities = client.server_capabilities
    if capabilities is None:
        return
    if capabilities.hover_provider:
        for index, line in enumerate(lines):
            match = re.match(r"def (\w+)", line)
            if match:
                for attempt in range(20):  # past the deadline the explanation comes later
                    started = time.perf_counter()
                    hover = await client.hover(uri, index, 4) or "(nothing)"
                    elapsed = (time.perf_counter() - started) * 1000
                    if "still writing" not in hover or attempt == 19:
                        break
                    out.write(f"\n{bold}hover on `{match.group(1)}`{reset} ({elapsed:.0f} ms): "
                              "static part at once, the explanation still coming\n")
                    await asyncio.sleep(0.5)
                out.write(f"\n{bold}hover on `{match.group(1)}`{reset} ({elapsed:.0f} ms)\n")
                for text in hover.strip().split("\n")[:14]:
                    out.write(f"    {text}\n")
                break
    if capabilities.code_action_provider:
        started = time.perf_counter()
        class_line = next((i for i, text in enumerate(lines) if text.startswith("class ")), 0)
        actions = await client.code_actions(uri, class_line, 0)
        elapsed = (time.perf_counter() - started) * 1000
        out.write(f"\n{bold}code actions on line {class_line + 1}{reset} ({elapsed:.0f} ms)\n")
        for title in actions:
            out.write(f"    {title}\n")


def _advance(line: int, character: int, text: str) -> tuple[int, int]:
    """The position after inserting `text` at (line, character)."""
    parts = text.split("\n")
    if len(parts) == 1:
        return line, character + len(text)
    return line + len(parts) - 1, len(parts[-1])


def _typed_line(step: Step) -> str:
    return step.text.split("\n")[-1] if "\n" in step.text else step.text


def main(path: str | None, settings: dict[str, Any]) -> int:
    return asyncio.run(run_demo(Path(path) if path else None, sys.stdout, settings))
