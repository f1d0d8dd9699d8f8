"""The dev IdP's signing key: one RSA key generated at start, published as a JWKS.

The key lives only in memory: a restarted dev IdP has a new key, so tokens from a previous run stop verifying,
which is what a developer expects of a throwaway authorization server. The ``kid`` is the RFC 7638 thumbprint of
the public key, so it is stable for a key and distinct between keys without any bookkeeping.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = [
    "SIGNING_ALG",
    "SigningKey",
    "generate_signing_key",
    "jwk_thumbprint",
    "load_signing_key",
    "signing_key_from",
]

#: The only algorithm the dev IdP signs access tokens with (RFC 9068 §2.1 requires RS256 support).
SIGNING_ALG = "RS256"

#: The members RFC 7638 §3.2 hashes, per key type, in the order the RFC requires (lexicographic).
_THUMBPRINT_MEMBERS: Mapping[str, tuple[str, ...]] = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
    "oct": ("k", "kty"),
}


@dataclass(frozen=True, slots=True)
class SigningKey:
    """An RSA private key with its ``kid`` and public JWK. The repr never shows the private key."""

    kid: str
    private_key: rsa.RSAPrivateKey = field(repr=False)
    public_jwk: Mapping[str, str] = field(repr=False)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The public JWKS document (RFC 7517 §5) that ``/jwks`` serves."""
        return {"keys": [dict(self.public_jwk)]}


def generate_signing_key(key_size: int = 2048) -> SigningKey:
    """Generate a fresh RSA key. Takes tens of milliseconds: tests share one key through a fixture."""
    return signing_key_from(rsa.generate_private_key(public_exponent=65537, key_size=key_size))


def load_signing_key(pem: bytes | str) -> SigningKey:
    """An RSA key from an unencrypted PEM, for a CI setup that wants the same ``kid`` across restarts."""
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    private_key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise ValueError("the dev IdP signs with RS256: the PEM must hold an RSA private key")
    return signing_key_from(private_key)


def signing_key_from(private_key: rsa.RSAPrivateKey) -> SigningKey:
    """Wrap an RSA private key with its public JWK and thumbprint ``kid``."""
    numbers = private_key.public_key().public_numbers()
    jwk = {"kty": "RSA", "e": _b64_uint(numbers.e), "n": _b64_uint(numbers.n)}
    kid = jwk_thumbprint(jwk)
    public_jwk = {**jwk, "kid": kid, "use": "sig", "alg": SIGNING_ALG}
    return SigningKey(kid=kid, private_key=private_key, public_jwk=public_jwk)


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a public JWK, base64url without padding."""
    members = _THUMBPRINT_MEMBERS.get(str(jwk.get("kty")))
    if members is None:
        raise ValueError(f"unsupported JWK key type {jwk.get('kty')!r}")
    canonical = json.dumps({name: jwk[name] for name in members}, separators=(",", ":"), sort_keys=True)
    return _b64(hashlib.sha256(canonical.encode("utf-8")).digest())


def _b64_uint(value: int) -> str:
    return _b64(value.to_bytes((value.bit_length() + 7) // 8 or 1, "big"))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
