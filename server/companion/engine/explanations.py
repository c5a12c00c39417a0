"""The model's explanations of code (hovers and `companion.explain`): one owner for the
cache, the generations in flight and the deadline.

An explanation is cached by its key (the definition's text and question). Past the
caller's deadline `explain` returns None while the generation goes on in the background
and fills the cache, so the next hover on the unchanged definition shows it at once.
"""

from __future__ import annotations

import asyncio
import logging

from companion.engine.completer import Engine
from companion.engine.explain import Definition, Explainer, language_name
from companion.engine.languages import spec_for
from companion.engine.prompts import Prompt, chat_prompt

log = logging.getLogger(__name__)

EXPLAIN_MAX_TOKENS = 96
EXPLAIN_TIMEOUT_S = 30.0


def explain_prompt_text(definition: Definition | None, code: str, question: str,
                        language: str = "") -> str:
    """The user message: the question, the code (fenced in its language), and where it
    is used."""
    language = language or (definition.language if definition is not None else "python")
    user = f"{question}\n\n```{spec_for(language).tag}\n{code}\n```"
    if definition is not None and definition.use_line:
        user += f"\n\nIt is used here: `{definition.use_line}`"
    return user


class Explanations:
    """Explanations from the engine's model, cached, with at most one generation per key."""

    def __init__(self, engine: Engine, size: int = 256) -> None:
        self.engine = engine
        self.cache = Explainer(size)
        self._tasks: dict[str, asyncio.Task[str | None]] = {}

    def pending(self, key: str) -> bool:
        """An explanation for `key` is being written (the hover says so)."""
        return key in self._tasks

    async def explain(self, key: str, user: str, deadline_s: float,
                      language: str = "python") -> str | None:
        """The cached explanation for `key`, or one generated within `deadline_s` seconds
        (None past it: generation continues and fills the cache). `language` is the
        code's VS Code language id."""
        cached = self.cache.get(key)
        if cached is not None:
            self.engine.metrics.count("hoverCacheHits")
            return cached
        spec = self.engine.current.spec
        if spec is None:
            return None
        task = self._tasks.get(key)
        if task is None:
            prompt = chat_prompt(spec.family, user, language=language_name(language))
            task = asyncio.ensure_future(self._generate(key, prompt))
            self._tasks[key] = task
        try:
            return await asyncio.wait_for(asyncio.shield(task), timeout=max(0.0, deadline_s))
        except TimeoutError:
            return None

    async def _generate(self, key: str, prompt: Prompt) -> str | None:
        try:
            text = await self.engine.generate_text(
                f"explain:{key}", prompt, EXPLAIN_MAX_TOKENS, EXPLAIN_TIMEOUT_S)
            if text:
                self.cache.put(key, text)
            return text
        except Exception as error:
            log.warning("explanation failed: %s", error)
            return None
        finally:
            self._tasks.pop(key, None)
