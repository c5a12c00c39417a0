"""What the remote backend tells the user when something fails: one line each, never the key.

The HTTP client's failures are first reduced (`openai_http.plain_failure`) to the few kinds
below or to the operating system's own error; `Wording` turns each into the sentence the
user reads in the status bar and the log.
"""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from companion.backends.base import BackendError
from companion.backends.openai_endpoint import Endpoint, Secret


class Stopped(Exception):
    """The request was cancelled, or ran past its deadline, while waiting on the server."""


class Malformed(Exception):
    """The server's answer is not HTTP, SSE or OpenAI-shaped JSON."""


class IdleTimeout(Exception):
    """Nothing came from the server for `seconds`."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"nothing for {seconds:.0f} s")
        self.seconds = seconds


class HttpError(Exception):
    """An error status, with the server's one-line explanation."""

    def __init__(self, status: int, reason: str, detail: str, retry_after: float | None) -> None:
        super().__init__(f"{status} {reason}")
        self.status, self.reason, self.detail = status, reason, detail
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.status >= 500 or self.status == 429


def error_detail(body: bytes) -> str:
    """A server's error body as one short line (OpenAI, vLLM and FastAPI shapes)."""
    try:
        document: Any = json.loads(body)
    except ValueError:
        text = body.decode("utf-8", errors="replace")
        text = "" if text.lstrip().startswith("<") else text  # an HTML error page
    else:
        error = document.get("error") if isinstance(document, dict) else None
        if isinstance(error, dict):
            text = str(error.get("message") or error)
        elif isinstance(error, str):
            text = error
        elif isinstance(document, dict) and ("detail" in document or "message" in document):
            text = str(document.get("detail") or document.get("message"))
        else:
            text = str(document)
    line = " ".join(text.split())
    return line if len(line) <= 200 else line[:199] + "…"


def is_final(error: Exception) -> bool:
    """Whether trying again cannot help (TLS, a malformed answer, a silent server)."""
    return isinstance(error, ssl.SSLError | Malformed | IdleTimeout)


@dataclass
class Wording:
    """The sentences about one endpoint; `key` is redacted from every one of them."""

    endpoint: Endpoint
    key_env: str
    key: Secret
    connect_timeout_s: float

    def redact(self, text: str) -> str:
        return text.replace(self.key.reveal(), "***") if self.key else text

    def error(self, message: str) -> BackendError:
        return BackendError(self.redact(" ".join(message.split())))

    def where(self, path: str = "") -> str:
        return self.endpoint.url(path)

    def describe(self, error: Exception) -> str:
        origin = self.endpoint.origin
        if isinstance(error, HttpError):
            detail = f": {error.detail}" if error.detail else ""
            return f"{origin} answered {error.status} {error.reason}{detail}"
        if isinstance(error, ConnectionRefusedError):
            return f"cannot reach {origin}: connection refused (is the server running?)"
        if isinstance(error, socket.gaierror):
            return f"cannot reach {origin}: the host name does not resolve"
        if isinstance(error, TimeoutError):
            return f"cannot reach {origin}: no answer within {self.connect_timeout_s:.0f} s"
        if isinstance(error, ConnectionError) and error.args and isinstance(error.args[0], str):
            return f"{origin}: {error.args[0]}"
        if isinstance(error, OSError):
            return f"cannot reach {origin}: {error.strerror or error}"
        return f"{origin}: {error}"

    def failure(self, error: Exception, attempts: int = 1, mid_answer: bool = False
                ) -> BackendError:
        origin = self.endpoint.origin
        if isinstance(error, ssl.SSLCertVerificationError):
            return self.error(f"the TLS certificate of {origin} is not trusted "
                              f"({error.verify_message}); if your team uses its own CA, "
                              "point SSL_CERT_FILE at its certificate")
        if isinstance(error, ssl.SSLError):
            return self.error(f"the TLS handshake with {origin} failed ({error.reason}): does "
                              "it really serve https on that port?")
        if isinstance(error, Malformed):
            return self.error(f"{origin} sent a malformed answer ({error}): is it an "
                              "OpenAI-compatible server?")
        if isinstance(error, IdleTimeout):
            return self.error(f"{origin} sent nothing for {error.seconds:.0f} s")
        text = self.describe(error)
        if mid_answer:
            text = f"the answer broke off: {text}"
        elif attempts > 1:
            text += f" ({attempts} tries)"
        return self.error(text)

    def http_failure(self, error: HttpError, path: str, model: str,
                     served_models: Callable[[], list[str]]) -> BackendError:
        """An error status as a sentence; a model the server no longer knows is answered
        with the list of those it serves (`served_models`, asked only then)."""
        where = self.where(path)
        detail = f": {error.detail}" if error.detail else ""
        if error.status in (401, 403):
            if not self.key_env:
                return self.error(f"{where} answered {error.status}: it needs an API key; put "
                                  "it in an environment variable and name that variable in "
                                  "companion.apiKeyEnv")
            return self.error(f"{where} refused the API key read from ${self.key_env} "
                              f"({error.status} {error.reason}): check that variable in the "
                              "environment the editor starts the server with")
        mentions_model = "model" in error.detail.lower()
        if path != "/models" and (error.status == 404 or (error.status == 400 and mentions_model
                                  and ("exist" in error.detail or "found" in error.detail))):
            if error.status == 404 and not mentions_model:
                return self.error(f"{where} answered 404 Not Found{detail}")
            try:
                served = served_models()
            except BackendError:
                served = []
            return self.not_served(model, served)
        if error.status == 404:
            return self.error(f"{where} answered 404: no OpenAI-compatible API there (the "
                              "endpoint usually ends in /v1)")
        if error.status == 429:
            return self.error(f"{where} is rate limiting (429){detail}: try again shortly")
        if error.status >= 500:
            return self.error(f"{where} answered {error.status} {error.reason}{detail}")
        return self.error(f"{where} rejected the request ({error.status} {error.reason})"
                          f"{detail}")

    def not_served(self, requested: str, served: list[str]) -> BackendError:
        listed = ", ".join(served[:8]) + (f" and {len(served) - 8} more" if len(served) > 8
                                          else "")
        return self.error(f"model {requested!r} is not served by {self.endpoint.origin}; it "
                          f"serves: {listed or 'nothing it would list'} (set companion.model "
                          "to one of them, or leave it empty for the first)")

    def no_model_list(self) -> BackendError:
        return self.error(f"{self.where('/models')} did not answer with a model list: is it an "
                          "OpenAI-compatible API (the endpoint usually ends in /v1)?")

    def serves_nothing(self) -> BackendError:
        return self.error(f"{self.endpoint.origin} serves no model")
