"""Authorization-server discovery: where the metadata lives, what it must say, and caching it.

RFC 8414 (OAuth 2.0 Authorization Server Metadata) and OpenID Connect Discovery 1.0 let a client configure only
an ``issuer`` and learn its ``token_endpoint`` (and revocation endpoint, JWKS, supported client-auth methods).
This module is pure: it builds the candidate URLs, validates a fetched document and caches the result; the HTTP
fetch itself belongs to ``transport.py`` (the only module that talks HTTP).

Validation is strict where it is a defence, not a formality:

* the document's ``issuer`` must be *identical* to the configured one (RFC 8414 §3.3): otherwise an attacker
  who controls one server's metadata could point a client's credentials at another server (the mix-up attack);
* endpoints must be absolute ``https`` URLs, because client credentials are sent to them. Plain ``http`` is
  accepted only for loopback hosts, for local development against a dev IdP.

A bad document raises :class:`~tokenrelay.grant.errors.TokenResponseError` with ``status=None`` (a 2xx answer that
is not usable) carrying the document as its payload; a bad configured issuer raises ``ConfigError``.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from tokenrelay.grant.errors import ConfigError, TokenResponseError
from tokenrelay.grant.urls import is_loopback_host

__all__ = ["MetadataCache", "ServerMetadata", "metadata_urls", "parse_metadata"]

RFC8414_WELL_KNOWN = "/.well-known/oauth-authorization-server"
OIDC_WELL_KNOWN = "/.well-known/openid-configuration"

#: RFC 8414 §2: when ``token_endpoint_auth_methods_supported`` is omitted, the default is client_secret_basic.
DEFAULT_AUTH_METHODS = ("client_secret_basic",)

_USERINFO = re.compile(r"//[^/?#@]*@")
_MAX_SHOWN = 200  # values quoted in error messages are cut here: a hostile document must not flood the logs


@dataclass(frozen=True, slots=True)
class ServerMetadata:
    """The parts of an authorization server's metadata that the client-credentials grant uses."""

    issuer: str
    token_endpoint: str
    revocation_endpoint: str | None
    jwks_uri: str | None
    token_endpoint_auth_methods_supported: tuple[str, ...]
    #: RFC 8705 §5: endpoints to use instead when the client authenticates with a TLS certificate (a server may
    #: ask for certificates on a separate host or port only). Only the aliases the grant core calls are kept.
    mtls_token_endpoint: str | None = None
    mtls_revocation_endpoint: str | None = None


def metadata_urls(issuer: str) -> list[str]:
    """The metadata URLs to try for ``issuer``, in order: the RFC 8414 form, then the OIDC Discovery form.

    RFC 8414 §3.1 inserts the well-known suffix between the host and the path (``https://as/tenant1`` ->
    ``https://as/.well-known/oauth-authorization-server/tenant1``); OIDC Discovery §4 appends it to the issuer.
    Both drop a terminating ``/`` of the path first.
    """
    problem = _issuer_problem(issuer)
    if problem:
        raise ConfigError(f"issuer {_shown(issuer)} is not a valid issuer identifier: {problem}")
    parts = urlsplit(issuer)
    origin = f"{parts.scheme}://{parts.netloc}"
    path = parts.path.rstrip("/")
    return [f"{origin}{RFC8414_WELL_KNOWN}{path}", f"{origin}{path}{OIDC_WELL_KNOWN}"]


def parse_metadata(document: object, *, expected_issuer: str | None) -> ServerMetadata:
    """Validate a metadata document (already JSON-decoded) and keep the fields the grant core needs.

    ``expected_issuer`` is the configured issuer; when given, the document's ``issuer`` must equal it exactly.
    Pass ``None`` only when the configuration names a discovery URL and no issuer.
    """
    if not isinstance(document, Mapping):
        raise _invalid(document, "authorization server metadata is not a JSON object")
    issuer = _required_url(document, "issuer")
    if expected_issuer is not None and issuer != expected_issuer:
        hint = "; they differ only in a trailing '/'" if issuer.rstrip("/") == expected_issuer.rstrip("/") else ""
        raise _invalid(
            document,
            f"metadata 'issuer' {_shown(issuer)} does not match the configured issuer "
            f"{_shown(expected_issuer)} (RFC 8414 §3.3: they must be identical){hint}",
        )
    problem = _issuer_problem(issuer)
    if problem:
        raise _invalid(document, f"metadata 'issuer' {_shown(issuer)} is invalid: {problem}")
    return ServerMetadata(
        issuer=issuer,
        token_endpoint=_required_url(document, "token_endpoint"),
        revocation_endpoint=_optional_url(document, "revocation_endpoint"),
        jwks_uri=_optional_url(document, "jwks_uri"),
        token_endpoint_auth_methods_supported=_auth_methods(document),
        **_mtls_aliases(document),
    )


