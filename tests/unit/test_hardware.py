"""The hardware probe: real probe sanity, speed, and CUDA detection through a fake nvidia-smi."""

from __future__ import annotations

import json
import os
import platform
import shutil
import stat
import sys
import time
from pathlib import Path

import pytest

from companion.models import hardware
from companion.models.hardware import Hardware


def _fake_nvidia_smi(folder: Path, script: str) -> None:
    executable = folder / "nvidia-smi"
    executable.write_text("#!/bin/sh\n" + script + "\n")
    executable.chmod(executable.stat().st_mode | stat.S_IEXEC)


def test_probe_reports_plausible_values() -> None:
    hw = hardware.probe()
    assert hw.total_ram_mb > 0
    assert 0 < hw.available_ram_mb <= hw.total_ram_mb
    assert hw.cpu_count >= 1
    assert hw.system and hw.machine
    if not hw.cuda:
        assert hw.gpu_name is None and hw.gpu_free_mb is None


def test_to_dict_is_json_ready() -> None:
    data = hardware.probe().to_dict()
    assert json.loads(json.dumps(data)) == data
    assert {"total_ram_mb", "available_ram_mb", "cuda", "gpu_free_mb", "apple_silicon"} <= set(data)


@pytest.mark.skipif(
    shutil.which("nvidia-smi") is not None, reason="nvidia-smi adds its own latency"
)
def test_probe_is_cheap_without_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without nvidia-smi a probe starts no process and imports no GPU framework: it
    only reads what psutil and platform know."""
    started: list[object] = []
    monkeypatch.setattr(hardware.subprocess, "run",
                        lambda *args, **kwargs: started.append(args))
    before = set(sys.modules)
    for _ in range(5):
        hardware.probe()
    assert started == []
    assert not {"torch", "mlx", "vllm"} & (set(sys.modules) - before)


def test_parse_picks_the_gpu_with_most_free_memory() -> None:
    output = "NVIDIA A10, 24564, 1200\nNVIDIA H100 80GB HBM3, 81559, 80000\n"
    assert hardware._parse_nvidia_smi(output) == ("NVIDIA H100 80GB HBM3", 81559, 80000)


@pytest.mark.parametrize("output", ["", "garbage", "name, [N/A], [N/A]", "a,b"])
def test_parse_rejects_unusable_output(output: str) -> None:
    assert hardware._parse_nvidia_smi(output) is None


def test_probe_detects_cuda_through_nvidia_smi(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_nvidia_smi(tmp_path, 'echo "NVIDIA H100 80GB HBM3, 81559, 80000"')
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    hw = hardware.probe()
    assert hw.cuda
    assert (hw.gpu_name, hw.gpu_total_mb, hw.gpu_free_mb) == ("NVIDIA H100 80GB HBM3", 81559, 80000)


@pytest.mark.parametrize("script", ["exit 9", "echo 'NVIDIA-SMI has failed'", "sleep 30"])
def test_a_failing_nvidia_smi_means_no_cuda(
    script: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_nvidia_smi(tmp_path, script)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(hardware, "_NVIDIA_SMI_TIMEOUT_S", 0.3)
    started = time.perf_counter()
    hw = hardware.probe()
    assert not hw.cuda and hw.gpu_free_mb is None
    assert time.perf_counter() - started < 20  # the timeout ended `sleep 30`


def test_apple_silicon_is_native_arm64_darwin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "system", lambda: "Darwin")
    monkeypatch.setattr(platform, "machine", lambda: "arm64")
    assert hardware.probe().apple_silicon
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")  # Rosetta Python
    assert not hardware.probe().apple_silicon


def test_summary_mentions_the_gpu() -> None:
    hw = Hardware(16384, 8000, 8, "Linux", "x86_64", False, True, "NVIDIA L4", 23034, 22000)
    assert "NVIDIA L4" in hw.summary() and "22000" in hw.summary()
