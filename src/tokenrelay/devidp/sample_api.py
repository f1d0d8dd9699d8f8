"""The protected sample API behind the proxy in ``tokenrelay demo`` and the integration tests.

It is a *resource server* (RFC 6750 + RFC 9068): every route but ``/_sample/stats`` needs ``Authorization:
Bearer <jwt>`` signed by the dev IdP, with the right ``typ``, ``iss``, ``aud``, an unexpired ``exp`` (no leeway
by default, so expiry tests are exact) and a ``jti`` that was not revoked. It answers what it received, so tests
can see exactly what the proxy forwarded; token values only ever appear as fingerprints.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
import structlog
from aiohttp import web

from tokenrelay.devidp.introspection import IntrospectionCheck
from tokenrelay.devidp.key_sources import KeySource, RemoteJwks, StaticKeys
from tokenrelay.devidp.keys import SIGNING_ALG, SigningKey
from tokenrelay.devidp.state import DevIdpState
from tokenrelay.devidp.tokens import ACCESS_TOKEN_TYP
from tokenrelay.fingerprints import fingerprint

__all__ = ["SAMPLE_API_STATE", "RevocationCheck", "SampleApiState", "create_sample_api", "stream_pattern"]

logger = structlog.get_logger("tokenrelay.devidp.sample_api")

#: ``(jti, token) -> revoked?``; :class:`DevIdpState` gives one in process.
RevocationCheck = Callable[[str, str], Awaitable[bool]]

#: A protected handler: gets the request and the validated token's claims.
_Protected = Callable[[web.Request, dict[str, Any]], Awaitable[web.StreamResponse]]
_PATTERN = bytes(range(256)) * 256  # 64 KiB; /stream repeats it, so a client can verify what it got
_MAX_STREAM = 1 << 30
_REALM = 'Bearer realm="sample"'


@dataclass(slots=True)
class SampleApiState:
    """Counters of the sample API, and how it validates tokens."""

    issuer: str
    audience: str
    keys: KeySource
    revocation: RevocationCheck | None = None
    required_scope: str | None = None
    leeway: float = 0.0
    requests: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    forbidden: int = 0

    def stats(self) -> dict[str, Any]:
        """The ``GET /_sample/stats`` document."""
        return {
            "requests": self.requests,
            "unauthorized": sum(self.rejected.values()),
            "unauthorized_by_reason": dict(sorted(self.rejected.items())),
            "forbidden": self.forbidden,
        }


#: Where a sample API app keeps its state: ``app[SAMPLE_API_STATE]``.
SAMPLE_API_STATE = web.AppKey("tokenrelay.sample_api.state", SampleApiState)


class _Rejected(Exception):
    def __init__(self, reason: str, description: str) -> None:
        super().__init__(description)
        self.reason = reason
        self.description = description


def create_sample_api(
    issuer: str,
    keys: str | SigningKey | KeySource,
    audience: str,
    *,
    revocation: DevIdpState | RevocationCheck | None = None,
    required_scope: str | None = None,
    leeway: float = 0.0,
) -> web.Application:
    """The sample API. ``keys`` is a JWKS URL (fetched, cached), the IdP's :class:`SigningKey` or a key source;
    ``revocation`` is the IdP's state in process, an :class:`IntrospectionCheck` over HTTP, or any async
    ``(jti, token) -> bool`` check."""
    if isinstance(keys, str):
        keys = RemoteJwks(keys)
    elif isinstance(keys, SigningKey):
        keys = StaticKeys(keys)
    if isinstance(revocation, DevIdpState):
        revocation = _state_revocation(revocation)
    state = SampleApiState(issuer, audience, keys, revocation, required_scope, leeway)
    app = web.Application()
    app[SAMPLE_API_STATE] = state
    app.router.add_get("/hello", _protected(_hello))
    app.router.add_route("*", "/echo", _protected(_echo))
    app.router.add_route("*", "/echo/{tail:.*}", _protected(_echo))
    app.router.add_get("/stream", _protected(_stream))
    app.router.add_post("/upload", _protected(_upload))
    app.router.add_get("/_sample/stats", _stats)
    app.on_cleanup.append(_close_keys)
    return app


def stream_pattern(size: int) -> bytes:
    """The exact bytes ``GET /stream?bytes=size`` sends (tests compare hashes with it)."""
    repeats, rest = divmod(size, len(_PATTERN))
    return _PATTERN * repeats + _PATTERN[:rest]


def _state_revocation(idp: DevIdpState) -> RevocationCheck:
    async def check(jti: str, token: str) -> bool:
        return idp.is_revoked(jti)

    return check


async def _close_keys(app: web.Application) -> None:
    state = app[SAMPLE_API_STATE]
    await state.keys.close()
    if isinstance(state.revocation, IntrospectionCheck):
        await state.revocation.close()


def _protected(handler: _Protected) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Wrap a handler so it runs only with a valid token, and gets its claims."""

    async def protected(request: web.Request) -> web.StreamResponse:
        return await _bearer_auth(request, handler)

    return protected


