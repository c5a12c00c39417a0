"""Hugging Face transformers on the CPU (or CUDA): loads GGUF files (`gguf_file=`) and
model directories. A greedy loop feeds one token at a time so cancellation lands between
tokens, and keeps its KV cache cropped to the longest common prefix with the previous
prompt (the same prefix reuse llama.cpp does). torch and transformers load lazily.
"""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Iterator
from typing import Any

from companion.backends.base import (
    BackendError,
    BackendInfo,
    Capabilities,
    Chunk,
    GenerationRequest,
    ModelSpec,
    stop_reason,
)
from companion.backends.name_constraint import NameConstraint, NameTable, Vocabulary, apply
from companion.backends.tokens import common_prefix_length, default_threads


class TransformersBackend:
    """Any causal LM transformers can load; slower than llama.cpp on a CPU."""

    name = "transformers"
    capabilities = Capabilities(name_guide=True)

    def __init__(self) -> None:
        self._model: Any = None
        self._tokenizer: Any = None
        self._spec: ModelSpec | None = None
        self._cache: Any = None
        self._cache_ids: list[int] = []
        self._device = "cpu"
        self._vocab: Vocabulary | None = None  # each token's text, made on first use

    def load(self, model: ModelSpec) -> None:
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as error:
            raise BackendError(
                f"transformers backend needs torch and transformers ({error})"
            ) from error
        folder, gguf = model.path, None
        if model.path.endswith(".gguf"):
            folder, gguf = os.path.dirname(model.path), os.path.basename(model.path)
        torch.set_num_threads(model.threads or default_threads())
        self._device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            kwargs: dict[str, Any] = {"gguf_file": gguf} if gguf else {}
            self._tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
            loaded: Any = AutoModelForCausalLM.from_pretrained(
                folder, dtype=torch.float32, **kwargs
            )
        except Exception as error:
            raise BackendError(f"transformers could not load {model.path}: {error}") from error
        self._model = loaded.to(self._device).eval()
        self._spec = model
        self._cache, self._cache_ids = None, []
        self._vocab = None

    def unload(self) -> None:
        self._model = self._tokenizer = self._spec = self._cache = None
        self._cache_ids = []
        self._vocab = None

    def vocabulary(self) -> Vocabulary:
        """Each token's text, as the tokenizer decodes it alone (made once per model)."""
        if self._vocab is None:
            tokenizer = self._tokenizer
            self._vocab = Vocabulary(tokenizer.batch_decode(
                [[token] for token in range(len(tokenizer))], skip_special_tokens=True))
        return self._vocab

    def info(self) -> BackendInfo:
        spec = self._spec
        memory = 0.0
        if self._model is not None:
            memory = sum(p.numel() * p.element_size() for p in self._model.parameters()) / 2**20
        return BackendInfo(
            name=self.name,
            model=spec.name if spec else "",
            device=self._device,
            memory_mb=round(memory, 1),
            context_tokens=spec.context_tokens if spec else 0,
            fim=spec.fim if spec else False,
        )

    def _reuse_cache(self, ids: list[int]) -> int:
        """Crop the KV cache to the prefix shared with `ids`; how many tokens it keeps."""
        from transformers import DynamicCache

        keep = min(common_prefix_length(ids, self._cache_ids), len(ids) - 1)
        if self._cache is None or keep <= 0:
            self._cache, self._cache_ids = DynamicCache(), []
            return 0
        remove = len(self._cache_ids) - keep
        if remove > 0:
            # transformers 5 counts tokens to remove (negative); 4.x took the length to keep.
            parameters = inspect.signature(self._cache.crop).parameters
            self._cache.crop(-remove if "tokens_to_remove" in parameters else keep)
        self._cache_ids = self._cache_ids[:keep]
        return keep

    def stream(self, request: GenerationRequest) -> Iterator[Chunk]:
        if self._model is None or self._spec is None:
            raise BackendError("no model loaded")
        import torch

        ids: list[int] = self._tokenizer(request.prompt)["input_ids"]
        room = self._spec.context_tokens - request.max_tokens
        if len(ids) > room:
            ids = ids[len(ids) - room :]
        eos = self._tokenizer.eos_token_id
        started = time.perf_counter()
        kept = self._reuse_cache(ids)
        generated: list[int] = []
        emitted = ""
        finish = "length"
        table = NameTable.of(request.names)
        constraint = NameConstraint(table, self.vocabulary()) if table is not None else None
        text = ""
        with torch.inference_mode():
            feed = ids[kept:]
            while True:
                output = self._model(
                    input_ids=torch.tensor([feed], device=self._device),
                    past_key_values=self._cache,
                    use_cache=True,
                )
                self._cache_ids.extend(feed)
                if constraint is None:
                    token = int(output.logits[0, -1].argmax())
                else:  # names after a known receiver: only those that exist
                    logits = output.logits[0, -1].float().cpu().numpy()
                    token = int(apply(constraint.mask(text), logits).argmax())
                if token == eos:
                    finish = "stop"
                    break
                generated.append(token)
                text = self._tokenizer.decode(generated, skip_special_tokens=True)
                if not text.endswith("\ufffd"):  # hold back half a UTF-8 character
                    chunk = Chunk(text=text[len(emitted) :])
                    emitted = text
                    if len(generated) == 1:
                        chunk.prompt_tokens = len(ids)
                        chunk.cached_tokens = kept
                        chunk.prefill_ms = (time.perf_counter() - started) * 1000
                    yield chunk
                if len(generated) >= request.max_tokens:
                    break
                if request.should_stop():
                    finish = stop_reason(request)
                    break
                feed = [token]
        yield Chunk(text="", tokens=0, finish_reason=finish)
