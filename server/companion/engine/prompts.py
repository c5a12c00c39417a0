"""Prompts per model family.

FIM families get their fill-in-the-middle template (prefix, suffix, then the hole).
Models without FIM tokens (SmolLM2, the embedded default) get plain continuation of the
prefix; the code after the cursor can be fed to them ahead of the prefix as a commented
excerpt (`suffix_context_chars`, off by default: see SUFFIX_CONTEXT_CHARS), and it always
informs post-processing (no suggestion repeats what follows the cursor). Excerpts are
commented in the document's language (`engine.languages`), and explanations name the
language in their system prompt. The chat
template does not help here: with SmolLM2-135M-Instruct a "```python" assistant turn
scored 0 of 40 HumanEval first lines against 7 of 40 for plain continuation.
"""

from __future__ import annotations

from dataclasses import dataclass

from companion.engine.context import CursorContext
from companion.engine.languages import spec_for


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

INSTRUCT_FENCE_FAMILIES = frozenset({"smollm2", "generic"})



@dataclass(frozen=True)
class Prompt:
    """The text sent to the model and the strings that end its answer."""

    text: str
    stop: tuple[str, ...]
    heal: str = ""  # left out of the prompt; the model's answer should start with it
    # The same request as chat messages ((role, content), ...), for chat APIs (remote
    # /v1/chat/completions); empty for completion prompts.
    messages: tuple[tuple[str, str], ...] = ()

    def healed(self, output: str) -> str:
        """The model's output with the left-out text taken back off its start."""
        return output[len(self.heal) :] if output.startswith(self.heal) else output


def comment_prefix(language: str, path: str = "") -> str:
    """What starts a line comment in `language` ("# ", "// ", "-- ")."""
    spec = spec_for(language, path)
    if spec.line_comment:
        return spec.line_comment + " "
    return "// " if not spec.block_comment else spec.block_comment[0] + " "


# How much of the code after the cursor a model without FIM sees, as a commented excerpt
# ahead of the prefix. Off: on 40 HumanEval holes it moved SmolLM2-135M from 6 to 7 exact
# first lines (noise), while it ties the start of the prompt to the cursor position, so
# every cursor jump costs a full prefill instead of reusing the file's shared beginning.
SUFFIX_CONTEXT_CHARS = 0


def build_prompt(
    context: CursorContext,
    family: str,
    fim: bool,
    suffix_context_chars: int = SUFFIX_CONTEXT_CHARS,
    repo_header: str = "",
) -> Prompt:
    """The prompt for a completion at `context`.

    Token healing on blank lines: BPE tokenizers split indented code as "   " + " return",
    so a prompt ending in the full indentation ends on a token the model never saw
    before code, and it answers with a newline. The prompt keeps all but the last space
    and the answer is expected to start with that space (`heal`). Measured on 60
    HumanEval single-line holes with SmolLM2-135M: 17 first lines exactly right with
    healing, 6 with the full indentation, 0 with the prompt cut before it.

    `repo_header` (engine/repo_context.py: definitions and similar code from the
    repository, commented) goes first: it changes less often than the prefix.
    """
    prefix = context.prefix
    heal = ""
    if context.line_prefix.endswith(" ") and context.line_prefix.strip() == "":
        prefix, heal = prefix[:-1], " "
    template = FIM_TEMPLATES.get(family) if fim else None
    if template is not None:
        return Prompt(template.render(repo_header + context.prefix, context.suffix),
                      template.stop)

    header = ""
    below = context.suffix[len(context.line_suffix) :].strip("\n")
    if suffix_context_chars and below.strip():
        excerpt = below[:suffix_context_chars]
        excerpt = excerpt[: excerpt.rfind("\n")] if "\n" in excerpt else excerpt
        comment = comment_prefix(context.language, context.path)
        name = context.path.rsplit("/", 1)[-1] or "file"
        header = (
            f"{comment}Code that follows in {name} (for reference):\n"
            + "\n".join(comment + line for line in excerpt.split("\n"))
            + "\n\n"
        )
    # Instruct models close their code with a fence when they think the answer is done.
    stop = ("```",) if family in INSTRUCT_FENCE_FAMILIES else ()
    return Prompt(repo_header + header + prefix, stop, heal)


CHATML_FAMILIES = frozenset({"smollm2", "qwen2.5-coder", "generic", "gpt-oss"})
# SmolLM2 was tuned with this system prompt; small models answer best with their own.
DEFAULT_SYSTEM = {"smollm2": "You are a helpful AI assistant named SmolLM, trained by Hugging Face"}


def chat_prompt(family: str, user: str, system: str = "", language: str = "Python"
                ) -> Prompt:
    """A one-turn chat prompt in the family's template (ChatML for the instruct models we
    know); base models without a chat template get a plain question/answer layout.
    `language` is the name of the code's language ("Go"), for the system prompt."""
    system = system or DEFAULT_SYSTEM.get(family, f"You are a concise {language} expert.")
    messages = (("system", system), ("user", user))
    if family in CHATML_FAMILIES:
        text = (
            f"<|im_start|>system\n{system}<|im_end|>\n"
            f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
        )
        return Prompt(text, ("<|im_end|>", "<|endoftext|>", "<|im_start|>"), messages=messages)
    return Prompt(f"{user}\n\nAnswer:", ("\n\n\n",), messages=messages)
