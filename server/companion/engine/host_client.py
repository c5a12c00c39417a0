"""The server's side of the engine host: start it, talk to it, notice when it dies.

`HostProcess` is one `python -m companion.host` child: its pipe, a reader thread that
routes messages to the request waiting for them, a watchdog that kills a host gone silent
(SIGSTOP, a wedged native call), and the last lines it wrote to stderr. `HostBackend` is
the Backend the engine streams from; a dead host ends its stream with `HostDied` at once.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection, Listener
from typing import IO, Any

from companion.backends.base import (
    BackendError,
    BackendInfo,
    Capabilities,
    Chunk,
    ContinuationScore,
    GenerationRequest,
    ModelSpec,
    ScoreRequest,
)
from companion.host import protocol

log = logging.getLogger(__name__)

START_TIMEOUT_S = 60.0  # python + the host's imports, on a slow, busy machine
# No message (not even a heartbeat) for this long: the host is stopped or wedged.
SILENCE_S = float(os.environ.get("COMPANION_HOST_SILENCE_S", "10"))
# A generation with no output this long past its deadline is hung (the backends stop
# between tokens and prefill chunks once past it).
HANG_GRACE_S = 5.0
HANG_TIMEOUT_S = float(os.environ.get("COMPANION_HANG_TIMEOUT_S", "60"))
# A score still running this long past its deadline is given up on (not killed).
SCORE_GRACE_S = 0.25


class HostDied(BackendError):
    """The engine host exited (or was killed) while this request needed it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def describe_exit(returncode: int | None) -> str:
    """`SIGILL`, `SIGKILL (out of memory?)`, `exit code 1` …"""
    if returncode is None:
        return "no exit status"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"{name} (killed: out of memory?)" if name == "SIGKILL" else name
    return f"exit code {returncode}"


