"""The LSP layer: `CompanionServer` (server.py) and one module per LSP feature, each with
a `register(server)`; `create_server` wires them. Nothing in lsp/ imports this package's
__init__, so there is no cycle."""

from __future__ import annotations

from companion.lsp import actions, completion, hover, inline, server, status, suggestions


def create_server() -> server.CompanionServer:
    """A server with every feature registered."""
    companion_server = server.CompanionServer()
    for module in (server, suggestions, inline, completion, hover, actions, status):
        module.register(companion_server)
    return companion_server
