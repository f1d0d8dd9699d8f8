"""A small protected resource (RFC 6750) that trusts the end-to-end authorization server, not tokenrelay.

The end-to-end suite needs an API that judges tokenrelay's tokens the way a real resource server would, with
no code shared with tokenrelay (or its dev IdP): if both sides shared a bug, the suite would not see it. So
this module talks only to the authorization server (oidc-provider, see ``idp/server.mjs``):

* **JWT access tokens** (RFC 9068) are verified locally: ``typ`` ``at+jwt``, the signature against the
  provider's JWKS (fetched lazily, re-fetched once for an unknown ``kid`` so key rotation works), ``iss``,
  ``aud`` (one of the configured resources) and ``exp`` with no leeway, so expiry tests need not wait long.
* **Opaque access tokens** are checked at the provider's introspection endpoint (RFC 7662) with the API's own
  client credentials; ``active: false`` (revoked or expired) is rejected. oidc-provider refuses to revoke or
  introspect structured (JWT) tokens, so revocation is observable only for opaque ones; see ``docs/e2e.md``.

A rejected token gets ``401`` with ``WWW-Authenticate: Bearer error="invalid_token"`` (RFC 6750 §3.1); an
accepted one gets a JSON echo of who called (``sub``, ``client_id``, ``scope``, ``aud``) and what was asked
(``method``, ``path``). Every answer is recorded in ``app[SEEN]`` with the token's fingerprint only, so
proxy tests can assert which token reached the upstream without the token itself ever being stored.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

import aiohttp
import jwt
from aiohttp import web

__all__ = [
    "API_CONFIG",
    "SEEN",
    "ProtectedApiConfig",
    "Seen",
    "create_app",
    "fingerprint",
]

REALM = "tokenrelay-e2e"
#: RFC 9068 §2.1: JWT access tokens carry ``typ: at+jwt`` so they cannot be confused with ID tokens.
JWT_ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
SIGNING_ALGORITHMS = ["RS256", "PS256", "ES256"]


@dataclass(frozen=True, slots=True)
class ProtectedApiConfig:
    """Where the API finds the authorization server, which audiences it accepts, and its own credentials."""

    issuer: str
    jwks_uri: str
    introspection_endpoint: str
    resources: tuple[str, ...]
    client_id: str
    client_secret: str = field(repr=False)
    leeway: float = 0.0


@dataclass(frozen=True, slots=True)
class Seen:
    """One answered request: enough to assert on, never the token itself."""

    method: str
    path: str
    status: int
    token_fingerprint: str | None
    error_description: str | None = None


class InvalidToken(Exception):
    """The presented token is not acceptable; the message becomes the RFC 6750 ``error_description``."""


API_CONFIG = web.AppKey("api_config", ProtectedApiConfig)
SEEN = web.AppKey("seen", list[Seen])
_SESSION = web.AppKey("session", aiohttp.ClientSession)
_JWKS = web.AppKey("jwks", dict[str, jwt.PyJWK])


def fingerprint(token: str) -> str:
    """The only form in which a token may be shown: the first 8 hex chars of its SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()[:8]


def create_app(config: ProtectedApiConfig) -> web.Application:
    """The protected API; every path under ``/`` is protected and answers any method."""
    app = web.Application()
    app[API_CONFIG] = config
    app[SEEN] = []
    app[_JWKS] = {}
    app.cleanup_ctx.append(_client_session)
    app.router.add_route("*", "/{tail:.*}", _handle)
    return app