async def _bearer_auth(request: web.Request, handler: _Protected) -> web.StreamResponse:
    """Validate the bearer token (RFC 6750 §3 challenges on failure), then call ``handler`` with its claims."""
    state = request.app[SAMPLE_API_STATE]
    state.requests += 1
    token = _bearer_token(request)
    if token is None:
        state.rejected["missing"] += 1
        return web.json_response({"error": "missing_token"}, status=401, headers={"WWW-Authenticate": _REALM})
    try:
        claims = await _validate(state, token)
    except _Rejected as exc:
        state.rejected[exc.reason] += 1
        logger.info("token rejected", token=fingerprint(token), reason=exc.reason)
        challenge = f'{_REALM}, error="invalid_token", error_description="{exc.description}"'
        body = {"error": "invalid_token", "reason": exc.reason}
        return web.json_response(body, status=401, headers={"WWW-Authenticate": challenge})
    granted = str(claims.get("scope", "")).split()
    if state.required_scope is not None and state.required_scope not in granted:
        state.forbidden += 1
        challenge = f'{_REALM}, error="insufficient_scope", scope="{state.required_scope}"'
        body = {"error": "insufficient_scope", "scope": state.required_scope}
        return web.json_response(body, status=403, headers={"WWW-Authenticate": challenge})
    return await handler(request, claims)


def _bearer_token(request: web.Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    value = value.strip()
    return value if scheme.lower() == "bearer" and value else None


async def _validate(state: SampleApiState, token: str) -> dict[str, Any]:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise _Rejected("malformed", "the token is not a JWT") from exc
    if str(header.get("typ", "")).lower() not in (ACCESS_TOKEN_TYP, f"application/{ACCESS_TOKEN_TYP}"):
        raise _Rejected("wrong_type", "the token is not an RFC 9068 access token")
    kid = header.get("kid")
    keys = await state.keys.keys_for(kid if isinstance(kid, str) else None)
    if not keys:
        raise _Rejected("unknown_kid", "no key matches the token's kid")
    claims = _decode(state, token, keys)
    if state.revocation is not None and await state.revocation(str(claims["jti"]), token):
        raise _Rejected("revoked", "the token was revoked")
    return claims


def _decode(state: SampleApiState, token: str, keys: list[Any]) -> dict[str, Any]:
    reasons: list[tuple[type[jwt.PyJWTError], str]] = [
        (jwt.ExpiredSignatureError, "expired"),
        (jwt.InvalidAudienceError, "wrong_audience"),
        (jwt.InvalidIssuerError, "wrong_issuer"),
        (jwt.InvalidSignatureError, "bad_signature"),
    ]
    error: jwt.PyJWTError = jwt.InvalidSignatureError("no key verifies the token")
    for key in keys:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[SIGNING_ALG],
                audience=state.audience,
                issuer=state.issuer,
                leeway=state.leeway,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
            )
        except jwt.InvalidSignatureError as exc:
            error = exc
            continue
        except jwt.PyJWTError as exc:
            error = exc
            break
        return claims
    reason = next((name for cls, name in reasons if isinstance(error, cls)), "malformed")
    raise _Rejected(reason, f"the token is not valid ({reason})") from error


async def _hello(request: web.Request, claims: dict[str, Any]) -> web.Response:
    token = _bearer_token(request) or ""
    body = {"hello": claims["sub"], "scope": claims.get("scope", ""), "token_fingerprint": fingerprint(token)}
    return web.json_response(body)


async def _echo(request: web.Request, claims: dict[str, Any]) -> web.Response:
    """What arrived: method, path, raw query, headers (Authorization only as a fingerprint), body digest."""
    headers = [[k, v] for k, v in request.headers.items() if k.lower() != "authorization"]
    authorization = request.headers.get("Authorization")
    length, digest = await _digest_body(request)
    body = {
        "method": request.method,
        "path": request.path,
        "raw_path": request.rel_url.raw_path,
        "query_string": request.rel_url.raw_query_string,
        "headers": headers,
        "authorization": {
            "present": authorization is not None,
            "fingerprint": fingerprint(_bearer_token(request) or authorization) if authorization else None,
        },
        "body_length": length,
        "body_sha256": digest,
    }
    return web.json_response(body)


async def _digest_body(request: web.Request) -> tuple[int, str]:
    """Length and SHA-256 of the body, read in chunks so memory stays bounded whatever its size."""
    sha = hashlib.sha256()
    length = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        sha.update(chunk)
        length += len(chunk)
    return length, sha.hexdigest()


async def _stream(request: web.Request, claims: dict[str, Any]) -> web.StreamResponse:
    """``bytes`` bytes of :func:`stream_pattern`, sent chunked in 64 KiB writes."""
    try:
        size = int(request.query.get("bytes", "0"))
    except ValueError:
        size = -1
    if not 0 <= size <= _MAX_STREAM:
        return web.json_response({"error": f"bytes must be an integer in [0, {_MAX_STREAM}]"}, status=400)
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    remaining = size
    while remaining:
        chunk = _PATTERN[: min(remaining, len(_PATTERN))]
        await response.write(chunk)
        remaining -= len(chunk)
    await response.write_eof()
    return response


async def _upload(request: web.Request, claims: dict[str, Any]) -> web.Response:
    length, digest = await _digest_body(request)
    return web.json_response({"length": length, "sha256": digest})


async def _stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[SAMPLE_API_STATE].stats())
