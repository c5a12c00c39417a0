"""companion/status (custom request) and companion/restart (request and command).

Besides the engine's own fields (backend, model, counters, latency), the status carries
what became of the suggestions shown this session (acceptance rate, partial accepts,
rejections), a health verdict (ok / slow / degraded) with the thresholds it was judged by,
and the state of the local history database.
"""

from __future__ import annotations

from typing import Any

from companion.config import settings_to_wire
from companion.engine.health import verdict
from companion.lsp.server import CompanionServer

STATUS = "companion/status"
RESTART = "companion/restart"


def full_status(ls: CompanionServer) -> dict[str, Any]:
    """The engine's status plus outcomes, verdict and history (new keys only: the engine's
    fields keep their meaning)."""
    ls.history.expire()  # outcomes as of now, not as of the last timer
    payload = ls.engine.status()
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
        ls.start_loading()
        task = ls._load_task
        if task is not None:
            await task
        return full_status(ls)

    @server.command("companion.restart")
    async def restart_command(ls: CompanionServer, *args: Any) -> dict[str, Any]:
        """The same as companion/restart, for clients that only run commands."""
        return await restart(ls, None)
