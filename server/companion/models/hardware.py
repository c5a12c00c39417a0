"""Hardware probe: RAM, CPU, Apple Silicon and CUDA GPU memory, for the model choice.

The probe is cheap (psutil + platform, well under 50 ms) unless `nvidia-smi` is on PATH,
in which case it is asked once, with a short timeout. We never import torch here: importing
it costs seconds and gigabytes, and the server must start on machines that lack it.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from dataclasses import asdict, dataclass
from typing import Any

import psutil  # type: ignore[import-untyped,unused-ignore]

_MIB = 1024 * 1024
# nvidia-smi normally answers in ~50-200 ms; a hung driver must not stall server start-up.
_NVIDIA_SMI_TIMEOUT_S = 2.0
_NVIDIA_SMI_QUERY = [
    "--query-gpu=name,memory.total,memory.free",
    "--format=csv,noheader,nounits",
]


@dataclass(frozen=True)
class Hardware:
    """What this machine offers a model. Memory is in MiB (written MB, as tools do)."""

    total_ram_mb: int
    available_ram_mb: int
    cpu_count: int
    system: str  # platform.system(): "Linux", "Darwin", "Windows"
    machine: str  # platform.machine(): "x86_64", "arm64", "AMD64"
    apple_silicon: bool
    cuda: bool
    gpu_name: str | None = None
    gpu_total_mb: int | None = None
    gpu_free_mb: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for `companion doctor --json` and `companion/status`)."""
        return asdict(self)

    def summary(self) -> str:
        """One human-readable line, e.g. for the log and `companion doctor`."""
        ram = (
            f"{self.available_ram_mb} of {self.total_ram_mb} MB RAM free, "
            f"{self.cpu_count} CPUs, {self.system} {self.machine}"
        )
        if self.cuda:
            gpu = f"{self.gpu_free_mb} of {self.gpu_total_mb} MB free"
            return f"{ram}; CUDA GPU {self.gpu_name}: {gpu}"
        if self.apple_silicon:
            return f"{ram}; Apple Silicon (unified memory)"
        return f"{ram}; no GPU"


def _parse_nvidia_smi(output: str) -> tuple[str, int, int] | None:
    """(name, total MB, free MB) of the GPU with the most free memory, or None.

    A multi-GPU machine is reduced to its roomiest GPU: the backends load a model on one
    device, so summing free memory across GPUs would overstate what fits.
    """
    best: tuple[str, int, int] | None = None
    for line in output.splitlines():
        parts = [part.strip() for part in line.split(",")]
        if len(parts) != 3:
            continue
        name, total_text, free_text = parts
        try:
            total_mb, free_mb = int(float(total_text)), int(float(free_text))
        except ValueError:
            continue
        if best is None or free_mb > best[2]:
            best = (name, total_mb, free_mb)
    return best


def _probe_cuda() -> tuple[str, int, int] | None:
    executable = shutil.which("nvidia-smi")
    if executable is None:
        return None
    try:
        completed = subprocess.run(
            [executable, *_NVIDIA_SMI_QUERY],
            capture_output=True,
            text=True,
            timeout=_NVIDIA_SMI_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if completed.returncode != 0:
        return None
    return _parse_nvidia_smi(completed.stdout)


def probe() -> Hardware:
    """Probe this machine. Never raises: a failing GPU query just means `cuda=False`."""
    memory = psutil.virtual_memory()
    system = platform.system()
    machine = platform.machine()
    # Rosetta reports x86_64 for an x86 Python on an M-series Mac; we only count native arm64,
    # because only a native Python can use MLX / Metal.
    apple_silicon = system == "Darwin" and machine in ("arm64", "aarch64")
    try:
        gpu = _probe_cuda()
    except Exception:  # a probe must never take the server down
        gpu = None
    return Hardware(
        total_ram_mb=int(memory.total // _MIB),
        available_ram_mb=int(memory.available // _MIB),
        cpu_count=os.cpu_count() or 1,
        system=system,
        machine=machine,
        apple_silicon=apple_silicon,
        cuda=gpu is not None,
        gpu_name=gpu[0] if gpu else None,
        gpu_total_mb=gpu[1] if gpu else None,
        gpu_free_mb=gpu[2] if gpu else None,
    )
