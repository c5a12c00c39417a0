"""Prompts: FIM templates per family, plain continuation for models without FIM."""

from __future__ import annotations

from companion.engine.context import build_context
from companion.engine.prompts import FIM_TEMPLATES, build_prompt


def test_fim_families_get_their_tokens() -> None:
    ctx = build_context("def f(x):\n    return \n\nprint(f(1))\n", 1, 11)
    prompt = build_prompt(ctx, "qwen2.5-coder", fim=True)
    assert prompt.text.startswith("<|fim_prefix|>def f(x):")
    assert "<|fim_suffix|>" in prompt.text and prompt.text.endswith("<|fim_middle|>")
    assert "<|endoftext|>" in prompt.stop
    for family in ("starcoder2", "deepseek-coder", "codellama"):
        text = build_prompt(ctx, family, fim=True).text
        assert text.startswith(FIM_TEMPLATES[family].prefix)


def test_plain_models_end_with_the_prefix() -> None:
    ctx = build_context("import os\n\nvalue = \n\ndef later():\n    pass\n", 2, 8)
    assert "def later()" not in build_prompt(ctx, "smollm2", fim=False).text  # off by default
    prompt = build_prompt(ctx, "smollm2", fim=False, suffix_context_chars=600)
    assert prompt.text.endswith("import os\n\nvalue = ")
    assert "def later()" in prompt.text  # what follows is in view, before the prefix
    assert prompt.text.index("def later()") < prompt.text.index("import os")


def test_blank_line_prompts_are_token_healed() -> None:
    ctx = build_context("def f():\n        ", 1, 8)
    prompt = build_prompt(ctx, "smollm2", fim=False)
    assert prompt.text.endswith("def f():\n       ")  # one space short
    assert prompt.heal == " "
    assert prompt.healed(" return 1") == "return 1"
    assert prompt.healed("\n        return 1") == "\n        return 1"
