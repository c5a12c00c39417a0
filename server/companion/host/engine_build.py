"""How llama.cpp is compiled for this machine, and the wheelhouse that keeps the result.

Run by the Makefile before the package is installed (standard library only):

    python server/companion/host/engine_build.py install --python .venv/bin/python

Why not `pip install llama-cpp-python`:
- llama.cpp's default build is `-march=native`. On a CPU that advertises AMX but faults on
  it (seen in a Firecracker VM), the AMX weight-repack path raises SIGILL at the first
  generation. The flags here turn on exactly the x86 features /proc/cpuinfo lists, with
  `GGML_NATIVE=OFF` and AMX always off.
- pip caches a wheel built from an sdist by the sdist's URL, not by `CMAKE_ARGS`, so a wheel
  built with other flags (or on another CPU) would be silently reused. Wheels built here go
  into a folder named by a key of the version, the flags, the compiler and the Python tag
  (`pip wheel --no-cache-dir`), and the venv installs that exact file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

LLAMA_CPP_VERSION = "0.3.36"

# ggml's CMake option → the /proc/cpuinfo flag that must be present for it.
X86_FEATURES: dict[str, tuple[str, ...]] = {
    "GGML_SSE42": ("sse4_2",),
    "GGML_AVX": ("avx",),
    "GGML_AVX2": ("avx2",),
    "GGML_FMA": ("fma",),
    "GGML_F16C": ("f16c",),
    "GGML_BMI2": ("bmi2",),
    "GGML_AVX_VNNI": ("avx_vnni",),
    "GGML_AVX512": ("avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"),
    "GGML_AVX512_VBMI": ("avx512vbmi",),
    "GGML_AVX512_VNNI": ("avx512_vnni",),
    "GGML_AVX512_BF16": ("avx512_bf16",),
}
# Never compiled in: advertised by some virtual CPUs that then fault on the instruction.
ALWAYS_OFF = ("GGML_AMX_TILE", "GGML_AMX_INT8", "GGML_AMX_BF16")


def cpu_flags() -> set[str]:
    """The CPU feature flags the kernel reports (Linux); empty elsewhere."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    return set()


def cmake_args(machine: str | None = None, flags: set[str] | None = None) -> list[str]:
    """CMake options for llama.cpp on this machine.

    x86-64: no `-march=native`; each SIMD level on exactly when the CPU lists it; AMX off.
    Elsewhere (Apple Silicon, aarch64) llama.cpp's defaults, which have no such trap.
    A user's own `CMAKE_ARGS` (e.g. `-DGGML_CUDA=on`) goes last and wins.
    """
    machine = (machine or platform.machine()).lower()
    args: list[str] = []
    if machine in ("x86_64", "amd64"):
        present = cpu_flags() if flags is None else flags
        args.append("-DGGML_NATIVE=OFF")
        for option, needed in X86_FEATURES.items():
            enabled = all(flag in present for flag in needed)
            args.append(f"-D{option}={'ON' if enabled else 'OFF'}")
        args.extend(f"-D{option}=OFF" for option in ALWAYS_OFF)
    user = os.environ.get("CMAKE_ARGS", "").split()
    return args + user


def compiler_version() -> str:
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or ""
    if not compiler:
        return "none"
    try:
        output = subprocess.run(
            [compiler, "--version"], capture_output=True, text=True, timeout=20, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return output.splitlines()[0] if output else "unknown"


def python_tag(python: str) -> str:
    code = "import sys, sysconfig; print(sys.implementation.cache_tag, sysconfig.get_platform())"
    return subprocess.run(
        [python, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


def build_key(python: str, version: str = LLAMA_CPP_VERSION) -> str:
    """What a wheel in the wheelhouse was built from; any change means a new build."""
    parts = [version, " ".join(cmake_args()), compiler_version(), python_tag(python)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def wheelhouse() -> Path:
    base = os.environ.get("COMPANION_WHEELHOUSE")
    if base:
        return Path(base)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    if sys.platform == "darwin":
        cache = str(Path.home() / "Library" / "Caches")
    return Path(cache) / "companion" / "wheels"


def ensure_wheel(python: str, version: str = LLAMA_CPP_VERSION) -> Path:
    """The wheel for this machine's flags, compiled now if the wheelhouse lacks it."""
    folder = wheelhouse() / f"llama-cpp-python-{version}-{build_key(python, version)}"
    wheels = sorted(folder.glob("llama_cpp_python-*.whl"))
    if wheels:
        return wheels[-1]
    args = cmake_args()
    print(f"compiling llama.cpp {version} (~7 min on 2 cores) with: {' '.join(args)}",
          file=sys.stderr)
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    env = dict(os.environ, CMAKE_ARGS=" ".join(args))
    subprocess.run(
        [python, "-m", "pip", "wheel", "--quiet", "--no-cache-dir", "--no-deps",
         "--no-binary", "llama-cpp-python", "-w", str(staging), f"llama-cpp-python=={version}"],
        env=env, check=True,
    )
    (staging / "build.json").write_text(json.dumps({"cmake_args": args, "version": version}))
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return sorted(folder.glob("llama_cpp_python-*.whl"))[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    install = sub.add_parser("install", help="build (once) and install llama-cpp-python")
    install.add_argument("--python", default=sys.executable, help="the venv's interpreter")
    sub.add_parser("flags", help="print the CMake options for this machine")
    options = parser.parse_args(argv)
    if options.command == "flags":
        print(" ".join(cmake_args()))
        return 0
    wheel = ensure_wheel(options.python)
    subprocess.run(
        [options.python, "-m", "pip", "install", "--quiet", "--force-reinstall", "--no-deps",
         str(wheel)],
        check=True,
    )
    # llama-cpp-python's own dependencies, from the index (the wheel itself stays ours).
    subprocess.run(
        [options.python, "-m", "pip", "install", "--quiet", str(wheel)], check=True
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
