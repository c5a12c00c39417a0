"""The ok / slow / degraded verdict of companion/status, and why templates answered."""

from __future__ import annotations

from typing import Any

from companion.engine.health import ModelHealth, template_reason, verdict


def judge(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "state": "ready", "configured_backend": "auto", "inline_p95_ms": 300.0,
        "inline_samples": 20, "inline_deadline_ms": 2500, "model_errors": 0, "hung": False,
        "failing": False, "load_failures": 0,
    }
    values.update(overrides)
    return verdict(**values)


def test_a_healthy_fast_server_is_ok_and_says_by_what_measure() -> None:
    result = judge()
    assert result["level"] == "ok" and result["reasons"] == []
    assert result["thresholds"] == {"slowP95Ms": 2500, "slowMinSamples": 5,
                                    "degradedModelErrors": 3, "degradedLoadFailures": 2}


def test_slow_when_the_inline_p95_passes_the_deadline_over_enough_requests() -> None:
    assert judge(inline_p95_ms=2600.0)["level"] == "slow"
    assert "2600 ms" in judge(inline_p95_ms=2600.0)["reasons"][0]
    assert judge(inline_p95_ms=2500.0)["level"] == "ok"
    assert judge(inline_p95_ms=9000.0, inline_samples=4)["level"] == "ok"  # too few
    assert judge(inline_p95_ms=None, inline_samples=0)["level"] == "ok"


def test_degraded_for_templates_hangs_failures_and_repeated_errors() -> None:
    assert judge(state="templates")["level"] == "degraded"
    assert judge(state="templates", configured_backend="templates")["level"] == "ok"
    assert judge(state="degraded")["level"] == "degraded"
    assert judge(hung=True)["level"] == "degraded"
    assert judge(failing=True)["level"] == "degraded"
    assert judge(model_errors=2)["level"] == "ok"
    assert judge(model_errors=3)["level"] == "degraded"
    assert judge(load_failures=1)["level"] == "ok"
    assert judge(load_failures=2)["level"] == "degraded"
    both = judge(hung=True, inline_p95_ms=5000.0)
    assert both["level"] == "degraded" and len(both["reasons"]) == 2  # slow is still said


def test_why_templates_answered() -> None:
    health = ModelHealth()
    assert template_reason("loading", "loading", False, health) == "model loading"
    assert template_reason("templates", "fallback: templates", False, health) == (
        "fallback: templates")
    health.failed("RuntimeError: boom")
    assert template_reason("ready", "", True, health) == "model error: RuntimeError: boom"
    health.mark_hung("stuck")
    assert template_reason("ready", "", True, health) == "model hung: stuck"
