"""The dev IdP's aiohttp application: discovery, JWKS and the client-credentials token endpoint.

``create_idp_app(config)`` builds the app; its state (counters, faults, revocations) is ``app[DEV_IDP_STATE]``.
Revocation, introspection and the ``/_dev/`` endpoints live in :mod:`tokenrelay.devidp.endpoints`. This is a
development tool: it keeps everything in memory and serves only what a client-credentials client needs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import structlog
from aiohttp import web
from multidict import MultiDictProxy

from tokenrelay.devidp import endpoints
from tokenrelay.devidp.client_auth import (
    ASYMMETRIC_ALGS,
    HMAC_ALGS,
    AuthenticatedClient,
    authenticate_client,
    single_param,
)
from tokenrelay.devidp.clients import AUTH_METHODS
from tokenrelay.devidp.config import DevIdpConfig
from tokenrelay.devidp.forms import assertion_audiences, issuer_for, read_form
from tokenrelay.devidp.responses import OAuthErrorResponse, invalid_request, no_store_json
from tokenrelay.devidp.state import DEV_IDP_STATE, DevIdpState, Fault

__all__ = ["DEV_IDP_STATE", "create_idp_app", "metadata"]

logger = structlog.get_logger("tokenrelay.devidp")


def create_idp_app(config: DevIdpConfig) -> web.Application:
    """A dev IdP app for ``config``; generates the signing key now unless the config carries one."""
    app = web.Application()
    app[DEV_IDP_STATE] = DevIdpState(config)
    app.router.add_get("/.well-known/openid-configuration", _discovery)
    app.router.add_get("/.well-known/oauth-authorization-server", _discovery)
    app.router.add_get("/jwks", _jwks)
    app.router.add_post("/token", _token)
    endpoints.add_routes(app)
    return app


def metadata(issuer: str, state: DevIdpState) -> dict[str, Any]:
    """The RFC 8414 authorization server metadata (also served as the OIDC discovery document)."""
    methods = list(AUTH_METHODS)
    scopes = sorted({s for c in state.config.clients for s in c.allowed_scopes})
    return {
        "issuer": issuer,
        "token_endpoint": f"{issuer}/token",
        "jwks_uri": f"{issuer}/jwks",
        "revocation_endpoint": f"{issuer}/revoke",
        "introspection_endpoint": f"{issuer}/introspect",
        "grant_types_supported": ["client_credentials"],
        "response_types_supported": [],
        "scopes_supported": scopes,
        "token_endpoint_auth_methods_supported": methods,
        "token_endpoint_auth_signing_alg_values_supported": [*HMAC_ALGS, *ASYMMETRIC_ALGS],
        "revocation_endpoint_auth_methods_supported": methods,
        "introspection_endpoint_auth_methods_supported": methods,
    }


async def _discovery(request: web.Request) -> web.Response:
    return web.json_response(metadata(issuer_for(request), request.app[DEV_IDP_STATE]))


async def _jwks(request: web.Request) -> web.Response:
    return web.json_response(request.app[DEV_IDP_STATE].key.jwks())


async def _token(request: web.Request) -> web.StreamResponse:
    state = request.app[DEV_IDP_STATE]
    fault = state.take_fault()
    if fault is not None:
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.replaces_answer:
            state.record("token", None, "fault")
            logger.info("token request answered with an injected fault", status=fault.status, body=fault.body)
            return _fault_response(fault)
    client_id: str | None = None
    try:
        params = await read_form(request)
        authenticated = authenticate_client(
            request.headers.get("Authorization"), params, state, assertion_audiences(request)
        )
        client_id = authenticated.client.client_id
        body = _issue(issuer_for(request), params, authenticated, state)
    except OAuthErrorResponse as exc:
        client_id = client_id or exc.client_id
        state.record("token", client_id, exc.error)
        logger.info("token request refused", client_id=client_id, error=exc.error, reason=exc.description)
        return exc.response()
    state.record("token", client_id, "issued")
    return no_store_json(body)


def _issue(
    issuer: str, params: MultiDictProxy[str], authenticated: AuthenticatedClient, state: DevIdpState
) -> dict[str, Any]:
    grant_type = single_param(params, "grant_type")
    if grant_type is None:
        raise invalid_request("grant_type is required")
    if grant_type != "client_credentials":
        raise OAuthErrorResponse("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")
    client = authenticated.client
    scope = _granted_scope(single_param(params, "scope"), client.allowed_scopes)
    audience = _audience(params) or client.audience or state.config.default_audience
    issued = state.mint(client.client_id, issuer=issuer, scope=scope, audience=audience)
    logger.info(
        "token issued",
        client_id=client.client_id,
        auth_method=authenticated.method,
        token=issued.fingerprint,
        jti=issued.jti,
        scope=issued.scope,
        expires_in=state.config.expires_in,
    )
    body: dict[str, Any] = {"access_token": issued.token, "token_type": "Bearer"}
    if state.config.include_expires_in:
        body["expires_in"] = state.config.expires_in
    if issued.scope:
        body["scope"] = issued.scope
    return body


def _granted_scope(requested: str | None, allowed: Sequence[str]) -> tuple[str, ...]:
    """RFC 6749 §3.3: every requested scope must be allowed; no ``scope`` grants the client's default (all)."""
    if requested is None:
        return tuple(allowed)
    wanted = tuple(dict.fromkeys(s for s in requested.split(" ") if s))
    refused = [s for s in wanted if s not in allowed]
    if refused:
        raise OAuthErrorResponse("invalid_scope", f"scope not allowed for this client: {' '.join(refused)}")
    return wanted


def _audience(params: MultiDictProxy[str]) -> tuple[str, ...]:
    """``audience`` (the common extension) and ``resource`` (RFC 8707, may repeat) together form ``aud``."""
    resources = [r for r in params.getall("resource", []) if r]
    for resource in resources:
        parts = urlsplit(resource)
        if not parts.scheme or parts.fragment:
            raise OAuthErrorResponse("invalid_target", "resource must be an absolute URI without a fragment")
    audience = single_param(params, "audience")
    return tuple(dict.fromkeys([*([audience] if audience else []), *resources]))


def _fault_response(fault: Fault) -> web.Response:
    if fault.body == "garbage":
        return web.Response(status=fault.status, body=b"<html>\x00not json{", content_type="application/json")
    if fault.body == "empty":
        return web.Response(status=fault.status)
    if fault.status < 300:  # body == "json" with a 2xx: valid JSON that is not a token
        return no_store_json({"token_type": "Bearer", "note": "injected fault: no access_token"})
    body = {"error": "temporarily_unavailable", "error_description": "injected fault"}
    return no_store_json(body, status=fault.status)
