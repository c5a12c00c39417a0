"""`backend: auto`: MLX on Apple Silicon, vLLM on a CUDA GPU with room, llama.cpp
elsewhere, transformers without llama.cpp, templates with nothing — each with a reason."""

from __future__ import annotations

import pytest

from companion.backends import registry
from companion.models.hardware import Hardware
from tests.unit.test_tiers import apple, cpu, cuda


def installed(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    def availability(name: str) -> tuple[bool, str]:
        return (True, "installed") if name in names else (False, f"missing {name}")

    monkeypatch.setattr(registry, "availability", availability)


@pytest.mark.parametrize(
    ("hw", "names", "expected", "because"),
    [
        (apple(16, 32), ("mlx", "llamacpp"), "mlx", "Apple Silicon"),
        (apple(16, 32), ("llamacpp",), "llamacpp", "mlx skipped (missing mlx)"),
        (cuda(40), ("vllm", "llamacpp"), "vllm", "MB free, vLLM installed"),
        (cuda(2), ("vllm", "llamacpp"), "llamacpp", "needs 4096"),
        (cuda(40), ("llamacpp",), "llamacpp", "vllm skipped (missing vllm)"),
        (cpu(8), ("mlx", "vllm", "llamacpp", "transformers"), "llamacpp", "llamacpp for CPU"),
        (cpu(8), ("transformers",), "transformers", "llamacpp skipped"),
        (cpu(8), (), "templates", "no inference engine installed"),
    ],
)
def test_automatic_choice(monkeypatch: pytest.MonkeyPatch, hw: Hardware,
                          names: tuple[str, ...], expected: str, because: str) -> None:
    installed(monkeypatch, *names)
    name, reason = registry.automatic_backend(hw)
    assert name == expected
    assert because in reason


def test_every_configurable_backend_is_known() -> None:
    from companion.config import BACKENDS

    assert set(BACKENDS) - {"auto"} == set(registry.BACKEND_NAMES)
    assert registry.weights_format("llamacpp") == "gguf"
    assert registry.weights_format("mlx") == "mlx"
    assert registry.weights_format("vllm") == "hf"


def test_the_engines_with_a_safe_mode_are_the_ones_the_registry_names() -> None:
    from companion.backends.registry import FACTORIES, SAFE_MODE_ENGINES

    with_safe_mode = {name for name, make in FACTORIES.items() if make().capabilities.safe_mode}
    assert with_safe_mode == SAFE_MODE_ENGINES
