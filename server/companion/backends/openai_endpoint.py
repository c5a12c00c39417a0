"""The remote backend's endpoint policy: which URLs, keys and model names it accepts.

Plain http only to this machine (loopback), https anywhere else; the URL never carries
credentials. The API key is read from the environment variable named by
`companion.apiKeyEnv` and is held as a `Secret`, so it shows in no repr, log line or error.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from companion.backends.base import BackendError

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


class Secret:
    """The API key: shows as *** in any repr, str or dump of the backend's attributes."""

    __slots__ = ("_value",)

    def __init__(self, value: str = "") -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "***" if self._value else "''"

    __str__ = __repr__


@dataclass(frozen=True)
class Endpoint:
    """A checked endpoint URL, split up. `origin` is safe to show: no path, no secret."""

    scheme: str
    host: str
    port: int
    path: str  # "/v1", without the trailing slash

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def url(self, path: str) -> str:
        """The full URL of an API path such as "/completions"."""
        return f"{self.origin}{self.path}{path}"


def is_loopback_address(address: str) -> bool:
    """Whether an IP address (text) is this machine: 127.0.0.0/8, ::1, ::ffff:127.x."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def is_loopback_host(host: str) -> bool:
    return host.lower().rstrip(".") == "localhost" or is_loopback_address(host)


def parse_endpoint(url: str) -> Endpoint:
    """The endpoint, or BackendError: http only to loopback, https anywhere. The URL is
    never echoed whole (it might hold credentials)."""
    text = url.strip()
    if not text.isascii() or any(char.isspace() for char in text):
        raise BackendError("companion.endpoint must be a URL without spaces or non-ASCII "
                           "characters (use the punycode form of an international host)")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as error:
        raise BackendError(f"companion.endpoint is not a valid URL ({error})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BackendError("companion.endpoint must be an http(s) URL such as "
                           "http://127.0.0.1:8000/v1")
    if parts.username is not None or parts.password is not None:
        raise BackendError("companion.endpoint must not hold credentials: put the API key in an "
                           "environment variable and name that variable in companion.apiKeyEnv")
    if parts.query or parts.fragment:
        raise BackendError("companion.endpoint must not have a ?query or #fragment: give the "
                           "API's base URL, e.g. https://gpu.example.com/v1")
    host = parts.hostname
    if parts.scheme == "http" and not is_loopback_host(host):
        raise BackendError(
            f"plain http to {host} would send your code and API key unencrypted: use "
            f"https://{host}/…, or http only to this machine (127.0.0.1, ::1, localhost)"
        )
    default = 443 if parts.scheme == "https" else 80
    return Endpoint(parts.scheme, host, port or default, parts.path.rstrip("/"))


def read_api_key(variable: str) -> Secret:
    """The key held by environment variable `variable` (empty when none is configured)."""
    if not variable:
        return Secret()
    if not ENV_NAME.fullmatch(variable):  # not echoed: it may be the key itself, misplaced
        raise BackendError("companion.apiKeyEnv must be the NAME of an environment variable "
                           "(letters, digits and _) that holds the key, not the key itself")
    value = os.environ.get(variable)
    if value is None:
        raise BackendError(f"companion.apiKeyEnv names ${variable}, which is not set in the "
                           "environment the editor starts the server with")
    key = value.strip()
    if key.lower().startswith("bearer "):
        key = key[len("bearer ") :].strip()
    if not key:
        raise BackendError(f"${variable} (companion.apiKeyEnv) is empty")
    if not key.isascii() or not key.isprintable() or any(char.isspace() for char in key):
        raise BackendError(f"${variable} holds characters that cannot go in an HTTP header "
                           "(spaces, line breaks or non-ASCII)")
    return Secret(key)


def pick_model(requested: str, served: list[str]) -> str | None:
    """The served model meant by `requested`: exact, then case-insensitive, then by its
    last path part; the first served one when nothing ("" or "auto") is requested."""
    wanted = requested.strip()
    if not wanted or wanted.lower() == "auto":
        return served[0] if served else None
    if wanted in served:
        return wanted
    lowered = wanted.lower()
    for candidates in (
        [model for model in served if model.lower() == lowered],
        [model for model in served
         if model.rsplit("/", 1)[-1].lower() == lowered.rsplit("/", 1)[-1]],
    ):
        if len(candidates) == 1:
            return candidates[0]
    return None
