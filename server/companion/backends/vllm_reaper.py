"""The reaper: ends vLLM's engine processes when the process that started them dies.

vLLM's children (EngineCore and its worker) outlive a parent that dies without unloading
the engine (killed, or leaving with os._exit), and keep their memory. `Reaper.start` runs
this module (`python -m companion.backends.vllm_reaper`) in a session of its own and sends
it "PID CREATE_TIME" lines on stdin. When its stdin ends without "forget" (the parent is
gone, or asked it to reap) or the parent's pid stops being its parent, it terminates those
processes, then kills what is left after REAP_GRACE_S. The creation time keeps it from
ending a process that merely reuses a pid.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import psutil

log = logging.getLogger("companion.backends.vllm")

REAP_GRACE_S = 5.0
PARENT_CHECK_S = 1.0  # how often a quiet reaper looks whether its parent is still there
FORGET = b"forget"


class Reaper:
    """Ends the engine's processes if this process dies without unloading the engine."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self._process = process

    @classmethod
    def start(cls, targets: dict[int, float]) -> Reaper | None:
        if not targets:
            return None
        package_root = str(Path(__file__).resolve().parents[2])  # importable, installed or not
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([package_root, *([path] if path
                                                                            else [])])}
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "companion.backends.vllm_reaper"],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,  # fd 1 may be the LSP protocol
                start_new_session=True,  # survives the server's process group
                env=env,
            )
            assert process.stdin is not None
            process.stdin.write("".join(f"{pid} {t!r}\n" for pid, t in targets.items()).encode())
            process.stdin.flush()
        except (OSError, ValueError) as error:
            log.warning("vLLM: no reaper for the engine's processes (%s)", error)
            return None
        return cls(process)

    def forget(self) -> None:
        """The engine shut down by itself: the reaper leaves without doing anything."""
        self._finish(FORGET + b"\n")

    def reap(self) -> None:
        """End the engine's processes now (they did not shut down)."""
        self._finish(b"")

    def _finish(self, command: bytes) -> None:
        try:
            assert self._process.stdin is not None
            self._process.stdin.write(command)
            self._process.stdin.close()
            self._process.wait(timeout=REAP_GRACE_S + 5)
        except (OSError, ValueError, subprocess.TimeoutExpired) as error:
            log.warning("vLLM reaper: %s", error)


def descendants() -> dict[int, float]:
    """This process's descendants (pid → creation time), but multiprocessing's resource
    tracker, which must outlive the engine to clean up after it and exits by itself."""
    try:
        found: dict[int, float] = {}
        for child in psutil.Process().children(recursive=True):
            try:
                if "resource_tracker" not in " ".join(child.cmdline()):
                    found[child.pid] = child.create_time()
            except psutil.Error:
                continue
        return found
    except Exception:  # psutil refused: no reaping, the engine still runs
        return {}


# -- the reaper process ----------------------------------------------------------------------


def read_targets(stdin: int, parent: int) -> dict[int, float] | None:
    """The processes to end once the parent is gone; None when told to forget them."""
    targets: dict[int, float] = {}
    pending = b""
    while True:
        ready, _, _ = select.select([stdin], [], [], PARENT_CHECK_S)
        if not ready:
            if os.getppid() != parent:
                return targets
            continue
        data = os.read(stdin, 4096)
        if not data:
            return targets
        *lines, pending = (pending + data).split(b"\n")
        for line in lines:
            if line == FORGET:
                return None
            pid, created = line.split()
            targets[int(pid)] = float(created)


def end(targets: dict[int, float]) -> None:
    """Terminate the targets that are still the processes they were; kill what is left."""
    alive = []
    for pid, created in targets.items():
        try:
            process = psutil.Process(pid)
            if abs(process.create_time() - created) < 0.5:
                process.terminate()
                alive.append(process)
        except psutil.Error:
            pass
    _, left = psutil.wait_procs(alive, timeout=REAP_GRACE_S)
    for process in left:
        with contextlib.suppress(psutil.Error):
            process.kill()


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C in the editor's terminal
    targets = read_targets(0, os.getppid())
    if targets is not None:
        end(targets)


if __name__ == "__main__":
    main()
