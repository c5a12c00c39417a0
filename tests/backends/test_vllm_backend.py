"""The vLLM backend through the LSP: `python -m companion serve` from .venv-vllm (vLLM has a
venv of its own), the embedded model converted to safetensors, the real engine.

One server per module and device kind (the engine starts in ~30 s on an idle two-core CPU,
90–150 s on a busy one): the tests share it and run in file order. The server's stdout is
teed to a file so that the last test can check it carried the protocol and nothing else
— vLLM and its child processes log to stdout unless told otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import shutil
import sqlite3
import subprocess
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped,unused-ignore]
import pytest
import pytest_asyncio
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.e2e.conftest import (
    cancel_in_flight,
    cursor_of,
    initialize,
    inline,
    insert_text,
    open_document,
    status,
    wait_ready,
)

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

ROOT = Path(__file__).resolve().parents[2]
VLLM_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"
START_TIMEOUT_S = 600.0  # engine start, plus a GGUF → safetensors conversion the first time
# The tests are about the engine, not latency: a slow shared CI machine must not turn a
# completion into a deadline stop.
SETTINGS: dict[str, Any] = {"backend": "vllm", "inlineDeadlineMs": 30_000}
SETTINGS_BY_KIND = {"default": SETTINGS, "gpu": {**SETTINGS, "contextTokens": 8192}}

# ~1,000 tokens of real code before the cursor: longer than a KV block (128 tokens on a
# CPU), so that the prompt after an edit shares cached blocks with the one before it.
DOCUMENT = Path(textwrap.__file__).read_text()[:4000].rsplit("\n", 1)[0] + (
    "\n\n\ndef wrap_all(texts, width=70):\n"
    '    """Wrap every text in `texts` to `width` columns."""\n'
    "    █\n"
)
# A second, unrelated document: its prompt is not cached, so the engine is busy
# prefilling it when the cancel arrives.
OTHER = Path(shutil.__file__).read_text()[:5000].rsplit("\n", 1)[0] + (
    "\n\n\ndef copy_all(paths, target):\n    █\n"
)


# Written by the Makefile once it has built .venv-vllm: from then on a venv that does not
# import vLLM is a broken build (a failure), not a machine without vLLM (a skip).
VLLM_STAMP = ROOT / ".venv-vllm" / ".stamp"


@functools.cache
def vllm_problem(kind: str) -> str | None:
    """Why the vLLM venv cannot run `kind` here, or None."""
    if not VLLM_PYTHON.exists():
        return f"{VLLM_PYTHON} does not exist (make .venv-vllm)"
    if kind == "gpu" and shutil.which("nvidia-smi") is None:
        return "no nvidia-smi: not a CUDA machine"
    check = "import vllm, companion"
    if kind == "gpu":
        check += "; import sys, torch; sys.exit(0 if torch.cuda.is_available() else 3)"
    try:
        done = subprocess.run([str(VLLM_PYTHON), "-c", check], capture_output=True, text=True,
                              timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"{VLLM_PYTHON} does not run: {error}"
    if done.returncode == 3:
        return "CUDA is not available to torch in .venv-vllm"
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return f"cannot import vllm in .venv-vllm: {lines[-1] if lines else done.returncode}"
    return None


# What a skip may blame on the machine (no CUDA) rather than on the venv.
MACHINE_PROBLEMS = ("no nvidia-smi", "CUDA is not available")


@dataclass
class Server:
    client: LanguageClient
    kind: str
    stdout: Path
    processes: list[psutil.Process] = field(default_factory=list)
    stopped: bool = False


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["default", "gpu"])
async def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Server]:
    kind: str = request.param
    problem = vllm_problem(kind)
    if problem and VLLM_STAMP.exists() and not problem.startswith(MACHINE_PROBLEMS):
        pytest.fail(f"the Makefile built .venv-vllm ({VLLM_STAMP}), yet: {problem}")
    if problem:
        pytest.skip(problem)
    folder = tmp_path_factory.mktemp(f"vllm-{kind}")
    stdout = folder / "stdout.bin"
    # The server is still `python -m companion serve`; tee keeps a copy of its stdout.
    command = ["/bin/sh", "-c", 'exec "$0" -m companion serve | tee "$1"',
               str(VLLM_PYTHON), str(stdout)]
    env = {**os.environ, "COMPANION_DATA_DIR": str(folder / "data")}
    client: LanguageClient = await ClientServerConfig(command, server_env=env).start()
    running = Server(client, kind, stdout)
    try:
        await initialize(client, SETTINGS_BY_KIND[kind])
        await wait_ready(client, timeout=START_TIMEOUT_S)
        shell = getattr(client, "_server", None)
        if shell is not None:
            running.processes = psutil.Process(shell.pid).children(recursive=True)
        yield running
    finally:
        if not running.stopped:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.shutdown_session(), timeout=60)
        shell = getattr(client, "_server", None)
        if shell is not None and shell.returncode is None:  # no clean exit: close stdin
            with contextlib.suppress(Exception):
                shell.stdin.close()
            try:
                await asyncio.wait_for(shell.wait(), timeout=30)
            except TimeoutError:
                shell.kill()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.stop(), timeout=30)
        for process in running.processes:  # only what this fixture started
            with contextlib.suppress(psutil.Error):
                process.kill()


def change(client: LanguageClient, uri: str, version: int, at: types.Position, text: str
           ) -> None:
    """Type `text` at `at`."""
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=at, end=at), text=text)]))


def history_rows(current: dict[str, Any]) -> list[sqlite3.Row]:
    """The suggestions the server recorded (its own database, in the test's data dir)."""
    path = current["history"].get("path")
    if not path or not Path(path).exists():
        return []
    with contextlib.closing(sqlite3.connect(path)) as database:
        database.row_factory = sqlite3.Row
        return list(database.execute(
            "SELECT * FROM suggestions WHERE backend = 'vllm' AND source = 'model' "
            "ORDER BY created"))


async def test_status_reports_vllm_ready(server: Server) -> None:
    current = await status(server.client)
    assert current["backend"] == "vllm", current["steps"]
    assert current["state"] == "ready", current["steps"]
    assert current["model"] == "smollm2-135m-instruct"
    if server.kind == "gpu":
        assert current["device"].startswith("cuda:0 "), current["device"]
        assert current["contextTokens"] >= 4096  # a tier of ≥ 16 GB of GPU memory
    else:
        assert current["device"] == "cpu" or current["device"].startswith("cuda:0 ")
    assert 0 < current["contextTokens"] <= SETTINGS_BY_KIND[server.kind].get(
        "contextTokens", 1 << 20)
    assert current["modelMemoryMB"] > 0


async def test_inline_completion_then_an_edit_reuses_the_prefix(server: Server) -> None:
    client = server.client
    text, position = cursor_of(DOCUMENT)
    uri = open_document(client, text, f"wrap_{server.kind}.py")
    items = await inline(client, uri, position)
    assert items and insert_text(items[0]).strip()
    # Type on: the new prompt shares its beginning with the last one (prefix caching).
    change(client, uri, 2, position, "result = []\n    ")
    await inline(client, uri, types.Position(line=position.line + 1, character=4))
    current = await status(client)
    assert current["generatedTokens"] > 0
    assert current["requests"].get("modelErrors", 0) == 0
    assert current["state"] == "ready"
    rows: list[sqlite3.Row] = []
    for _ in range(50):  # the history writer is a thread of its own
        rows = history_rows(current)
        if len(rows) >= 2:
            break
        await asyncio.sleep(0.1)
    assert rows and rows[0]["prompt_tokens"] > 128, [dict(row) for row in rows]
    assert any(row["cached_tokens"] > 0 for row in rows[1:]), [dict(row) for row in rows]


async def test_cancel_mid_flight_leaves_the_server_healthy(server: Server) -> None:
    client = server.client

    def uncached(attempt: int) -> tuple[str, types.Position]:
        # A new first line each try: nothing of the prompt is in vLLM's prefix cache, so
        # the engine is still busy (prefilling or decoding) when the cancel comes.
        text, position = cursor_of(f"# try {attempt} on {server.kind}\n" + OTHER)
        return open_document(client, text, f"copy_{server.kind}_{attempt}.py"), position

    # What an editor does when it gives up on a request. The engine aborts within one
    # prefill chunk (512 tokens on a CPU); a try whose answer came first is repeated.
    outcome = await cancel_in_flight(client, uncached, after_s=0.2, within_s=20,
                                     mid_decode=False, start_s=60)
    assert outcome.idle_after_s < 20
    assert client.error is None, client.error
    # The next request is served normally.
    text, position = cursor_of(DOCUMENT.replace("width=70", "width=72"))
    uri = open_document(client, text, f"wrap2_{server.kind}.py")
    items = await inline(client, uri, position)
    assert items and insert_text(items[0]).strip()
    current = await status(client)
    assert current["state"] == "ready"
    assert current["requests"].get("modelErrors", 0) == 0


async def test_shutdown_stops_the_engine_and_stdout_carried_only_the_protocol(
    server: Server
) -> None:
    client = server.client
    assert client.error is None, client.error  # else shutdown_session sends nothing
    await asyncio.wait_for(client.shutdown_session(), timeout=60)
    server.stopped = True
    gone, alive = psutil.wait_procs(server.processes, timeout=30)
    assert not alive, f"processes left running after exit: {alive}"
    assert len(gone) >= 3, gone  # the server, vLLM's engine core and its worker at least
    frames = parse_frames(server.stdout.read_bytes())
    assert frames, "nothing on stdout"
    assert all(frame.get("jsonrpc") == "2.0" for frame in frames)


def parse_frames(data: bytes) -> list[dict[str, Any]]:
    """Every byte of `data` as LSP frames (`Content-Length` header, blank line, JSON);
    anything else — a log line, a progress bar — fails with what and where it is."""
    frames: list[dict[str, Any]] = []
    offset = 0
    while offset < len(data):
        end = data.find(b"\r\n\r\n", offset)
        assert end >= 0, f"stray bytes at {offset}: {data[offset:offset + 200]!r}"
        length = None
        for line in data[offset:end].split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
            else:
                assert name.strip().lower() == b"content-type", (
                    f"not an LSP header at {offset}: {data[offset:offset + 200]!r}")
        assert length is not None, f"no Content-Length at {offset}: {data[offset:end]!r}"
        body = data[end + 4 : end + 4 + length]
        assert len(body) == length, f"truncated frame at {offset}"
        frames.append(json.loads(body))
        offset = end + 4 + length
    return frames
