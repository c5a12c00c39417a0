"""The engine host: the one process that imports a model library and holds the model.

Started by the language server's supervisor as `python -m companion.host`; it connects
back over the address and key in its environment, then serves LoadModel and Generate
messages one at a time on its main thread. A reader thread takes Cancel messages at any
time (the backend stops between tokens), and a heartbeat thread tells the server it is
alive. When the server goes away, the host exits at once: it is never orphaned.

A crash in here (SIGILL in a native kernel, a segfault, the OOM killer) ends only this
process; the server answers the request in flight and decides what to start next.
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time
from multiprocessing.connection import Client, Connection
from typing import Any

from companion.backends.base import (
    Backend,
    BackendError,
    CancelFlag,
    GenerationRequest,
    NameGuide,
    close_stream,
)
from companion.host import protocol
from companion.host.prefix import PrefixTracking

log = logging.getLogger("companion.host")

SELF_TEST_PROMPT = "def add(a, b):\n    return"


def warm_name_guide(backend: Backend) -> None:
    """One guided token at load, so the tables the name guide builds once per model (each
    token's text, the tokens that start a name: ~0.3 s here) are made before the first
    keystroke rather than in the first suggestion's time; a failure only logs."""
    request = GenerationRequest(prompt=SELF_TEST_PROMPT, max_tokens=1, names=NameGuide(
        {}, SELF_TEST_PROMPT.rsplit("\n", 1)[-1], (), ("a", "b")))
    try:
        run_to_end(backend, request)
    except Exception as error:  # the guide's tables are made on first use instead
        log.warning("name guide warm-up failed: %s", error)


def run_to_end(backend: Backend, request: GenerationRequest) -> None:
    """Generate `request` and drop the output (the self-test, the warm-up)."""
    stream = backend.stream(request)
    try:
        for _ in stream:
            pass
    finally:
        close_stream(stream)


def make_backend(name: str) -> Backend:
    """The engine `name`, wrapped for fault injection when a test asks for it."""
    from companion.backends.faulty import FaultyBackend, configured_fault
    from companion.backends.registry import FACTORIES

    if name not in FACTORIES:
        raise BackendError(f"backend {name!r} cannot run in the engine host")
    backend = FACTORIES[name]()
    fault = configured_fault()
    if fault is not None:  # the fault-injection tests, never set otherwise
        backend = FaultyBackend(backend, *fault)
    return backend


def engine_features(name: str) -> str:
    if name != "llamacpp":
        return ""
    from companion.backends.llamacpp import system_info

    return system_info()


class Host:
    """The host's state: one loaded backend, the running request's cancel flag."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.send_lock = threading.Lock()
        self.work: queue.Queue[Any] = queue.Queue()
        self.flags: dict[int, CancelFlag] = {}
        self.credits: dict[int, threading.Semaphore] = {}  # Next messages not used yet
        self.flags_lock = threading.Lock()
        self.backend: PrefixTracking | None = None

    def send(self, message: object) -> None:
        with self.send_lock:
            self.connection.send(message)

    # -- threads -------------------------------------------------------------------------

    def read(self) -> None:
        """Messages from the server; its end of the pipe closing ends this process."""
        while True:
            try:
                message = self.connection.recv()
            except (EOFError, OSError):
                os._exit(0)  # the server is gone: nobody needs the model any more
            if isinstance(message, protocol.Cancel | protocol.Next):
                with self.flags_lock:
                    flag = self.flags.get(message.id)
                    credit = self.credits.get(message.id)
                if flag is not None and isinstance(message, protocol.Cancel):
                    flag.cancel()
                if credit is not None:
                    credit.release()
                continue
            if isinstance(message, protocol.Generate | protocol.Score):
                with self.flags_lock:
                    self.flags[message.id] = CancelFlag()
                    self.credits[message.id] = threading.Semaphore(0)
            self.work.put(message)
            if isinstance(message, protocol.Stop):
                return

    def beat(self) -> None:
        import psutil

        process = psutil.Process()
        while True:
            try:
                rss = process.memory_info().rss / 2**20
                self.send(protocol.Heartbeat(round(rss, 1)))
            except (OSError, ValueError):
                os._exit(0)
            time.sleep(protocol.HEARTBEAT_S)

    # -- work ------------------------------------------------------------------------------

    def load(self, message: protocol.LoadModel) -> None:
        if self.backend is not None:
            self.backend.unload()
            self.backend = None
        try:
            backend = PrefixTracking(make_backend(message.backend))
            backend.load(message.spec)
            started = time.perf_counter()
            # One token before serving: a build that faults on this CPU dies here, at
            # load, where the supervisor can retry in safe mode, not at the first keystroke.
            run_to_end(backend, GenerationRequest(prompt=SELF_TEST_PROMPT, max_tokens=1))
            self_test_ms = (time.perf_counter() - started) * 1000
            if backend.capabilities.name_guide:
                warm_name_guide(backend)
        except (BackendError, MemoryError, OSError, RuntimeError, ValueError) as error:
            self.send(protocol.LoadFailed(str(error) or error.__class__.__name__))
            return
        self.backend = backend
        self.send(protocol.Loaded(backend.info(), backend.capabilities, round(self_test_ms, 1),
                                  engine_features(message.backend)))

    def generate(self, message: protocol.Generate) -> None:
        with self.flags_lock:
            flag = self.flags.get(message.id) or CancelFlag()
            credit = self.credits.get(message.id) or threading.Semaphore(1)
        try:
            if self.backend is None:
                raise BackendError("no model loaded in the engine host")
            request = protocol.unpack(message.request, time.monotonic())
            request.cancel = flag
            stream = self.backend.stream(request)
            try:
                for chunk in stream:
                    self.send(protocol.Output(message.id, chunk))
                    if chunk.finish_reason:
                        break
                    credit.acquire()  # until the server asks for more (or cancels)
                    if flag.cancelled:
                        break
            finally:
                close_stream(stream)
            self.send(protocol.Finished(message.id))
        except MemoryError as error:
            self.send(protocol.Failed(message.id, "memory", str(error) or "out of memory"))
        except Exception as error:  # reported to the server, which falls back for it
            self.send(protocol.Failed(message.id, "error",
                                      f"{error.__class__.__name__}: {error}"))
        finally:
            with self.flags_lock:
                self.flags.pop(message.id, None)
                self.credits.pop(message.id, None)

    def score(self, message: protocol.Score) -> None:
        with self.flags_lock:
            flag = self.flags.get(message.id) or CancelFlag()
        try:
            if self.backend is None:
                raise BackendError("no model loaded in the engine host")
            request = protocol.unpack_score(message.request, time.monotonic())
            request.cancel = flag
            self.send(protocol.Scored(message.id, self.backend.score(request)))
        except MemoryError as error:
            self.send(protocol.Failed(message.id, "memory", str(error) or "out of memory"))
        except Exception as error:  # reported to the server, which keeps the greedy answer
            self.send(protocol.Failed(message.id, "error",
                                      f"{error.__class__.__name__}: {error}"))
        finally:
            with self.flags_lock:
                self.flags.pop(message.id, None)
                self.credits.pop(message.id, None)

    def serve(self) -> None:
        threading.Thread(target=self.read, name="host-reader", daemon=True).start()
        threading.Thread(target=self.beat, name="host-heartbeat", daemon=True).start()
        self.send(protocol.Ready(os.getpid()))
        while True:
            message = self.work.get()
            if isinstance(message, protocol.Stop):
                break
            if isinstance(message, protocol.LoadModel):
                self.load(message)
            elif isinstance(message, protocol.Generate):
                self.generate(message)
            elif isinstance(message, protocol.Score):
                self.score(message)
        if self.backend is not None:
            self.backend.unload()


def main() -> int:
    # stdout belongs to nobody here: anything a native library prints goes to stderr,
    # which the server forwards to its own log.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s host %(levelname)s %(name)s: %(message)s")
    address = os.environ.pop(protocol.ADDRESS_ENV, "")
    authkey = bytes.fromhex(os.environ.pop(protocol.AUTHKEY_ENV, ""))
    if not address or not authkey:
        print("companion.host is started by the language server, not by hand", file=sys.stderr)
        return 2
    connection = Client(address, authkey=authkey)
    Host(connection).serve()
    return 0
