"""companion/status (custom request) and companion/restart (request and command)."""

from __future__ import annotations

from typing import Any

from companion.config import settings_to_wire
from companion.lsp.server import CompanionServer

STATUS = "companion/status"
RESTART = "companion/restart"


def register(server: CompanionServer) -> None:
    @server.feature(STATUS)
    def status(ls: CompanionServer, params: Any) -> dict[str, Any]:
        """Backend, model, device, memory, counters, latency p50/p95 and why."""
        payload = ls.engine.status()
        payload["settings"] = settings_to_wire(ls.settings)
        return payload

    @server.feature(RESTART)
    async def restart(ls: CompanionServer, params: Any) -> dict[str, Any]:
        """Reload the model (going back up the fallback ladder); answers when loaded."""
        ls.start_loading()
        task = ls._load_task
        if task is not None:
            await task
        return ls.engine.status()

    @server.command("companion.restart")
    async def restart_command(ls: CompanionServer, *args: Any) -> dict[str, Any]:
        """The same as companion/restart, for clients that only run commands."""
        return await restart(ls, None)
