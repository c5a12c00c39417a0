"""Model state and the engine host's life: load through the ladder, notice crashes,
restart with backoff, step down when crashes repeat.

The ladder on crashes (ARCHITECTURE.md): the configured engine is restarted up to
MAX_RESTARTS times in a row (backoff 0.5, 1, 2 … s); then its safe configuration; then the
next engine this machine has; then templates. A crash at load or in the host's one-token
self-test goes to safe mode at once, and a safe mode that works is remembered for this
machine and engine build (host/verdicts.py). Each step is logged once and listed in
`companion/status`; `companion/restart` starts again from the top.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from companion.backends.base import Backend, BackendError, ModelSpec, NoModel
from companion.backends.registry import SAFE_MODE_ENGINES, LoadResult, load_with_fallback
from companion.config import Settings
from companion.engine.health import ModelHealth
from companion.engine.host_client import HostBackend, HostDied, HostProcess
from companion.host import verdicts
from companion.models.hardware import probe

log = logging.getLogger(__name__)

MAX_RESTARTS = int(os.environ.get("COMPANION_HOST_RESTARTS", "3"))
RESTART_BACKOFF_S = float(os.environ.get("COMPANION_HOST_BACKOFF_S", "0.5"))


@dataclass
class EngineState:
    """What is loaded and why; replaced whole when the model changes."""

    state: str  # "loading" | "ready" | "degraded" | "restarting" | "templates"
    backend: Backend
    spec: ModelSpec | None
    reason: str
    steps: list[str]
    load_seconds: float = 0.0
    hardware: dict[str, Any] | None = None  # the probe the choice was made from

    @property
    def serving(self) -> bool:
        """A model answers (not loading, restarting or templates)."""
        return self.spec is not None and self.state in ("ready", "degraded")


class Supervisor:
    """Owns the loaded model: which engine, in which host process, how healthy."""

    def __init__(self, settings: Callable[[], Settings],
                 run_on_worker: Callable[[Callable[[], Any]], Any]) -> None:
        self._settings = settings
        self._run_on_worker = run_on_worker  # loads run where generations run, one at a time
        self.templates = NoModel()
        self.current = EngineState("loading", self.templates, None, "starting", [])
        self.health = ModelHealth()
        self.host: HostProcess | None = None
        self.loads = 0  # completed model loads this session
        self.crashes = 0  # engine host deaths this session
        self.in_a_row = 0  # crashes since the last good generation
        self.last_crash = ""
        self.crash_steps: list[str] = []  # steps down the crash ladder, kept across reloads
        self.safe: set[str] = set()  # engines in safe mode this session
        self.excluded: set[str] = set()  # engines that crashed repeatedly this session
        self.on_event: Callable[[str], None] = lambda message: None
        self._lock = threading.RLock()
        self._restart_timer: threading.Timer | None = None

    # -- loading ---------------------------------------------------------------------------

    def load(self, on_step: Callable[[str], Any] | None = None) -> EngineState:
        """Load the configured backend and model (blocking; on the generation thread)."""
        with self._lock:
            if self._restart_timer is not None:  # an explicit reload overtakes a restart
                self._restart_timer.cancel()
            started = time.perf_counter()
            self.current = EngineState("loading", self.templates, None, "loading",
                                       list(self.crash_steps))
            self.stop_host()  # before the probe: its memory counts as free again
            hardware = probe()
            result: LoadResult = load_with_fallback(
                self._settings(), on_step, hardware, self._load_in_host,
                frozenset(self.excluded))
            steps = [*self.crash_steps, *result.steps]
            state = "templates" if result.spec is None else "degraded" if steps else "ready"
            self.current = EngineState(state, result.backend, result.spec, result.reason, steps,
                                       time.perf_counter() - started, hardware.to_dict())
            self.health = ModelHealth()
            self.loads += 1
            log.info("model ready: backend=%s model=%s state=%s in %.1fs (%s)",
                     result.backend.name, result.spec.name if result.spec else "-", state,
                     self.current.load_seconds, result.reason)
            return self.current

    def _load_in_host(self, engine: str, spec: ModelSpec, step: Callable[[str], None]) -> Backend:
        """Start an engine host for `engine` and load `spec` in it, in safe mode when this
        machine needs it; a crash at load is retried once in safe mode."""
        has_safe_mode = engine in SAFE_MODE_ENGINES
        if engine in self.safe:
            safe = True
        elif not has_safe_mode:
            safe = False
        else:
            known = verdicts.needs_safe_mode(engine)
            safe = known is not None
            if known is not None:
                step(f"{engine} runs in safe mode on this machine ({known})")
        while True:
            host = HostProcess(self._host_exited, self.crashes)
            try:
                host.start()
                loaded = host.load(engine, dataclasses.replace(spec, safe_mode=safe))
            except HostDied as died:
                self.crashes += 1
                if safe or not has_safe_mode:
                    raise BackendError(
                        f"engine crashed at load: {died.reason} in {engine}"
                        + (", safe mode too" if safe else "") + host.last_lines()) from died
                crash = f"engine crashed at load: {died.reason} in {engine}"
                step(f"{crash} — retrying in safe mode")
                self.last_crash, safe = crash, True
                verdicts.remember_safe_mode(engine, crash)
                continue
            except BaseException:
                host.stop()
                raise
            if safe:
                self.safe.add(engine)
            self.host = host
            return HostBackend(host, loaded, spec)

    def stop_host(self) -> None:
        host, self.host = self.host, None
        if host is not None:
            host.stop()

    def shutdown(self) -> None:
        if self._restart_timer is not None:
            self._restart_timer.cancel()
        self.stop_host()

    def reset_ladder(self) -> None:
        """companion/restart: forget this session's crashes and start from the top."""
        with self._lock:
            self.in_a_row = 0
            self.crash_steps = []
            self.safe.clear()
            self.excluded.clear()

    # -- crashes ---------------------------------------------------------------------------

    def succeeded(self) -> None:
        """A generation came back: the crash streak is over."""
        self.in_a_row = 0

    def _host_exited(self, host: HostProcess, reason: str) -> None:
        """The serving host died (reader thread): answer with templates, restart later."""
        with self._lock:
            if host is not self.host:
                return
            self.host = None
            current = self.current
            engine = current.backend.name
            self.crashes += 1
            self.in_a_row += 1
            self.last_crash = f"engine crashed: {reason} in {engine}"
            capabilities = getattr(current.backend, "capabilities", None)
            if self.in_a_row <= MAX_RESTARTS:
                message = f"{self.last_crash} — restarting ({self.in_a_row}/{MAX_RESTARTS})"
                delay = RESTART_BACKOFF_S * 2 ** (self.in_a_row - 1)
            elif (engine not in self.safe and capabilities is not None
                  and capabilities.safe_mode):
                self.safe.add(engine)
                self.in_a_row = 0
                message = f"{self.last_crash} again — stepping down to its safe mode"
                self.crash_steps.append(message)
                delay = RESTART_BACKOFF_S
            else:
                self.excluded.add(engine)
                self.in_a_row = 0
                message = f"{self.last_crash} again — stepping down to the next engine"
                self.crash_steps.append(message)
                delay = RESTART_BACKOFF_S
            self.current = dataclasses.replace(current, state="restarting", reason=message,
                                               steps=[*current.steps, message]
                                               if message not in current.steps
                                               else current.steps)
            log.error("%s", message)
            self.on_event(message)
            self._restart_timer = threading.Timer(delay, self._restart)
            self._restart_timer.daemon = True
            self._restart_timer.start()

    def _restart(self) -> None:
        try:
            self._run_on_worker(self.load)
        except RuntimeError as error:  # the worker was shut down: the server is exiting
            log.info("no restart: %s", error)

    # -- status ----------------------------------------------------------------------------

    def host_status(self) -> dict[str, Any]:
        """The engine host's part of companion/status."""
        host = self.host
        backend = self.current.backend
        loaded = backend.loaded if isinstance(backend, HostBackend) else None
        return {
            "pid": host.pid if host is not None and host.alive else None,
            "memoryMB": round(host.rss_mb, 1) if host is not None and host.alive else 0.0,
            "safeMode": bool(self.current.spec and backend.name in self.safe),
            "crashes": self.crashes,
            "crashesInARow": self.in_a_row,
            "lastCrash": self.last_crash,
            "selfTestMs": loaded.self_test_ms if loaded is not None else None,
            "engineFeatures": loaded.engine_features if loaded is not None else "",
        }
