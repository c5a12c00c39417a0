"""Backend "openai": a model on a remote OpenAI-compatible server (`vllm serve`, llama.cpp).

The scale-out path: every editor of a team points at one shared GPU server. Completions
stream from `{endpoint}/completions`, or `{endpoint}/chat/completions` when the request
carries chat messages (hover explanations), as server-sent events.

HTTP is httpx's, one connection per request; a cancel or the deadline drops it at once
(`openai_http.Wire`), which is how an OpenAI-compatible server learns to abort a
generation, and the stream stops between events. No proxy variable is honoured, and
nothing but the request itself is sent. The rest lives next door: which URLs and keys are
accepted (`openai_endpoint`), what goes over the wire (`openai_wire`), when to try again
(`openai_retry`) and what the user is told (`openai_errors`). The API key goes only into
the `Authorization` header, never into a log line, an error message, `info()` or a repr.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import httpx

from companion.backends.base import (
    BackendError,
    BackendInfo,
    Capabilities,
    Chunk,
    GenerationRequest,
    ModelSpec,
    stop_reason,
)
from companion.backends.openai_endpoint import (
    ENV_NAME,
    Endpoint,
    Secret,
    parse_endpoint,
    pick_model,
    read_api_key,
)
from companion.backends.openai_errors import (
    HttpError,
    IdleTimeout,
    Malformed,
    Stopped,
    Wording,
    error_detail,
    is_final,
)
from companion.backends.openai_http import (
    CONNECT_TIMEOUT_S,
    IDLE_TIMEOUT_S,
    Wire,
    open_client,
    plain_failure,
    read_limited,
    retry_after,
)
from companion.backends.openai_retry import pause, retryable
from companion.backends.openai_wire import (
    count,
    event_parts,
    parse_json,
    payload,
    refuses_usage_options,
    sse_data,
)
from companion.models.resolve import guess_family

__all__ = ["CONNECT_TIMEOUT_S", "IDLE_TIMEOUT_S", "OpenAIBackend", "parse_endpoint",
           "pick_model", "sse_data"]

log = logging.getLogger(__name__)


class OpenAIBackend:
    """A model served by an OpenAI-compatible server at `endpoint` (the URL ending in /v1)."""

    name = "openai"
    capabilities = Capabilities(local_prefix_cache=False, remote=True, in_host=False)

    def __init__(self, endpoint: str, api_key_env: str = "") -> None:
        self._url = endpoint
        self._key_env = api_key_env.strip()
        self._key = Secret()
        self._endpoint: Endpoint | None = None
        self._client: httpx.Client | None = None
        self._wording: Wording | None = None
        self._spec: ModelSpec | None = None
        self._model = ""
        self._usage_options = True  # dropped for a server that refuses stream_options

    def __repr__(self) -> str:
        where = self._endpoint.origin if self._endpoint else "not loaded"
        key_from = f"${self._key_env}" if ENV_NAME.fullmatch(self._key_env) else "nowhere"
        return f"OpenAIBackend({where}, model={self._model!r}, key from {key_from})"

    # -- contract ---------------------------------------------------------------------------

    def load(self, model: ModelSpec) -> None:
        """Check the endpoint and key, ask GET /models, and pick the served model."""
        self.unload()
        endpoint = parse_endpoint(self._url or model.path)
        self._key = read_api_key(self._key_env)
        self._endpoint = endpoint
        self._wording = Wording(endpoint, self._key_env, self._key, CONNECT_TIMEOUT_S)
        try:
            self._client = open_client(endpoint)
            served = self._served_models()
            chosen = pick_model(model.name, served)
            if chosen is None:
                raise self._wording.not_served(model.name, served)
        except BaseException:
            self.unload()
            raise
        self._model, self._spec = chosen, model
        log.info("openai: %s serves %s", endpoint.origin, chosen)

    def unload(self) -> None:
        if self._client is not None:
            self._client.close()
        self._key = Secret()
        self._endpoint = self._client = self._wording = self._spec = None
        self._model = ""

    def info(self) -> BackendInfo:
        spec = self._spec
        return BackendInfo(
            name=self.name,
            model=self._model,
            device=self._endpoint.origin if self._endpoint else "",
            memory_mb=0.0,
            context_tokens=spec.context_tokens if spec else 0,
            fim=guess_family(self._model)[1] if self._model else False,
        )

    def stream(self, request: GenerationRequest) -> Iterator[Chunk]:
        """Stream the answer; retries (bounded, within the deadline) only before the first
        token, and drops the connection as soon as the request is cancelled."""
        if self._endpoint is None or self._wording is None or not self._model:
            raise BackendError("no model loaded")
        wording = self._wording
        chat = bool(request.messages)
        path = "/chat/completions" if chat else "/completions"
        started = time.perf_counter()
        wire = Wire(self._endpoint, request)
        attempt = 0
        try:
            while True:
                attempt += 1
                if request.should_stop():
                    yield Chunk(text="", tokens=0, finish_reason=stop_reason(request))
                    return
                answered = False
                failure: Exception | None = None
                try:
                    body = payload(self._model, request, chat, self._usage_options)
                    with closing(self._exchange("POST", path, body, wire)) as response:
                        for chunk in self._chunks(response, request, wire, chat, started):
                            answered = True
                            yield chunk
                    return
                except Stopped:
                    pass
                except HttpError as error:
                    if (error.status in (400, 422) and self._usage_options
                            and refuses_usage_options(error.detail)):
                        self._usage_options = False  # an older or stricter server: ask without
                        attempt -= 1
                        continue
                    if not error.retryable:
                        raise self._http_failure(error, path) from None
                    failure = error
                except (OSError, Malformed, IdleTimeout) as error:
                    if not (wire.fired.is_set() or request.should_stop()) and is_final(error):
                        raise wording.failure(error) from None
                    failure = error
                except BackendError as error:  # the server's own words: one line, never the key
                    raise wording.error(str(error)) from None
                if failure is None or wire.fired.is_set() or request.should_stop():
                    yield Chunk(text="", tokens=0, finish_reason=stop_reason(request))
                    return
                if answered or not pause(attempt, failure, request.deadline, wire.fired,
                                         self._describe):
                    if wire.fired.is_set() or request.should_stop():
                        yield Chunk(text="", tokens=0, finish_reason=stop_reason(request))
                        return
                    raise wording.failure(failure, attempt, mid_answer=answered) from None
        finally:
            wire.close()

    # -- requests ---------------------------------------------------------------------------

    def _exchange(self, method: str, path: str, body: dict[str, Any] | None,
                  wire: Wire) -> httpx.Response:
        """Send, and read the answer's head; an error status raises HttpError. Every failure
        of the client comes out as what `plain_failure` makes of it."""
        assert self._client is not None and self._endpoint is not None
        headers = {"Accept": "text/event-stream" if body is not None else "application/json"}
        content = None
        if body is not None:
            content = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if self._key:
            headers["Authorization"] = f"Bearer {self._key.reveal()}"
        outgoing = self._client.build_request(method, self._endpoint.url(path), content=content,
                                              headers=headers, extensions={"trace": wire.trace})
        try:
            response = self._client.send(outgoing, stream=True)
        except httpx.HTTPError as error:
            raise plain_failure(error, wire) from None
        try:
            if response.status_code >= 400:
                detail = error_detail(read_limited(response, 1 << 16))
                raise HttpError(response.status_code, response.reason_phrase, detail,
                                retry_after(response))
        except httpx.HTTPError as error:
            response.close()
            raise plain_failure(error, wire) from None
        except BaseException:
            response.close()
            raise
        return response

    def _chunks(self, response: httpx.Response, request: GenerationRequest, wire: Wire,
                chat: bool, started: float) -> Iterator[Chunk]:
        """Chunks from the answer's events; the first carries prompt tokens and the time to
        the first token."""
        first = True
        counted = 0

        def chunk(text: str, finish: str | None, usage: dict[str, Any]) -> Chunk:
            nonlocal first, counted
            total = count(usage, "completion_tokens")
            tokens = (total - counted if total else int(bool(text))) if text else 0
            counted = max(counted, total)
            made = Chunk(text=text, tokens=max(0, tokens), finish_reason=finish)
            if first:
                made.prompt_tokens = count(usage, "prompt_tokens")
                made.cached_tokens = count(usage, "prompt_tokens_details", "cached_tokens")
                made.prefill_ms = (time.perf_counter() - started) * 1000
                first = False
            return made

        def stopped() -> bool:
            return wire.fired.is_set() or request.should_stop()

        try:
            if "text/event-stream" not in response.headers.get("content-type", ""):
                # A server that ignored "stream": true sends the whole answer at once.
                document = parse_json(read_limited(response))
                if stopped():
                    raise Stopped()
                text, finish, usage = event_parts(document, chat)
                yield chunk(text, "length" if finish == "length" else "stop", usage)
                return
            events = 0
            for data in sse_data(response.iter_bytes()):
                events += 1
                if stopped():
                    raise Stopped()
                if data.strip() == "[DONE]":
                    break
                text, finish, usage = event_parts(parse_json(data), chat)
                if finish is not None:
                    yield chunk(text, "length" if finish == "length" else "stop", usage)
                    return
                if text:
                    yield chunk(text, None, usage)
        except httpx.HTTPError as error:
            if stopped():
                raise Stopped() from None
            raise plain_failure(error, wire) from None
        if stopped():  # a dropped connection can read as the end of the body
            raise Stopped()
        if not events:
            raise ConnectionError("the server ended the stream without an answer")
        yield chunk("", "stop", {})

    def _served_models(self) -> list[str]:
        """The ids GET /models lists (retried like a generation, without a deadline)."""
        assert self._endpoint is not None and self._wording is not None
        wording = self._wording
        attempt = 0
        while True:
            attempt += 1
            wire = Wire(self._endpoint)
            try:
                with closing(self._exchange("GET", "/models", None, wire)) as response:
                    document = parse_json(read_limited(response))
                break
            except httpx.HTTPError as error:  # mid-body
                failure = plain_failure(error, wire)
            except (HttpError, OSError, Malformed, IdleTimeout) as error:
                failure = error
            if isinstance(failure, HttpError) and not failure.retryable:
                raise self._http_failure(failure, "/models") from None
            if not retryable(failure) or not pause(attempt, failure, None, wire.fired,
                                                   self._describe):
                if isinstance(failure, HttpError):
                    raise self._http_failure(failure, "/models") from None
                raise wording.failure(failure, attempt) from None
        data = document.get("data") if isinstance(document, dict) else None
        if not isinstance(data, list):
            raise wording.no_model_list()
        served = [str(item["id"]) for item in data if isinstance(item, dict) and "id" in item]
        if not served:
            raise wording.serves_nothing()
        return served

    # -- errors ------------------------------------------------------------------------------

    def _describe(self, error: Exception) -> str:
        assert self._wording is not None
        return self._wording.redact(self._wording.describe(error))

    def _http_failure(self, error: HttpError, path: str) -> BackendError:
        assert self._wording is not None
        return self._wording.http_failure(error, path, self._model, self._served_models)
