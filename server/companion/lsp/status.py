"""companion/status (custom request) and companion/restart (request and command).

Besides the engine's own fields (backend, model, counters, latency), the status carries
what became of the suggestions shown this session (acceptance rate, partial accepts,
rejections), whether accepted code is still there 30 s, 2 min and 10 min later
(`retention`), a health verdict (ok / slow / degraded) with the thresholds it was judged
by, and the state of the local history database.
"""

from __future__ import annotations

import os
from typing import Any

from companion.config import settings_to_wire
from companion.engine.completer import Engine
from companion.engine.health import verdict
from companion.lsp.server import CompanionServer

STATUS = "companion/status"
RESTART = "companion/restart"


def engine_status(engine: Engine) -> dict[str, Any]:
    """Backend, model, state, the engine host, memory, counters and latency (never secrets).

    `memoryMB` is the language server's own resident memory; `host.memoryMB` the engine
    host's (the model lives there)."""
    import psutil

    current = engine.current
    supervisor = engine.supervisor
    info = current.backend.info()
    snapshot = engine.metrics.snapshot()
    inline = snapshot["latency"].get("inline", {})
    rss = psutil.Process(os.getpid()).memory_info().rss / 2**20
    state = current.state
    if engine.health.degraded and current.spec and state == "ready":
        state = "degraded"
    return {
        "backend": info.name,
        "model": info.model,
        "device": info.device,
        "state": state,
        "health": engine.health.to_dict(),
        "inFlight": engine.scheduler.in_flight,
        "reason": current.reason,
        "steps": list(current.steps),
        "loadSeconds": round(current.load_seconds, 2),
        "loads": supervisor.loads,
        "memoryMB": round(rss, 1),
        "host": supervisor.host_status(),
        "hardware": current.hardware,
        "modelMemoryMB": info.memory_mb,
        "contextTokens": info.context_tokens,
        "requests": snapshot["requests"],
        "latency": {
            "p50Ms": inline.get("p50Ms"),
            "p95Ms": inline.get("p95Ms"),
            "lastMs": inline.get("lastMs"),
        },
        "latencyByKind": snapshot["latency"],
        "generatedTokens": snapshot["generatedTokens"],
        "tokensPerSecond": snapshot["tokensPerSecond"],
        "shown": snapshot["requests"].get("shown", 0),
        "accepted": snapshot["requests"].get("accepted", 0),
    }


def full_status(ls: CompanionServer) -> dict[str, Any]:
    """The engine's status plus outcomes, verdict and history (new keys only: the engine's
    fields keep their meaning)."""
    ls.history.expire()  # outcomes as of now, not as of the last timer
    payload = engine_status(ls.engine)
    inline = ls.history.summary("inline")
    requests = payload["requests"]
    latency = payload["latencyByKind"].get("inline", {})
    health = ls.engine.health
    payload.update(
        partiallyAccepted=inline["partiallyAccepted"],
        rejected=inline["rejected"],
        acceptanceRate=inline["acceptanceRate"],
        completionItems=ls.history.summary("completion"),
        verdict=verdict(
            state=payload["state"],
            configured_backend=ls.settings.backend,
            inline_p95_ms=latency.get("p95Ms"),
            inline_samples=int(latency.get("count") or 0),
            inline_deadline_ms=ls.settings.inline_deadline_ms,
            model_errors=int(requests.get("modelErrors", 0)),
            hung=health.hung,
            failing=health.failures > 0,
            load_failures=ls.load_failures,
        ),
        retention=ls.history.retention.summary(),
        history=ls.history.info(),
    )
    return payload


def register(server: CompanionServer) -> None:
    @server.feature(STATUS)
    def status(ls: CompanionServer, params: Any) -> dict[str, Any]:
        """Backend, model, device, memory, counters, latency p50/p95, outcomes, verdict."""
        payload = full_status(ls)
        payload["settings"] = settings_to_wire(ls.settings)
        return payload

    @server.feature(RESTART)
    async def restart(ls: CompanionServer, params: Any) -> dict[str, Any]:
        """Reload the model (going back up the fallback ladder); answers when loaded."""
        ls.start_loading(reset=True)
        task = ls._load_task
        if task is not None:
            await task
        return full_status(ls)

    @server.command("companion.restart")
    async def restart_command(ls: CompanionServer, *args: Any) -> dict[str, Any]:
        """The same as companion/restart, for clients that only run commands."""
        return await restart(ls, None)