class HostProcess:
    """One engine host child process."""

    def __init__(self, on_exit: Callable[[HostProcess, str], None], crashes: int = 0) -> None:
        self._on_exit = on_exit
        self._crashes = crashes
        self.process: subprocess.Popen[bytes] | None = None
        self.connection: Connection | None = None
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=40)
        self.rss_mb = 0.0
        self.last_seen = time.monotonic()
        self.alive = False
        self.exit_reason = ""
        self._kill_reason = ""
        self._stopping = False
        self._send_lock = threading.Lock()
        self._queues: dict[int, queue.Queue[Any]] = {}
        self._queues_lock = threading.Lock()
        self._load_replies: queue.Queue[Any] = queue.Queue()
        self._ids = itertools.count(1)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Spawn the host and wait for its Ready (raises HostDied if it never comes)."""
        authkey = secrets.token_bytes(32)
        listener = Listener(authkey=authkey)
        env = dict(os.environ)
        env[protocol.ADDRESS_ENV] = str(listener.address)
        env[protocol.AUTHKEY_ENV] = authkey.hex()
        env[protocol.CRASHES_ENV] = str(self._crashes)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "companion.host"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env=env, close_fds=True,
        )
        assert self.process.stderr is not None
        threading.Thread(target=self._drain, args=(self.process.stderr,),
                         name="host-stderr", daemon=True).start()
        accepted: list[Connection] = []
        acceptor = threading.Thread(target=lambda: accepted.append(listener.accept()),
                                    daemon=True)
        acceptor.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while acceptor.is_alive() and time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            acceptor.join(0.05)
        if not accepted:
            listener.close()
            self._kill_now()
            raise HostDied(f"the engine host did not start ({self._wait_reason()})"
                           + self.last_lines())
        listener.close()
        self.connection = accepted[0]
        if not self.connection.poll(START_TIMEOUT_S):
            self._kill_now()
            raise HostDied("the engine host did not say it was ready" + self.last_lines())
        ready = self.connection.recv()
        assert isinstance(ready, protocol.Ready)
        self.alive, self.last_seen = True, time.monotonic()
        threading.Thread(target=self._read, name="host-reader", daemon=True).start()
        threading.Thread(target=self._watch, name="host-watchdog", daemon=True).start()

    def stop(self, timeout: float = 5.0) -> None:
        """Unload and end the host on purpose (no crash is reported)."""
        self._stopping = True
        if self.alive:
            try:
                self.send(protocol.Stop())
                if self.process is not None:
                    self.process.wait(timeout)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                pass
        self._kill_now()

    def kill(self, reason: str) -> None:
        """End a host that misbehaves; `reason` is what its death is reported as."""
        self._kill_reason = reason
        log.error("%s: killing the engine host (pid %s)", reason, self.pid)
        self._kill_now()

    def _kill_now(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(OSError):
                self.process.kill()

    # -- threads ---------------------------------------------------------------------------

    def _drain(self, stream: IO[bytes]) -> None:
        """Forward the host's stderr to ours, keeping the last lines for crash reports."""
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            self.stderr_tail.append(line)
            try:
                sys.stderr.write(line + "\n")
                sys.stderr.flush()
            except (OSError, ValueError):
                pass

    def _read(self) -> None:
        assert self.connection is not None
        while True:
            try:
                message = self.connection.recv()
            except (EOFError, OSError):
                break
            except Exception as error:  # a message that does not unpickle: a bug
                log.error("unreadable message from the engine host: %s", error)
                break
            self.last_seen = time.monotonic()
            if isinstance(message, protocol.Heartbeat):
                self.rss_mb = message.rss_mb
            elif isinstance(message, protocol.Loaded | protocol.LoadFailed):
                self._load_replies.put(message)
            elif isinstance(message, protocol.Output | protocol.Finished | protocol.Failed
                            | protocol.Scored):
                with self._queues_lock:
                    waiting = self._queues.get(message.id)
                if waiting is not None:
                    waiting.put(message)
        self._died()

    def _watch(self) -> None:
        while self.alive:
            time.sleep(0.25)
            silent = time.monotonic() - self.last_seen
            if self.alive and silent > SILENCE_S:
                self.kill(f"engine host stopped answering (nothing for {silent:.0f} s)")
                return

    def _wait_reason(self) -> str:
        if self.process is None:
            return "not started"
        try:
            returncode = self.process.wait(3)
        except subprocess.TimeoutExpired:
            self._kill_now()
            returncode = self.process.wait(3)
        return self._kill_reason or describe_exit(returncode)

    def _died(self) -> None:
        self.alive = False
        self.exit_reason = self._wait_reason()
        if self.connection is not None:
            self.connection.close()
        died = HostDied(self.exit_reason)
        with self._queues_lock:
            for waiting in self._queues.values():
                waiting.put(died)
        self._load_replies.put(died)
        if not self._stopping:
            log.error("engine host (pid %s) died: %s%s", self.pid, self.exit_reason,
                      self.last_lines())
            self._on_exit(self, self.exit_reason)

    # -- messages --------------------------------------------------------------------------

    def last_lines(self, count: int = 5) -> str:
        lines = [line for line in self.stderr_tail if line.strip()][-count:]
        return ("; last output: " + " | ".join(lines)) if lines else ""

    def send(self, message: object) -> None:
        if self.connection is None or not self.alive:
            raise HostDied(self.exit_reason or "the engine host is not running")
        with self._send_lock:
            try:
                self.connection.send(message)
            except (OSError, ValueError) as error:
                raise HostDied(self.exit_reason or f"pipe closed ({error})") from error

    def load(self, backend: str, spec: ModelSpec) -> protocol.Loaded:
        """Load a model in the host and run its self-test (blocking)."""
        self.send(protocol.LoadModel(backend, spec))
        reply = self._load_replies.get()
        if isinstance(reply, HostDied):
            raise reply
        if isinstance(reply, protocol.LoadFailed):
            raise BackendError(reply.error)
        assert isinstance(reply, protocol.Loaded)
        return reply

    def open_request(self) -> tuple[int, queue.Queue[Any]]:
        request_id = next(self._ids)
        waiting: queue.Queue[Any] = queue.Queue()
        with self._queues_lock:
            self._queues[request_id] = waiting
        if not self.alive:
            waiting.put(HostDied(self.exit_reason or "the engine host is not running"))
        return request_id, waiting

    def close_request(self, request_id: int) -> None:
        with self._queues_lock:
            self._queues.pop(request_id, None)


