"""The bridge from the grant core to the cache: fetchers, credential digests and keys for a client.

The cache knows nothing of OAuth configuration; it calls a :data:`Fetcher` and keys tokens by a
:class:`CacheKey`. This module derives both from a :class:`ClientCredentials`, so the key covers every input
of the request the fetcher sends, and a credential appears in the key only as a digest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tokenrelay.tokens.keys import CacheKey, cache_key, digest_credential
from tokenrelay.tokens.model import Fetcher, IssuedToken

if TYPE_CHECKING:
    from tokenrelay.grant.client_credentials import ClientCredentials
    from tokenrelay.grant.config import OAuth2Config
    from tokenrelay.grant.token import AccessToken

__all__ = ["credential_digest", "fetcher_for", "issued_from", "key_for_client", "request_shape"]


def fetcher_for(client: ClientCredentials, params: Mapping[str, object]) -> Fetcher:
    """A fetcher that requests a token with ``params`` (a private copy: later changes to the mapping do not count).

    The grant core's errors propagate unchanged; the cache classifies them (``invalid_client`` and
    ``unauthorized_client`` are permanent).
    """
    frozen = dict(params)

    async def fetch() -> IssuedToken:
        token = await client.get_token(frozen)
        return issued_from(token, client.now_ms() / 1000)

    return fetch


def issued_from(token: AccessToken, now: float) -> IssuedToken:
    """``expires_in`` = the grant core's wall-clock ``expires_at`` minus ``now``; ``None`` when unknown."""
    expires_at = token.expires_at
    expires_in = None if expires_at is None else expires_at.timestamp() - now
    return IssuedToken(access_token=token.access_token, expires_in=expires_in)


def credential_digest(config: OAuth2Config) -> str:
    """Hex SHA-256 over the client's credential material: secret, private key (inline or the file's bytes),
    and the mTLS certificate and key files. A rotated secret or key file gives a new digest, hence a new key;
    the material itself is never kept. An unreadable file contributes its path and the reason, so the key is
    still stable while the fetch reports the real problem.
    """
    client, http = config.client, config.http
    return digest_credential(
        secret=_secret_bytes(client.secret),
        private_key=_secret_bytes(client.private_key),
        private_key_file=_file_bytes(client.private_key_file),
        cert_file=_file_bytes(http.cert_file),
        key_file=_file_bytes(http.key_file),
    )


async def key_for_client(
    profile: str,
    client: ClientCredentials,
    *,
    scope: str | Sequence[str] | None = None,
    audience: str | None = None,
    resource: Sequence[str] = (),
    params: Mapping[str, object] | None = None,
) -> CacheKey:
    """The cache key of the tokens ``client`` gets with these parameters (resolves discovery if configured)."""
    config = client.config
    return cache_key(
        profile,
        token_endpoint=await client.resolve_token_endpoint(),
        client_id=config.client.id,
        credential_digest=credential_digest(config),
        auth_method=config.options.auth_method,
        scope=scope,
        audience=audience,
        resource=resource,
        params=params or {},
        extra=request_shape(config),
    )


def request_shape(config: OAuth2Config) -> dict[str, object]:
    """The non-secret settings that change the token request besides its parameters (a cache key's ``extra``).

    The one list of them, for the proxy's compiled profiles and for :func:`key_for_client` alike. Settings that
    only change how the request travels (timeout, CA, verification) are left out, so changing them keeps the
    token; the client certificate is in, because over mTLS it is part of the client's identity (RFC 8705).
    """
    client, http = config.client, config.http
    return {
        "options": config.options.model_dump(mode="json"),
        "headers": {name.lower(): str(value) for name, value in http.headers.items()},
        "id_param_name": client.id_param_name,
        "secret_param_name": client.secret_param_name,
        "key_id": client.key_id,
        "assertion_alg": client.assertion_alg,
        "cert_file": http.cert_file,
        "key_file": http.key_file,
    }


def _secret_bytes(value: object) -> bytes | None:
    if value is None:
        return None
    get = getattr(value, "get_secret_value", None)
    text = get() if callable(get) else value
    return str(text).encode("utf-8")


def _file_bytes(path: str | None) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        return f"unreadable:{path}:{type(exc).__name__}".encode()
