"""Client authentication at the token endpoint: one small function per RFC 7591 method, in a registry.

Each method takes the request parameters and returns the parameters to send plus the ``Authorization`` value
(or ``None``). simple-oauth2 knows two methods, ``header`` (= ``client_secret_basic``) and ``body``
(= ``client_secret_post``); the port adds ``none`` (public clients), the RFC 7523 JWT methods
(``private_key_jwt``, ``client_secret_jwt``), whose signing lives in :mod:`tokenrelay.grant.assertion`, and the
RFC 8705 §2 mutual-TLS methods (``tls_client_auth``, ``self_signed_tls_client_auth``). For those the proof is
the TLS client certificate (``http.cert_file``/``key_file``), presented by :mod:`tokenrelay.grant.transport`
during the handshake; the request itself carries only ``client_id``, which the server needs to find the
registration the certificate is checked against.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

from tokenrelay.grant.assertion import (
    CLIENT_ASSERTION_TYPE,
    SigningKey,
    build_client_assertion,
    hmac_key,
    load_private_key,
    load_private_key_file,
)
from tokenrelay.grant.config import AuthMethod, OAuth2Config
from tokenrelay.grant.encoding import basic_credentials

__all__ = ["CLIENT_AUTH_METHODS", "AuthResult", "ClientAuth", "ClientAuthMethod", "apply_client_auth"]

Params = dict[str, object]


@dataclass(frozen=True, slots=True)
class ClientAuth:
    """Everything a client-auth method may need; built once per client. ``repr`` hides the secrets."""

    method: AuthMethod
    client_id: str
    secret: str | None
    id_param_name: str
    secret_param_name: str
    encoding_mode: Literal["strict", "loose"]
    signing_key: SigningKey | None = None
    assertion_lifetime: float = 60.0

    def __repr__(self) -> str:
        return f"ClientAuth(method={self.method!r}, client_id={self.client_id!r})"

    @classmethod
    def from_config(cls, config: OAuth2Config) -> ClientAuth:
        """Build from a validated config; loads the private key (a bad key raises ``ConfigError``)."""
        client, method = config.client, config.options.auth_method
        secret = client.secret.get_secret_value() if client.secret is not None else None
        key: SigningKey | None = None
        if method == "private_key_jwt":
            alg, kid = client.assertion_alg, client.key_id
            if client.private_key is not None:
                key = load_private_key(client.private_key.get_secret_value(), alg=alg, kid=kid)
            else:
                assert client.private_key_file is not None  # guaranteed by config validation
                key = load_private_key_file(client.private_key_file, alg=alg, kid=kid)
        elif method == "client_secret_jwt":
            assert secret is not None  # guaranteed by config validation
            key = hmac_key(secret, alg=client.assertion_alg or "HS256")
        return cls(
            method=method,
            client_id=client.id,
            secret=secret,
            id_param_name=client.id_param_name,
            secret_param_name=client.secret_param_name,
            encoding_mode=config.options.credentials_encoding_mode,
            signing_key=key,
            assertion_lifetime=client.assertion_lifetime,
        )


@dataclass(frozen=True, slots=True)
class AuthResult:
    """The parameters to send (credentials merged in) and the ``Authorization`` header value, if any."""

    params: Params
    authorization: str | None


#: ``(auth, params, audience, now) -> AuthResult``; ``audience`` is the token endpoint URL (JWT methods).
ClientAuthMethod = Callable[[ClientAuth, Mapping[str, object], str, float | None], AuthResult]


def _secret(auth: ClientAuth) -> str:
    # Config validation guarantees a secret for the secret-based methods; "" is a valid (empty) secret.
    return auth.secret if auth.secret is not None else ""


def client_secret_basic(auth: ClientAuth, params: Mapping[str, object], _aud: str, _now: float | None) -> AuthResult:
    """HTTP Basic with form-encoded (``strict``) or raw (``loose``) id and secret; nothing in the body."""
    return AuthResult(dict(params), basic_credentials(auth.client_id, _secret(auth), auth.encoding_mode))


def client_secret_post(auth: ClientAuth, params: Mapping[str, object], _aud: str, _now: float | None) -> AuthResult:
    """Id and secret as body parameters, after the others; a colliding key keeps its position (§3)."""
    merged = dict(params)
    merged[auth.id_param_name] = auth.client_id
    merged[auth.secret_param_name] = _secret(auth)
    return AuthResult(merged, None)


def none(auth: ClientAuth, params: Mapping[str, object], _aud: str, _now: float | None) -> AuthResult:
    """A public client (RFC 7591 ``none``): only the id, in the body."""
    merged = dict(params)
    merged[auth.id_param_name] = auth.client_id
    return AuthResult(merged, None)


def jwt_assertion(auth: ClientAuth, params: Mapping[str, object], audience: str, now: float | None) -> AuthResult:
    """RFC 7523 §2.2: ``client_assertion_type`` + a fresh signed ``client_assertion`` (``client_id`` too,
    which RFC 7521 §4.2 allows and several servers require)."""
    if auth.signing_key is None:
        raise ValueError(f"{auth.method} needs a signing key")
    assertion = build_client_assertion(
        auth.signing_key,
        client_id=auth.client_id,
        audience=audience,
        lifetime=auth.assertion_lifetime,
        now=now,
    )
    merged = dict(params)
    merged[auth.id_param_name] = auth.client_id
    merged["client_assertion_type"] = CLIENT_ASSERTION_TYPE
    merged["client_assertion"] = assertion
    return AuthResult(merged, None)


def tls_client_auth(auth: ClientAuth, params: Mapping[str, object], _aud: str, _now: float | None) -> AuthResult:
    """RFC 8705 §2.1.1 / §2.2.1 (PKI and self-signed alike): ``client_id`` in the body, no secret and no
    ``Authorization`` header; the certificate presented in the TLS handshake authenticates the client.

    A configured secret is deliberately ignored: sending it would hand a second, weaker credential to a server
    that did not ask for one. On the wire this is exactly :func:`none`; the proof is in the handshake.
    """
    return none(auth, params, _aud, _now)


CLIENT_AUTH_METHODS: Final[Mapping[str, ClientAuthMethod]] = {
    "client_secret_basic": client_secret_basic,
    "client_secret_post": client_secret_post,
    "none": none,
    "private_key_jwt": jwt_assertion,
    "client_secret_jwt": jwt_assertion,
    "tls_client_auth": tls_client_auth,
    "self_signed_tls_client_auth": tls_client_auth,
}


def apply_client_auth(
    auth: ClientAuth, params: Mapping[str, object], *, audience: str, now: float | None = None
) -> AuthResult:
    """Authenticate ``params`` with the client's configured method."""
    return CLIENT_AUTH_METHODS[auth.method](auth, params, audience, now)
