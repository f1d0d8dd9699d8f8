"""The grant core's error tree.

Every failure the grant core reports is an :class:`OAuth2Error`, so a caller can catch one class; the
subclasses say *where* it failed, because a caller reacts differently to each::

    OAuth2Error
    ├── ConfigError          the configuration (or a per-call option) is invalid; fix it, do not retry
    ├── TokenRequestError    the token endpoint answered with a non-2xx status (RFC 6749 §5.2 error fields)
    ├── TokenResponseError   a 2xx answer that is not a usable token (unparseable, no access_token)
    └── TransportError       no answer at all: connection refused, timeout, TLS failure

Third-party exceptions (aiohttp, pydantic, PyJWT) are translated at exactly one boundary each and raised
``from`` the original. No message, ``repr`` or attribute of these errors carries a client secret, an access
token or an ``Authorization`` header: payloads are kept for diagnosis, but they are the *endpoint's* words.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ConfigError",
    "FieldError",
    "OAuth2Error",
    "TokenRequestError",
    "TokenResponseError",
    "TransportError",
]

#: Raw (non-JSON) error bodies are kept for diagnosis, but never unbounded.
MAX_ERROR_TEXT = 2048


class OAuth2Error(Exception):
    """Base class of everything the grant core raises on purpose."""


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid configuration field: its dotted path (``auth.token_host``) and why it is invalid."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(OAuth2Error, ValueError):
    """An invalid configuration. ``errors`` lists *every* bad field, not only the first."""

    def __init__(self, errors: Sequence[FieldError] | str, *, prefix: str = "invalid configuration") -> None:
        if isinstance(errors, str):
            errors = [FieldError("", errors)]
        self.errors: tuple[FieldError, ...] = tuple(errors)
        details = "; ".join(str(e) for e in self.errors)
        super().__init__(f"{prefix}: {details}" if details else prefix)

    @property
    def paths(self) -> tuple[str, ...]:
        """The dotted paths of the bad fields, in the order they were reported."""
        return tuple(e.path for e in self.errors)


class _EndpointError(OAuth2Error):
    """An answer from the token (or revocation) endpoint that we cannot use."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None,
        payload: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.payload = _bounded(payload)
        self.headers: Mapping[str, str] = dict(headers or {})
        fields = payload if isinstance(payload, Mapping) else {}
        self.error: str | None = _str_or_none(fields.get("error"))
        self.error_description: str | None = _str_or_none(fields.get("error_description"))
        self.error_uri: str | None = _str_or_none(fields.get("error_uri"))
        if self.error:
            message = f"{message} (error={self.error!r}"
            message += f", error_description={self.error_description!r})" if self.error_description else ")"
        super().__init__(message)

    @property
    def retry_after(self) -> str | None:
        """The endpoint's ``Retry-After`` header, verbatim, when it sent one (429/503 answers)."""
        for name, value in self.headers.items():
            if name.lower() == "retry-after":
                return value
        return None


class TokenRequestError(_EndpointError):
    """The endpoint answered with a non-2xx status. ``status`` is the real HTTP status, never masked."""


class TokenResponseError(_EndpointError):
    """A 2xx answer that is not a usable token: not JSON/form, unparseable, or without ``access_token``."""


class TransportError(OAuth2Error):
    """The request got no HTTP answer: connection refused or reset, DNS failure, timeout, TLS failure."""

    def __init__(self, message: str, *, url: str | None = None, timeout: bool = False) -> None:
        self.url = url
        self.timeout = timeout
        super().__init__(f"{message} ({url})" if url else message)


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _bounded(payload: Any) -> Any:
    if isinstance(payload, str) and len(payload) > MAX_ERROR_TEXT:
        return payload[:MAX_ERROR_TEXT] + "…"
    return payload