class MetadataCache:
    """Metadata per key (an issuer or discovery URL), kept ``ttl`` seconds, fetched at most once at a time.

    Single-flight: concurrent callers of a cold key share one fetch, run as a task that a cancelled caller
    cannot cancel for the others. A failed fetch is not cached: every caller waiting on it gets its error,
    and the next call starts a new fetch. ``clock`` is monotonic so a wall-clock jump neither expires nor
    pins entries.
    """

    def __init__(self, *, ttl: float = 3600.0, clock: Callable[[], float] = time.monotonic) -> None:
        if not math.isfinite(ttl) or ttl < 0:
            raise ConfigError(f"metadata cache ttl must be a finite number of seconds >= 0, got {ttl!r}")
        self._ttl = ttl
        self._clock = clock
        self._entries: dict[str, tuple[float, ServerMetadata]] = {}
        self._inflight: dict[str, asyncio.Task[ServerMetadata]] = {}

    async def get(self, key: str, fetch: Callable[[], Awaitable[ServerMetadata]]) -> ServerMetadata:
        """The cached metadata for ``key`` while fresh; otherwise the result of ``fetch()`` (shared, then cached)."""
        entry = self._entries.get(key)
        if entry is not None and self._clock() < entry[0]:
            return entry[1]
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(self._fill(key, fetch), name=f"tokenrelay-discovery:{key}")
            self._inflight[key] = task
        # shield: a caller that gives up (timeout, client gone) must not cancel the fetch the others wait on; it
        # also marks a failure as retrieved when every caller left, so asyncio does not log it as lost.
        return await asyncio.shield(task)

    def invalidate(self, key: str) -> None:
        """Forget ``key`` (e.g. after the token endpoint moved); the next :meth:`get` fetches again.

        A fetch already in flight is left alone: it started after whatever prompted the invalidation.
        """
        self._entries.pop(key, None)

    async def _fill(self, key: str, fetch: Callable[[], Awaitable[ServerMetadata]]) -> ServerMetadata:
        try:
            metadata = await fetch()
            self._entries[key] = (self._clock() + self._ttl, metadata)
            return metadata
        finally:
            # Leave the in-flight slot before the task completes, so no caller can join a finished (failed) fetch.
            if self._inflight.get(key) is asyncio.current_task():
                del self._inflight[key]


def _required_url(document: Mapping[str, object], name: str) -> str:
    value = document.get(name)
    if value is None:
        raise _invalid(document, f"metadata has no '{name}'")
    return _checked_url(document, name, value)


def _optional_url(document: Mapping[str, object], name: str) -> str | None:
    value = document.get(name)
    return None if value is None else _checked_url(document, name, value)


def _checked_url(document: Mapping[str, object], name: str, value: object) -> str:
    if not isinstance(value, str):
        raise _invalid(document, f"metadata '{name}' is not a string")
    problem = _url_problem(value)
    if problem:
        raise _invalid(document, f"metadata '{name}' {_shown(value)} is not acceptable: {problem}")
    return value


def _mtls_aliases(document: Mapping[str, object]) -> dict[str, str | None]:
    """``mtls_endpoint_aliases`` (RFC 8705 §5): a JSON object of endpoint URLs, each checked like the others."""
    aliases = document.get("mtls_endpoint_aliases")
    if aliases is None:
        return {}
    if not isinstance(aliases, Mapping):
        raise _invalid(document, "metadata 'mtls_endpoint_aliases' is not a JSON object")
    found: dict[str, str | None] = {}
    for name in ("token_endpoint", "revocation_endpoint"):
        value = aliases.get(name)
        checked = None if value is None else _checked_url(document, f"mtls_endpoint_aliases.{name}", value)
        found[f"mtls_{name}"] = checked
    return found


def _auth_methods(document: Mapping[str, object]) -> tuple[str, ...]:
    value = document.get("token_endpoint_auth_methods_supported")
    if value is None:
        return DEFAULT_AUTH_METHODS
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _invalid(document, "metadata 'token_endpoint_auth_methods_supported' is not a list of strings")
    return tuple(value)


def _url_problem(url: str) -> str | None:
    """Why ``url`` cannot receive client credentials, or ``None`` when it can."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return "not a valid URL"
    if not parts.scheme or not parts.hostname:
        return "not an absolute URL"
    if parts.username is not None or parts.password is not None:
        return "it must not contain credentials"
    if "#" in url:
        return "it must not contain a fragment (RFC 6749 §3.2)"
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(parts.hostname)):
        return None
    if parts.scheme == "http":
        return "https is required (plain http only for loopback hosts)"
    return f"unsupported scheme {parts.scheme!r} (https required)"


def _issuer_problem(issuer: str) -> str | None:
    """RFC 8414 §2: an issuer is an https URL with no query or fragment."""
    return "it must not contain a query" if "?" in issuer else _url_problem(issuer)


def _shown(value: str) -> str:
    """A URL quoted in a message: userinfo masked (it may be a credential), ``repr`` (control characters
    visible), bounded in length."""
    value = _USERINFO.sub("//***@", value)
    if len(value) > _MAX_SHOWN:
        value = value[:_MAX_SHOWN] + "…"
    return repr(value)


def _invalid(document: object, message: str) -> TokenResponseError:
    return TokenResponseError(message, status=None, payload=document)