class HostBackend:
    """A backend running in the engine host, seen from the server."""

    def __init__(self, host: HostProcess, loaded: protocol.Loaded, spec: ModelSpec) -> None:
        self.host = host
        self.loaded = loaded
        self.spec = spec
        self.name = loaded.info.name
        self.capabilities: Capabilities = loaded.capabilities

    def load(self, model: ModelSpec) -> None:
        raise BackendError("a host backend is loaded by the supervisor")

    def unload(self) -> None:
        self.host.stop()

    def info(self) -> BackendInfo:
        return self.loaded.info

    def _hang_limit(self, deadline: float | None) -> float:
        if deadline is None:
            return HANG_TIMEOUT_S
        return min(HANG_TIMEOUT_S, max(0.0, deadline - time.monotonic()) + HANG_GRACE_S)

    def score(self, request: ScoreRequest) -> list[ContinuationScore]:
        """Scores from the host (backends with `Capabilities.rerank`); a cancel reaches
        the host at once, and it stops between two continuations. Past the deadline
        (and SCORE_GRACE_S) the answer is no scores: the caller keeps its greedy one."""
        host = self.host
        request_id, waiting = host.open_request()

        def cancel() -> None:
            with contextlib.suppress(HostDied):
                host.send(protocol.Cancel(request_id))

        try:
            host.send(protocol.Score(request_id, protocol.pack_score(request, time.monotonic())))
            request.cancel.on_cancel(cancel)
            sent = time.monotonic()
            while True:
                try:
                    message = waiting.get(timeout=0.05)
                except queue.Empty:
                    now = time.monotonic()
                    if request.deadline is not None and now > request.deadline + SCORE_GRACE_S:
                        # A batch that outlasts its deadline (a busy machine): no scores,
                        # the host stops after it; nobody waits for its reply.
                        cancel()
                        return []
                    if now - sent > HANG_TIMEOUT_S:
                        host.kill(f"engine hung (no scores for {HANG_TIMEOUT_S:.0f} s)")
                    continue
                if isinstance(message, protocol.Scored):
                    return list(message.scores)
                if isinstance(message, protocol.Failed):
                    if message.kind == "memory":
                        raise MemoryError(message.message)
                    raise BackendError(message.message)
                if isinstance(message, HostDied):
                    raise message
        finally:
            host.close_request(request_id)

    def stream(self, request: GenerationRequest) -> Iterator[Chunk]:
        host = self.host
        request_id, waiting = host.open_request()
        finished = False

        def cancel() -> None:
            with contextlib.suppress(HostDied):
                host.send(protocol.Cancel(request_id))

        try:
            host.send(protocol.Generate(request_id, protocol.pack(request, time.monotonic())))
            request.cancel.on_cancel(cancel)
            limit = self._hang_limit(request.deadline)
            last_output = time.monotonic()
            while True:
                try:
                    message = waiting.get(timeout=0.5)
                except queue.Empty:
                    if time.monotonic() - last_output > limit:
                        host.kill(f"engine hung (no output for {limit:.0f} s)")
                    continue
                last_output = time.monotonic()
                if isinstance(message, protocol.Output):
                    yield message.chunk
                    if not message.chunk.finish_reason:
                        host.send(protocol.Next(request_id))
                        last_output = time.monotonic()
                elif isinstance(message, protocol.Finished):
                    finished = True
                    return
                elif isinstance(message, protocol.Failed):
                    finished = True
                    if message.kind == "memory":
                        raise MemoryError(message.message)
                    raise BackendError(message.message)
                elif isinstance(message, HostDied):
                    finished = True
                    raise message
        finally:
            if not finished:  # closed early by the engine: the host stops within a token
                cancel()
            host.close_request(request_id)
