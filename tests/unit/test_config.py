"""Settings parsing: camelCase on the wire, one warning per bad key, defaults kept."""

from __future__ import annotations

from companion.config import WIRE_NAMES, Settings, parse_settings, settings_to_wire


def test_defaults() -> None:
    settings, warnings = parse_settings(None)
    assert settings == Settings()
    assert warnings == []


def test_wire_names_are_camel_case() -> None:
    assert {"backend", "model", "maxTokens", "memoryBudgetMB", "hoverDeadlineMs"} <= set(WIRE_NAMES)


def test_values_and_nesting_under_companion() -> None:
    settings, warnings = parse_settings(
        {"companion": {"backend": "templates", "maxTokens": 32, "memoryBudgetMB": 512}}
    )
    assert (settings.backend, settings.max_tokens, settings.memory_budget_mb) == (
        "templates", 32, 512)
    assert warnings == []


def test_invalid_values_warn_and_keep_defaults() -> None:
    settings, warnings = parse_settings(
        {"backend": "gpt5", "maxTokens": -3, "hoverEnabled": "yes", "bogus": 1, "enable": True}
    )
    assert settings == Settings()
    assert len(warnings) == 4  # `enable` belongs to the client: no warning
    assert any("bogus" in warning for warning in warnings)
    assert any("companion.backend" in warning for warning in warnings)


def test_not_an_object() -> None:
    settings, warnings = parse_settings(["backend"])
    assert settings == Settings() and len(warnings) == 1


def test_round_trip() -> None:
    settings = Settings(backend="llamacpp", max_tokens=10)
    assert parse_settings(settings_to_wire(settings)) == (settings, [])
