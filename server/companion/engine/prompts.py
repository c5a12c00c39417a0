"""Prompts per model family.

FIM families get their fill-in-the-middle template (prefix, suffix, then the hole).
Models without FIM tokens (SmolLM2, the embedded default) get plain continuation of the
prefix; the code after the cursor is fed to them ahead of the prefix as a labelled
excerpt, so names defined below the cursor are in view while the text before the cursor
still comes last (which keeps prefix-cache reuse working between keystrokes).
"""

from __future__ import annotations

from dataclasses import dataclass

from companion.engine.context import CursorContext


@dataclass(frozen=True)
class FimTemplate:
    """Where the prefix and the suffix go for one family of FIM models."""

    prefix: str
    suffix: str
    middle: str
    stop: tuple[str, ...]

    def render(self, prefix: str, suffix: str) -> str:
        return f"{self.prefix}{prefix}{self.suffix}{suffix}{self.middle}"


FIM_TEMPLATES: dict[str, FimTemplate] = {
    "qwen2.5-coder": FimTemplate(
        "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>",
        ("<|endoftext|>", "<|fim_pad|>", "<|file_sep|>", "<|repo_name|>"),
    ),
    "starcoder2": FimTemplate(
        "<fim_prefix>", "<fim_suffix>", "<fim_middle>", ("<|endoftext|>", "<file_sep>")
    ),
    "deepseek-coder": FimTemplate(
        "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>", ("<｜end▁of▁sentence｜>", "<|EOT|>")
    ),
    "codellama": FimTemplate("<PRE> ", " <SUF>", " <MID>", ("<EOT>",)),
}

COMMENT_PREFIX = {"python": "# ", "ruby": "# ", "shell": "# ", "r": "# ", "yaml": "# "}


@dataclass(frozen=True)
class Prompt:
    """The text sent to the model, the stop strings, and how many characters of
    indentation were moved out of the prompt (see `build_prompt`)."""

    text: str
    stop: tuple[str, ...]
    stripped_indent: int


def _comment(language: str) -> str:
    return COMMENT_PREFIX.get(language, "// ")


def build_prompt(
    context: CursorContext, family: str, fim: bool, suffix_context_chars: int = 600
) -> Prompt:
    """The prompt for a completion at `context`.

    When the cursor sits on a whitespace-only line the indentation is left out of the
    prompt: tokenizers split trailing spaces badly and models then write worse code. The
    model writes the indentation itself and post-processing removes `stripped_indent`
    characters of it from the first line.
    """
    prefix = context.prefix
    stripped = 0
    if context.line_prefix and context.line_prefix.strip() == "":
        stripped = len(context.line_prefix)
        prefix = prefix[: len(prefix) - stripped]
    template = FIM_TEMPLATES.get(family) if fim else None
    if template is not None:
        return Prompt(template.render(prefix, context.suffix), template.stop, stripped)

    header = ""
    below = context.suffix[len(context.line_suffix) :].strip("\n")
    if suffix_context_chars and below.strip():
        excerpt = below[:suffix_context_chars]
        excerpt = excerpt[: excerpt.rfind("\n")] if "\n" in excerpt else excerpt
        comment = _comment(context.language)
        name = context.path.rsplit("/", 1)[-1] or "file"
        header = (
            f"{comment}Code that follows in {name} (for reference):\n"
            + "\n".join(comment + line for line in excerpt.split("\n"))
            + "\n\n"
        )
    return Prompt(header + prefix, (), stripped)