async def _client_session(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        app[_SESSION] = session
        yield


async def _handle(request: web.Request) -> web.Response:
    token = _bearer_token(request)
    if token is None:
        _record(request, 401, None)
        return web.json_response(
            {"error": "invalid_request", "error_description": "no bearer token"},
            status=401,
            headers={"WWW-Authenticate": f'Bearer realm="{REALM}"'},
        )
    try:
        claims, token_format = await _validate(request.app, token)
    except InvalidToken as exc:
        _record(request, 401, token, str(exc))
        return _invalid_token(str(exc))
    _record(request, 200, token)
    return web.json_response(
        {
            "sub": claims.get("sub"),
            "client_id": claims.get("client_id"),
            "scope": claims.get("scope"),
            "aud": claims.get("aud"),
            "token_format": token_format,
            "method": request.method,
            "path": request.path_qs,
        }
    )


def _bearer_token(request: web.Request) -> str | None:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    return credentials.strip()


def _record(request: web.Request, status: int, token: str | None, error: str | None = None) -> None:
    seen = Seen(request.method, request.path, status, fingerprint(token) if token else None, error)
    request.app[SEEN].append(seen)


def _invalid_token(description: str) -> web.Response:
    challenge = f'Bearer realm="{REALM}", error="invalid_token", error_description="{description}"'
    return web.json_response(
        {"error": "invalid_token", "error_description": description},
        status=401,
        headers={"WWW-Authenticate": challenge},
    )


async def _validate(app: web.Application, token: str) -> tuple[Mapping[str, Any], str]:
    if token.count(".") == 2:
        return await _validate_jwt(app, token), "jwt"
    return await _introspect(app, token), "opaque"


async def _validate_jwt(app: web.Application, token: str) -> Mapping[str, Any]:
    config = app[API_CONFIG]
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise InvalidToken("malformed token") from exc
    if str(header.get("typ", "")).lower() not in JWT_ACCESS_TOKEN_TYPES:
        raise InvalidToken("not a JWT access token (typ)")
    key = await _signing_key(app, str(header.get("kid", "")))
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=SIGNING_ALGORITHMS,
            audience=list(config.resources),
            issuer=config.issuer,
            leeway=config.leeway,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("the access token expired") from exc
    except jwt.InvalidAudienceError as exc:
        raise InvalidToken("the access token is for another audience") from exc
    except jwt.InvalidIssuerError as exc:
        raise InvalidToken("the access token is from another issuer") from exc
    except jwt.InvalidTokenError as exc:
        raise InvalidToken("the access token signature or claims are invalid") from exc
    return claims


async def _signing_key(app: web.Application, kid: str) -> jwt.PyJWK:
    """The provider's public key for ``kid``; an unknown kid triggers one JWKS re-fetch (key rotation)."""
    keys = app[_JWKS]
    if kid not in keys:
        async with app[_SESSION].get(app[API_CONFIG].jwks_uri) as response:
            response.raise_for_status()
            document = await response.json()
        keys.clear()
        for jwk in document.get("keys", []):
            if jwk.get("use", "sig") == "sig" and "kid" in jwk:
                keys[jwk["kid"]] = jwt.PyJWK(jwk)
    if kid not in keys:
        raise InvalidToken("unknown signing key")
    return keys[kid]


async def _introspect(app: web.Application, token: str) -> Mapping[str, Any]:
    config = app[API_CONFIG]
    # RFC 6749 §2.3.1: the client id and secret are form-encoded before they are joined and base64-encoded.
    pair = f"{quote_plus(config.client_id, safe='')}:{quote_plus(config.client_secret, safe='')}"
    headers = {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}
    form = {"token": token, "token_type_hint": "access_token"}
    async with app[_SESSION].post(config.introspection_endpoint, data=form, headers=headers) as response:
        if response.status != 200:
            raise web.HTTPBadGateway(text=f"introspection answered {response.status}")
        info: dict[str, Any] = await response.json()
    if info.get("active") is not True:
        raise InvalidToken("the access token is not active (revoked or expired)")
    audiences = info.get("aud")
    audiences = [audiences] if isinstance(audiences, str) else list(audiences or [])
    if not set(audiences) & set(config.resources):
        raise InvalidToken("the access token is for another audience")
    if info.get("iss") != config.issuer:
        raise InvalidToken("the access token is from another issuer")
    if not isinstance(info.get("exp"), int) or info["exp"] + config.leeway <= time.time():
        raise InvalidToken("the access token expired")
    return info
