"""Token and thread helpers every local engine shares (one copy, not one per backend)."""

from __future__ import annotations

import os


def default_threads() -> int:
    """One thread per physical core: hyper-threads slow llama.cpp's matmuls down."""
    try:
        import psutil

        return max(1, psutil.cpu_count(logical=False) or os.cpu_count() or 1)
    except Exception:
        return max(1, os.cpu_count() or 1)


def common_prefix_length(a: list[int], b: list[int]) -> int:
    """How many leading tokens two prompts share."""
    count = 0
    for left, right in zip(a, b, strict=False):
        if left != right:
            break
        count += 1
    return count
