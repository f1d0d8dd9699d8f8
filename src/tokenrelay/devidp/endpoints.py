"""The dev IdP's secondary endpoints: revocation (RFC 7009), introspection (RFC 7662) and ``/_dev/``.

``/_dev/`` is for tests and the demo, never for clients: ``GET /_dev/stats`` (counters), ``DELETE /_dev/stats``
(zero them), ``POST /_dev/faults`` (``{"fail_next": n, "status": 503, "delay": 1.5, "body": "json"}`` makes the
next ``n`` token requests fail, slow down or answer garbage; ``{"reset": true}`` drops pending faults) and
``POST /_dev/revoke-recent`` (``{"client_id": ...}`` optional: revoke the recently issued tokens).
"""

from __future__ import annotations

import time
from typing import Any, get_args

import structlog
from aiohttp import web

from tokenrelay.devidp.client_auth import authenticate_client, single_param
from tokenrelay.devidp.forms import assertion_audiences, issuer_for, read_form
from tokenrelay.devidp.responses import OAuthErrorResponse, invalid_request, no_store_json
from tokenrelay.devidp.state import DEV_IDP_STATE, DevIdpState, Fault, FaultBody
from tokenrelay.devidp.tokens import decode_own_token
from tokenrelay.fingerprints import fingerprint

__all__ = ["add_routes", "parse_fault_request"]

logger = structlog.get_logger("tokenrelay.devidp")


def add_routes(app: web.Application) -> None:
    """Register the revocation, introspection and ``/_dev/`` routes on a dev IdP app."""
    app.router.add_post("/revoke", _revoke)
    app.router.add_post("/introspect", _introspect)
    app.router.add_get("/_dev/stats", _stats)
    app.router.add_delete("/_dev/stats", _reset_stats)
    app.router.add_post("/_dev/faults", _faults)
    app.router.add_post("/_dev/revoke-recent", _revoke_recent)


async def _authenticated_token(request: web.Request) -> tuple[str, str]:
    """Authenticate the caller and return ``(client_id, token)`` for a revoke/introspect request."""
    state = request.app[DEV_IDP_STATE]
    params = await read_form(request)
    authenticated = authenticate_client(
        request.headers.get("Authorization"), params, state, assertion_audiences(request)
    )
    token = single_param(params, "token")
    if token is None:
        error = invalid_request("token is required")
        error.client_id = authenticated.client.client_id
        raise error
    return authenticated.client.client_id, token


async def _revoke(request: web.Request) -> web.Response:
    """RFC 7009 §2.2: 200 with an empty body whether or not the token was known, valid or already revoked.

    A token issued to *another* client is left alone, also with a 200, so revocation cannot be used to
    probe which tokens exist.
    """
    state = request.app[DEV_IDP_STATE]
    try:
        client_id, token = await _authenticated_token(request)
    except OAuthErrorResponse as exc:
        state.record("revoke", exc.client_id, exc.error)
        return exc.response()
    claims = decode_own_token(state.key, token)
    revoked = claims is not None and claims.get("client_id") == client_id and state.revoke(str(claims["jti"]))
    state.record("revoke", client_id, "revoked" if revoked else "ignored")
    logger.info("revocation request", client_id=client_id, token=fingerprint(token), revoked=revoked)
    return web.Response(status=200, headers={"Cache-Control": "no-store"})


async def _introspect(request: web.Request) -> web.Response:
    """RFC 7662 §2.2: ``{"active": false}`` for anything not currently valid, else the token's claims."""
    state = request.app[DEV_IDP_STATE]
    try:
        client_id, token = await _authenticated_token(request)
    except OAuthErrorResponse as exc:
        state.record("introspect", exc.client_id, exc.error)
        return exc.response()
    body = _introspection(state, token, issuer_for(request))
    state.record("introspect", client_id, "active" if body["active"] else "inactive")
    return no_store_json(body)


def _introspection(state: DevIdpState, token: str, issuer: str) -> dict[str, Any]:
    claims = decode_own_token(state.key, token)
    if claims is None or claims.get("iss") != issuer:
        return {"active": False}
    if float(claims["exp"]) <= time.time() or state.is_revoked(str(claims["jti"])):
        return {"active": False}
    fields = ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "jti")
    return {"active": True, "token_type": "Bearer", **{k: claims[k] for k in fields if k in claims}}


async def _stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[DEV_IDP_STATE].stats())


async def _reset_stats(request: web.Request) -> web.Response:
    request.app[DEV_IDP_STATE].reset_stats()
    return web.json_response(request.app[DEV_IDP_STATE].stats())


async def _revoke_recent(request: web.Request) -> web.Response:
    """``{"client_id": "..."}`` (optional): revoke the recently issued tokens, so resource servers answer 401."""
    state = request.app[DEV_IDP_STATE]
    try:
        spec = await request.json() if request.can_read_body else {}
    except ValueError:
        spec = None
    client_id = spec.get("client_id") if isinstance(spec, dict) else None
    if not isinstance(spec, dict) or not isinstance(client_id, str | None):
        description = 'the body must be {} or {"client_id": "<id>"}'
        return web.json_response({"error": "invalid_request", "error_description": description}, status=400)
    revoked = state.revoke_recent(client_id)
    logger.info("recent tokens revoked", client_id=client_id, revoked=revoked)
    return web.json_response({"revoked": revoked})


async def _faults(request: web.Request) -> web.Response:
    state = request.app[DEV_IDP_STATE]
    try:
        spec = await request.json()
        parsed = parse_fault_request(spec)
    except (ValueError, TypeError) as exc:  # json.JSONDecodeError is a ValueError
        return web.json_response({"error": "invalid_request", "error_description": str(exc)}, status=400)
    if parsed is None:
        state.reset_faults()
    else:
        state.inject_faults(*parsed)
    logger.info("faults set", pending=state.faults_pending)
    return web.json_response({"faults_pending": state.faults_pending})


def parse_fault_request(spec: Any) -> tuple[int, Fault] | None:
    """Validate a ``POST /_dev/faults`` body; ``None`` means reset. Raises ``ValueError`` with the reason."""
    if not isinstance(spec, dict):
        raise ValueError("the body must be a JSON object")
    unknown = set(spec) - {"fail_next", "status", "delay", "body", "reset"}
    if unknown:
        raise ValueError(f"unknown fields: {sorted(unknown)}")
    if spec.get("reset") is True:
        return None
    count, status, delay, body = (spec.get(k) for k in ("fail_next", "status", "delay", "body"))
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ValueError("fail_next must be a non-negative integer")
    if status is not None and (not isinstance(status, int) or isinstance(status, bool)):
        raise ValueError("status must be an integer")
    if delay is not None and (not isinstance(delay, int | float) or isinstance(delay, bool)):
        raise ValueError("delay must be a number of seconds")
    if body is not None and body not in get_args(FaultBody):
        raise ValueError(f"body must be one of {list(get_args(FaultBody))}")
    fault = Fault(status=503 if status is None else status, delay=float(delay or 0), body=body)
    return count, fault
