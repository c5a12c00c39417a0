"""Settings: one typed, fully defaulted tree, camelCase on the wire (section `companion`).

The server reads them from `initializationOptions` and again from `workspace/configuration`
after `workspace/didChangeConfiguration`. Unknown keys and invalid values never fail the
server: each produces one warning line and the default is kept.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

BACKENDS = ("auto", "llamacpp", "transformers", "mlx", "vllm", "openai", "templates")

# Keys the VS Code extension keeps for itself; the server accepts them silently.
CLIENT_ONLY_KEYS = frozenset(
    {"enable", "enabledLanguages", "inline", "server", "trace", "statusBar"}
)


@dataclass(frozen=True)
class Settings:
    """Everything the server can be told. Field names are the snake_case of the wire keys."""

    backend: str = "auto"
    model: str = ""  # "" = the embedded default model
    max_tokens: int = 64
    memory_budget_mb: int = 0  # 0 = no cap beyond what the machine has free
    context_tokens: int = 1536  # prompt budget; the tier may lower it
    inline_deadline_ms: int = 2500  # generation stops at a line end after this
    hover_enabled: bool = True
    hover_deadline_ms: int = 1500
    endpoint: str = ""  # OpenAI-compatible server for backend "openai" (https, or http on loopback)
    api_key_env: str = ""  # the NAME of the environment variable holding its API key
    threads: int = 0  # 0 = one per physical core
    history_enabled: bool = True  # local SQLite record of suggestions (never sent anywhere)
    history_keep_text: bool = False  # also keep the suggested text, for the user's review
    # definitions (jedi) and similar code from other open files ahead of the prefix
    repo_context: bool = False
    # compute the suggestion that follows the shown one, as if accepted (cache-warm accept)
    speculate: bool = True
    # explicit invocations and requests after a pause: a few candidates, the one that fits
    # the next line of the code after the cursor best (engine/rerank.py)
    rerank: bool = False
    # Python, llama.cpp and transformers: after `self.` or an imported module's `.`, the
    # model may only spell names that exist there (backends/name_constraint.py)
    name_guide: bool = True
    # Python, models without FIM: a blank line whose code below reads a name that nothing
    # binds starts as `name =` (engine/suffix_names.py)
    needed_name: bool = True


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    special = {"mb": "MB"}  # memoryBudgetMB, as the issue and the extension spell it
    return head + "".join(special.get(part, part.title()) for part in rest)


WIRE_NAMES: dict[str, str] = {_camel(f.name): f.name for f in dataclasses.fields(Settings)}

_LIMITS: dict[str, tuple[int, int]] = {
    "max_tokens": (1, 1024),
    "memory_budget_mb": (0, 10_000_000),
    "context_tokens": (128, 131072),
    "inline_deadline_ms": (50, 120_000),
    "hover_deadline_ms": (0, 120_000),
    "threads": (0, 512),
}


def _check(name: str, value: Any, default: Any) -> Any:
    """The value converted to the field's type, or raise ValueError with a short reason."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        raise ValueError("expected true or false")
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            raise ValueError("expected a whole number")
        low, high = _LIMITS[name]
        if not low <= int(value) <= high:
            raise ValueError(f"expected {low}..{high}")
        return int(value)
    if not isinstance(value, str):
        raise ValueError("expected a string")
    if name == "backend" and value not in BACKENDS:
        raise ValueError(f"expected one of {', '.join(BACKENDS)}")
    return value.strip()


def parse_settings(raw: Any, base: Settings | None = None) -> tuple[Settings, list[str]]:
    """Settings from a wire object, plus one warning per key that was ignored.

    Accepts either the `companion` object itself or an object holding it under `companion`.
    """
    base = base or Settings()
    warnings: list[str] = []
    if raw is None:
        return base, warnings
    if not isinstance(raw, dict):
        return base, [f"settings must be an object, got {type(raw).__name__}; using defaults"]
    if isinstance(raw.get("companion"), dict):
        raw = raw["companion"]
    values: dict[str, Any] = {}
    defaults = Settings()
    for key, value in raw.items():
        name = WIRE_NAMES.get(key)
        if name is None:
            if key not in CLIENT_ONLY_KEYS:
                warnings.append(f"unknown setting companion.{key} ignored")
            continue
        if value is None:
            continue
        try:
            values[name] = _check(name, value, getattr(defaults, name))
        except ValueError as reason:
            warnings.append(
                f"invalid setting companion.{key}={value!r} ({reason}); "
                f"using {getattr(base, name)!r}"
            )
    return dataclasses.replace(base, **values), warnings


def settings_to_wire(settings: Settings) -> dict[str, Any]:
    """The camelCase object a client would send (used by status and the demo)."""
    return {wire: getattr(settings, name) for wire, name in WIRE_NAMES.items()}
