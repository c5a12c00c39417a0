"""`companion doctor`: what this machine has, what the server would choose and why, and a
live self-test through the real server (one completion, one hover, with timings)."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from companion.backends.registry import (
    BACKEND_NAMES,
    automatic_backend,
    availability,
    weights_format,
)
from companion.config import Settings, parse_settings
from companion.lspclient import CompanionClient
from companion.models import resolve, tiers
from companion.models.hardware import probe

SELF_TEST = '''def greet(name: str) -> str:
    """A friendly greeting."""
    return "Hello, " + name


def shout(text: str) -> str:
    """The text in capitals, with an exclamation mark."""
''' + "    \n"
async def self_test(settings: dict[str, Any]) -> dict[str, Any]:
    client = CompanionClient()
    report: dict[str, Any] = {}
    started = time.perf_counter()
    try:
        await client.start(settings)
        status = await client.wait_ready()
        report["startS"] = round(time.perf_counter() - started, 2)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "doctor_self_test.py"
            uri = client.open(path, SELF_TEST)
            moment = time.perf_counter()
            # As the shortcut asks: whether the model answers, not the typing budget (an
            # automatic request right after opening can come back empty on a loaded CPU).
            items = await client.inline(uri, 7, 4, invoked=True)
            report["inlineMs"] = round((time.perf_counter() - moment) * 1000, 1)
            ghost = items[0].insert_text if items else ""
            report["inline"] = ghost if isinstance(ghost, str) else ghost.value
            moment = time.perf_counter()
            hover = await client.hover(uri, 0, 5)
            report["hoverMs"] = round((time.perf_counter() - moment) * 1000, 1)
            report["hover"] = hover or ""
        report["status"] = await client.status()
        report["ok"] = bool(report["inline"]) or status["backend"] == "templates"
    except Exception as error:
        report["ok"] = False
        report["error"] = f"{error.__class__.__name__}: {error}"
        report["serverStderr"] = list(client.stderr_tail)[-10:]
    finally:
        await client.close()
    return report


def engine_report() -> dict[str, Any]:
    """How llama.cpp was built for this machine and whether it needs safe mode here."""
    from companion.host import engine_build, verdicts

    return {
        "buildFlags": " ".join(engine_build.cmake_args()),
        "safeMode": {name: verdicts.needs_safe_mode(name)
                     for name in ("llamacpp", "transformers", "mlx", "vllm")
                     if verdicts.needs_safe_mode(name)},
        "verdictsFile": str(verdicts.verdicts_path()),
    }


def diagnose(raw_settings: dict[str, Any], live: bool = True) -> dict[str, Any]:
    settings, warnings = parse_settings(raw_settings, Settings())
    hw = probe()
    tier = tiers.tier_for(hw, settings.memory_budget_mb)
    backends = {}
    for name in BACKEND_NAMES:
        ok, why = availability(name)
        if name == "openai":
            ok = bool(settings.endpoint)
            why = (f"endpoint {settings.endpoint}" if ok
                   else "set companion.endpoint to an OpenAI-compatible server")
        backends[name] = {"available": ok, "why": why}
    backend, backend_reason = (
        automatic_backend(hw) if settings.backend == "auto"
        else (settings.backend, "configured")
    )
    fmt = weights_format(backend)
    choice = tiers.choose(settings.model, hw, settings.memory_budget_mb, fmt)
    embedded = resolve.embedded_model_path()
    report: dict[str, Any] = {
        "hardware": hw.to_dict(),
        "hardwareSummary": hw.summary(),
        "tier": {"name": tier.name, "quantization": tier.quantization,
                 "contextTokens": tier.context_tokens},
        "settingsWarnings": warnings,
        "backends": backends,
        "backend": {"name": backend, "why": backend_reason},
        "model": {"name": choice.name, "quantization": choice.quantization,
                  "why": choice.reason, "steps": choice.steps},
        "embeddedModel": str(embedded) if embedded else None,
        "engine": engine_report(),
    }
    if live:
        report["selfTest"] = asyncio.run(self_test(raw_settings))
    return report


def format_report(report: dict[str, Any]) -> str:
    lines = [f"machine: {report['hardwareSummary']}",
             f"tier: {report['tier']['name']}"]
    for warning in report["settingsWarnings"]:
        lines.append(f"settings: {warning}")
    lines.append("backends:")
    for name, info in report["backends"].items():
        mark = "✓" if info["available"] else "✗"
        lines.append(f"  {mark} {name:<13} {info['why']}")
    lines.append(f"chosen backend: {report['backend']['name']} ({report['backend']['why']})")
    model = report["model"]
    lines.append(f"chosen model: {model['name']} ({model['why']})")
    for step in model["steps"]:
        lines.append(f"  step down: {step}")
    lines.append(f"embedded model file: {report['embeddedModel'] or 'missing'}")
    engine = report["engine"]
    lines.append(f"llama.cpp build flags for this CPU: {engine['buildFlags'] or 'defaults'}")
    for name, why in engine["safeMode"].items():
        lines.append(f"  {name} runs in safe mode here: {why}")
    test = report.get("selfTest")
    if test is not None:
        if "error" in test:
            lines.append(f"self-test: FAILED ({test['error']})")
            lines.extend(f"  server: {line}" for line in test.get("serverStderr", []))
        else:
            status = test["status"]
            lines.append(
                f"self-test: server up and model loaded in {test['startS']} s "
                f"({status['backend']} · {status['model']}, {status['memoryMB']:.0f} MB)"
            )
            host = status.get("host") or {}
            lines.append(
                f"  engine host: pid {host.get('pid')}, {host.get('memoryMB', 0):.0f} MB, "
                f"self-test {host.get('selfTestMs')} ms"
                + (", SAFE MODE" if host.get("safeMode") else "")
                + (f", last crash: {host['lastCrash']}" if host.get("lastCrash") else ""))
            if host.get("engineFeatures"):
                lines.append(f"  engine CPU features: {host['engineFeatures']}")
            for step in status.get("steps", []):
                lines.append(f"  step down: {step}")
            lines.append(f"  inline completion ({test['inlineMs']} ms): {test['inline']!r}")
            first = next((line for line in test["hover"].split("\n") if line.strip()), "")
            lines.append(f"  hover ({test['hoverMs']} ms): {first}")
            lines.append("  verdict: " + ("ok" if test["ok"] else "no suggestion came back"))
    return "\n".join(lines)
