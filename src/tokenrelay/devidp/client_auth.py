"""Client authentication at the dev IdP's endpoints (RFC 6749 §2.3, RFC 7523 §2.2/§3).

One function, :func:`authenticate_client`, finds which method a request used and checks it against the client's
registration: ``client_secret_basic`` (RFC 6749 §2.3.1: the id and secret are form-urlencoded *before* base64, so
they are decoded with ``unquote_plus``), ``client_secret_post``, and JWT assertions, which are
``client_secret_jwt`` when HMAC-signed with the secret and ``private_key_jwt`` when signed with a registered key.
A request that uses more than one method is refused (RFC 6749 §2.3). Secrets are compared in constant time and
never appear in an error description.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

import jwt
from multidict import MultiDictProxy

from tokenrelay.devidp.clients import DevClient
from tokenrelay.devidp.responses import OAuthErrorResponse, invalid_client, invalid_request
from tokenrelay.devidp.state import DevIdpState

__all__ = ["ASSERTION_TYPE", "AuthenticatedClient", "authenticate_client", "single_param"]

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
HMAC_ALGS = ("HS256", "HS384", "HS512")
ASYMMETRIC_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


@dataclass(frozen=True, slots=True)
class AuthenticatedClient:
    """The client a request authenticated as, and the RFC 7591 name of the method it used."""

    client: DevClient
    method: str


def single_param(params: MultiDictProxy[str], name: str) -> str | None:
    """A parameter that may appear at most once (RFC 6749 §3.2); ``None`` when absent or empty."""
    values = params.getall(name, [])
    if len(values) > 1:
        raise invalid_request(f"parameter {name!r} is repeated")
    return (values[0] or None) if values else None


def authenticate_client(
    authorization: str | None,
    params: MultiDictProxy[str],
    state: DevIdpState,
    audiences: Sequence[str],
) -> AuthenticatedClient:
    """Authenticate the client of a token, revocation or introspection request, or raise ``invalid_client``."""
    basic = authorization is not None and authorization[:6].lower() == "basic "
    secret_in_body = single_param(params, "client_secret") is not None
    assertion = single_param(params, "client_assertion")
    used = sum((basic, secret_in_body, assertion is not None))
    if used > 1:
        raise invalid_request("more than one client authentication method used")
    if basic:
        return _basic(str(authorization), params, state)
    if assertion is not None:
        return _assertion(assertion, params, state, audiences)
    if secret_in_body:
        return _post(params, state)
    raise invalid_client("client authentication required", basic=False)


def _basic(authorization: str, params: MultiDictProxy[str], state: DevIdpState) -> AuthenticatedClient:
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise invalid_client("malformed Basic credentials", basic=True) from exc
    raw_id, colon, raw_secret = decoded.partition(":")
    if not colon:
        raise invalid_client("malformed Basic credentials", basic=True)
    client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
    body_id = single_param(params, "client_id")
    if body_id is not None and body_id != client_id:
        raise invalid_request("client_id in the body differs from the Basic credentials")
    client = _check_secret(client_id, secret, state, "client_secret_basic", basic=True)
    return AuthenticatedClient(client, "client_secret_basic")


def _post(params: MultiDictProxy[str], state: DevIdpState) -> AuthenticatedClient:
    client_id = single_param(params, "client_id")
    if client_id is None:
        raise invalid_request("client_secret without client_id")
    secret = single_param(params, "client_secret") or ""
    client = _check_secret(client_id, secret, state, "client_secret_post", basic=False)
    return AuthenticatedClient(client, "client_secret_post")


def _check_secret(client_id: str, secret: str, state: DevIdpState, method: str, *, basic: bool) -> DevClient:
    client = state.config.client(client_id)
    expected = client.secret if client is not None else None
    # Compare even for an unknown client, so timing does not tell which client ids exist.
    ok = hmac.compare_digest(secret.encode("utf-8"), (expected or "\x00unknown").encode("utf-8"))
    if client is None or expected is None or not ok:
        raise invalid_client("client authentication failed", basic=basic, client_id=client_id)
    if method not in client.auth_methods:
        raise invalid_client(f"client is not allowed to use {method}", basic=basic, client_id=client_id)
    return client


def _assertion(
    assertion: str, params: MultiDictProxy[str], state: DevIdpState, audiences: Sequence[str]
) -> AuthenticatedClient:
    if single_param(params, "client_assertion_type") != ASSERTION_TYPE:
        raise invalid_request(f"client_assertion_type must be {ASSERTION_TYPE}")
    try:
        header = jwt.get_unverified_header(assertion)
        unverified = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise invalid_client("malformed client assertion", basic=False) from exc
    client_id = unverified.get("sub")
    client = state.config.client(client_id) if isinstance(client_id, str) else None
    if client is None:
        raise invalid_client("client assertion names an unknown client", basic=False)
    body_id = single_param(params, "client_id")
    if body_id is not None and body_id != client.client_id:
        raise invalid_client("client_id differs from the assertion's subject", basic=False)
    try:
        return _verified_assertion(assertion, str(header.get("alg")), header.get("kid"), client, state, audiences)
    except OAuthErrorResponse as exc:
        exc.client_id = client.client_id
        raise


def _verified_assertion(
    assertion: str, alg: str, kid: object, client: DevClient, state: DevIdpState, audiences: Sequence[str]
) -> AuthenticatedClient:
    method, keys = _assertion_keys(client, alg, kid)
    claims = _verify_assertion(assertion, alg, keys, client.client_id, audiences, state)
    expires_at = float(claims["exp"])
    if expires_at - time.time() > state.config.max_assertion_lifetime:
        raise invalid_client("client assertion lives too long", basic=False)
    if not state.remember_assertion(client.client_id, str(claims["jti"]), expires_at):
        raise invalid_client("client assertion jti was already used (replay)", basic=False)
    return AuthenticatedClient(client, method)


def _assertion_keys(client: DevClient, alg: str, kid: object) -> tuple[str, list[Any]]:
    if alg in HMAC_ALGS:
        method, keys = "client_secret_jwt", [client.secret] if client.secret else []
    elif alg in ASYMMETRIC_ALGS:
        method = "private_key_jwt"
        keys = [jwt.PyJWK(dict(k), algorithm=alg).key for k in client.jwks if kid is None or k.get("kid") == kid]
    else:
        raise invalid_client(f"client assertion algorithm {alg!r} is not accepted", basic=False)
    if method not in client.auth_methods:
        raise invalid_client(f"client is not allowed to use {method}", basic=False)
    if not keys:
        raise invalid_client("no registered key matches the client assertion", basic=False)
    return method, keys


def _verify_assertion(
    assertion: str, alg: str, keys: list[Any], client_id: str, audiences: Sequence[str], state: DevIdpState
) -> dict[str, Any]:
    """RFC 7523 §3: signature, iss = sub = client_id, aud names this server, exp in the future, a jti."""
    failure: OAuthErrorResponse | None = None
    for key in keys:
        try:
            with warnings.catch_warnings():
                # A short client secret is the client's choice; the dev IdP still accepts it.
                warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
                claims: dict[str, Any] = jwt.decode(
                    assertion,
                    key,
                    algorithms=[alg],
                    audience=list(audiences),
                    issuer=client_id,
                    leeway=state.config.assertion_leeway,
                    options={"require": ["iss", "sub", "aud", "exp", "jti"]},
                )
        except jwt.InvalidSignatureError as exc:
            failure = invalid_client("client assertion signature does not verify", basic=False)
            failure.__cause__ = exc
            continue
        except jwt.PyJWTError as exc:
            raise invalid_client(f"client assertion rejected: {_reason(exc)}", basic=False) from exc
        if claims.get("sub") != client_id:
            raise invalid_client("client assertion iss and sub must both be the client_id", basic=False)
        return claims
    raise failure or invalid_client("client assertion does not verify", basic=False)


def _reason(exc: jwt.PyJWTError) -> str:
    """A short, credential-free reason for a rejected assertion (PyJWT messages hold no key material)."""
    return str(exc) or type(exc).__name__
