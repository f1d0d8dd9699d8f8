"""``ClientCredentials``: simple-oauth2's Client Credentials grant (``getToken`` / ``createToken``) on asyncio.

One object per client configuration. It validates the config up front, owns one transport (aiohttp session),
resolves the endpoints (from ``token_host`` + paths, or from discovery metadata when ``auth.issuer`` /
``auth.discovery_url`` is set, cached per client), and serves the refresh and revoke calls of the tokens it
makes. Like simple-oauth2 it does no caching of tokens, no retries and no locking: every ``get_token`` is one
POST; when to call it (``token.expired(window)``) is the caller's decision.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import structlog

from tokenrelay.grant.client_auth import ClientAuth
from tokenrelay.grant.config import TLS_METHODS, HttpConfig, OAuth2Config, validate_config, validate_http_options
from tokenrelay.grant.discovery import MetadataCache, ServerMetadata, metadata_urls, parse_metadata
from tokenrelay.grant.encoding import UNDEFINED
from tokenrelay.grant.errors import (
    ConfigError,
    FieldError,
    OAuth2Error,
    TokenRequestError,
    TokenResponseError,
)
from tokenrelay.grant.request import grant_params, merge_http_options, prepare_request
from tokenrelay.grant.response import (
    RawResponse,
    parse_metadata_response,
    parse_revoke_response,
    parse_token_response,
)
from tokenrelay.grant.token import AccessToken, Clock, parse_token_fields
from tokenrelay.grant.transport import Transport
from tokenrelay.grant.urls import parse_http_url, resolve_url

if TYPE_CHECKING:
    import aiohttp  # only transport.py uses aiohttp; the session type is for callers

__all__ = ["ClientCredentials", "Endpoints"]

logger = structlog.get_logger("tokenrelay.grant")

HttpOptions = HttpConfig | Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class Endpoints:
    """The absolute URLs this client posts to. ``revocation`` is ``None`` when discovery names none."""

    token: str
    refresh: str
    revocation: str | None


def static_endpoints(config: OAuth2Config) -> Endpoints:
    """``new URL(path, tokenHost)`` for the three paths (WHATWG resolution, :mod:`tokenrelay.grant.urls`)."""
    auth = config.auth
    assert auth.token_host is not None  # config validation requires it without discovery
    base = parse_http_url(auth.token_host)
    resolved: dict[str, str] = {}
    problems: list[FieldError] = []
    for name, path in (
        ("token_path", auth.token_path),
        ("refresh_path", auth.refresh_path),
        ("revoke_path", auth.revoke_path),
    ):
        try:
            resolved[name] = resolve_url(path or auth.token_path, base)
        except ValueError as exc:
            problems.append(FieldError(f"auth.{name}", f"does not resolve to an http(s) URL ({exc})"))
    if problems:
        raise ConfigError(problems)
    return Endpoints(resolved["token_path"], resolved["refresh_path"], resolved["revoke_path"])


class ClientCredentials:
    """The Client Credentials grant for one client; use ``async with`` or call :meth:`close` when done.

    ``config`` is a mapping (camelCase or snake_case keys), an :class:`OAuth2Config`, or the sections as
    keywords (``ClientCredentials(client=..., auth=...)``). ``session`` is an aiohttp session to use (not
    closed by the client); ``now`` a wall clock in UNIX seconds (tests freeze it); ``metadata_cache`` lets
    several clients share discovery results.
    """

    def __init__(
        self,
        config: OAuth2Config | Mapping[str, Any] | None = None,
        *,
        client: Mapping[str, Any] | None = None,
        auth: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        http: Mapping[str, Any] | None = None,
        session: aiohttp.ClientSession | None = None,
        now: Clock | None = None,
        metadata_cache: MetadataCache | None = None,
    ) -> None:
        sections = {
            k: v for k, v in (("client", client), ("auth", auth), ("options", options), ("http", http)) if v is not None
        }
        if config is not None and sections:
            raise ConfigError([FieldError("", "give a config or keyword sections, not both")])
        self._config = validate_config(config if config is not None else (sections or None))
        self._auth = ClientAuth.from_config(self._config)
        self._clock: Clock = now or time.time
        self._transport = Transport(session=session)
        self._metadata_cache = metadata_cache or MetadataCache()
        self._endpoints = None if self._config.auth.uses_discovery else static_endpoints(self._config)

    @property
    def config(self) -> OAuth2Config:
        """The validated configuration (defaults filled in; ``client.secret`` is a ``SecretStr``)."""
        return self._config

    @property
    def token_endpoint(self) -> str:
        """The resolved token endpoint URL. With discovery, :meth:`resolve_token_endpoint` must run first."""
        if self._endpoints is None:
            raise OAuth2Error("the token endpoint comes from discovery: await resolve_token_endpoint() first")
        return self._endpoints.token

    def __repr__(self) -> str:
        where = self._endpoints.token if self._endpoints is not None else "<discovery>"
        return f"ClientCredentials(client_id={self._config.client.id!r}, token_endpoint={where!r})"

    def now_ms(self) -> float:
        """The wall clock in whole milliseconds, as JavaScript's ``Date.now()``."""
        return float(round(self._clock() * 1000))

    async def resolve_token_endpoint(self) -> str:
        """The token endpoint URL, fetching the discovery metadata first when it is configured (cached)."""
        return (await self._get_endpoints()).token

    async def get_token(
        self, params: Mapping[str, object] | None = None, http_options: HttpOptions = None
    ) -> AccessToken:
        """POST the client-credentials grant; ``params`` are extra parameters (``scope`` list or string, ...)."""
        call_http = validate_http_options(http_options)
        endpoints = await self._get_endpoints()
        merged = grant_params({"grant_type": "client_credentials"}, params, self._config.options.scope_separator)
        fields = parse_token_response(await self._post(endpoints, endpoints.token, merged, call_http))
        return self._new_token(fields)

    def create_token(self, token: Mapping[str, object]) -> AccessToken:
        """Restore a token (e.g. a stored ``to_dict()``): no HTTP; ``expires_at`` parsed as the endpoint's would be."""
        if not isinstance(token, Mapping):
            raise TypeError(f"create_token() needs a mapping of token fields, not {type(token).__name__}")
        return AccessToken(parse_token_fields(token, self.now_ms()), owner=self)

    async def refresh_token(
        self, token: AccessToken, params: Mapping[str, object] | None, http_options: HttpOptions
    ) -> AccessToken:
        """``AccessToken.refresh``: the refresh grant with the token's refresh token, which the answer may omit."""
        call_http = validate_http_options(http_options)
        endpoints = await self._get_endpoints()
        merged = grant_params({"grant_type": "refresh_token"}, params, self._config.options.scope_separator)
        merged["refresh_token"] = token.token.get("refresh_token", UNDEFINED)
        fields = parse_token_response(await self._post(endpoints, endpoints.refresh, merged, call_http))
        if "refresh_token" not in fields and "refresh_token" in token.token:
            fields["refresh_token"] = token.token["refresh_token"]  # what simple-oauth2 5.1.0 meant to do
        return self._new_token(fields)

    async def revoke_token(self, token: AccessToken, token_type: str, http_options: HttpOptions) -> object:
        """``AccessToken.revoke``: RFC 7009 with ``token`` and ``token_type_hint``."""
        call_http = validate_http_options(http_options)
        endpoints = await self._get_endpoints()
        if endpoints.revocation is None:
            raise ConfigError([FieldError("auth.revoke_path", "the server metadata names no revocation_endpoint")])
        params = {"token": token.token.get(token_type, UNDEFINED), "token_type_hint": token_type}
        return parse_revoke_response(await self._post(endpoints, endpoints.revocation, params, call_http))

    async def close(self) -> None:
        """Close the aiohttp session if the client created it."""
        await self._transport.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def _new_token(self, fields: Mapping[str, object]) -> AccessToken:
        """A token from an endpoint's answer: unlike ``create_token``, ``options.default_expires_in`` applies."""
        default_expires_in = self._config.options.default_expires_in
        token = AccessToken(
            parse_token_fields(fields, self.now_ms(), default_expires_in=default_expires_in), owner=self
        )
        logger.debug("grant.token", client_id=self._config.client.id, fingerprint=token.fingerprint)
        return token

    async def _post(
        self, endpoints: Endpoints, url: str, params: Mapping[str, object], call_http: HttpConfig | None
    ) -> RawResponse:
        """POST to ``url`` (one of ``endpoints``, resolved once by the caller); JWT assertions name the token
        endpoint as their audience whichever endpoint they go to."""
        request = prepare_request(
            url,
            params,
            auth=self._auth,
            body_format=self._config.options.body_format,
            config_http=self._config.http,
            call_http=call_http,
            audience=endpoints.token,
            now=self._clock(),
        )
        return await self._transport.post(request, merge_http_options(self._config.http, call_http))

    async def _get_endpoints(self) -> Endpoints:
        if self._endpoints is not None and not self._config.auth.uses_discovery:
            return self._endpoints
        auth = self._config.auth
        key = auth.discovery_url or auth.issuer or ""
        metadata = await self._metadata_cache.get(key, self._fetch_metadata)
        token, revoke = metadata.token_endpoint, metadata.revocation_endpoint
        if self._auth.method in TLS_METHODS:  # RFC 8705 §5: a certificate-authenticated client uses the aliases
            token = metadata.mtls_token_endpoint or token
            revoke = metadata.mtls_revocation_endpoint or revoke
        self._endpoints = Endpoints(token, token, revoke)
        return self._endpoints

    async def _fetch_metadata(self) -> ServerMetadata:
        """GET each candidate metadata URL in order; the first HTTP 200 JSON document wins."""
        auth = self._config.auth
        urls = [auth.discovery_url] if auth.discovery_url else metadata_urls(auth.issuer or "")
        failure: OAuth2Error | None = None
        for url in urls:
            answer = await self._transport.get(url, self._config.http, [("Accept", "application/json")])
            try:
                document = parse_metadata_response(answer)
            except (TokenRequestError, TokenResponseError) as exc:
                failure = exc
                continue
            return parse_metadata(document, expected_issuer=auth.issuer)
        assert failure is not None  # urls is never empty
        raise failure
