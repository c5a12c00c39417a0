"""Scaffolding: FastAPI, Flask, Django, CLI, package, CRUD and pytest scaffolds as templates.

Works without a model; `render` returns plain edits that `lsp/actions.py` turns into a
`WorkspaceEdit`.
"""

from companion.scaffolds.render import ScaffoldEdit, ScaffoldOffer, apply_edit, offers, render

__all__ = ["ScaffoldEdit", "ScaffoldOffer", "apply_edit", "offers", "render"]
