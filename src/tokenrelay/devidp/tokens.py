"""Access tokens the dev IdP issues: RS256 JWTs shaped per RFC 9068 (JWT profile for access tokens)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt

from tokenrelay.devidp.keys import SIGNING_ALG, SigningKey
from tokenrelay.fingerprints import fingerprint

__all__ = ["ACCESS_TOKEN_TYP", "IssuedToken", "decode_own_token", "mint_access_token"]

#: RFC 9068 §2.1: the ``typ`` header that tells an access token from an ID token.
ACCESS_TOKEN_TYP = "at+jwt"  # noqa: S105 (a media type, not a secret)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A freshly minted token. ``token`` is hidden from the repr; log ``fingerprint`` instead."""

    token: str = field(repr=False)
    jti: str
    client_id: str
    scope: str
    audience: str | tuple[str, ...]
    issued_at: int
    expires_at: int

    @property
    def fingerprint(self) -> str:
        """First 8 hex chars of the token's SHA-256: the only form of it fit for logs."""
        return fingerprint(self.token)


def mint_access_token(
    key: SigningKey,
    *,
    issuer: str,
    client_id: str,
    scope: Sequence[str],
    audience: str | Sequence[str],
    lifetime: int,
    now: float | None = None,
) -> IssuedToken:
    """Sign an access token for ``client_id``. A ``lifetime`` <= 0 gives a token that is already expired."""
    issued_at = int(time.time() if now is None else now)
    aud: str | tuple[str, ...] = audience if isinstance(audience, str) else tuple(audience)
    aud_claim: str | list[str] = aud if isinstance(aud, str) else (aud[0] if len(aud) == 1 else list(aud))
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": client_id,
        "aud": aud_claim,
        "exp": issued_at + lifetime,
        "iat": issued_at,
        "jti": secrets.token_urlsafe(16),
        "client_id": client_id,
    }
    if scope:
        claims["scope"] = " ".join(scope)
    headers = {"kid": key.kid, "typ": ACCESS_TOKEN_TYP}
    token = jwt.encode(claims, key.private_key, algorithm=SIGNING_ALG, headers=headers)
    return IssuedToken(
        token=token,
        jti=claims["jti"],
        client_id=client_id,
        scope=claims.get("scope", ""),
        audience=aud,
        issued_at=issued_at,
        expires_at=claims["exp"],
    )


def decode_own_token(key: SigningKey, token: str) -> dict[str, Any] | None:
    """The claims of a token this IdP signed (expired or not), or ``None`` if it is not one of ours.

    Revocation and introspection must recognise expired tokens too, so ``exp`` is not checked here.
    """
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.private_key.public_key(),
            algorithms=[SIGNING_ALG],
            options={"verify_exp": False, "verify_aud": False, "require": ["jti", "client_id", "exp"]},
        )
    except jwt.PyJWTError:
        return None
    return claims
