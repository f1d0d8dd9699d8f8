"""JWT client assertions for ``private_key_jwt`` and ``client_secret_jwt`` (RFC 7523 §2.2 / §3, OIDC Core §9).

A client proves who it is by sending a short-lived JWT signed with its private key (or with its client secret
as an HMAC key) instead of the secret itself. This module loads those keys once, at configuration time, into an
opaque :class:`SigningKey`, and signs a fresh assertion per token request.

Why the care with key material: a private key is the client's identity. A :class:`SigningKey` shows only its
algorithm, ``kid`` and the RFC 7638 thumbprint of its *public* key; every error raised while loading a key is a
:class:`~tokenrelay.grant.errors.ConfigError` whose message names what is wrong but never echoes the key text,
and it is raised ``from None`` because the underlying exceptions can carry the input (``JSONDecodeError.doc``).

Weak keys are refused up front (RSA under 2048 bits, HMAC secrets shorter than the hash output, RFC 7518 §3.2
and §3.3) rather than signed with and warned about on every request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import TypeAlias

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from tokenrelay.grant.errors import ConfigError

__all__ = [
    "CLIENT_ASSERTION_TYPE",
    "SigningKey",
    "build_client_assertion",
    "hmac_key",
    "load_private_key",
    "load_private_key_file",
    "public_jwk",
]

#: The ``client_assertion_type`` form parameter that accompanies a JWT client assertion (RFC 7523 §2.2).
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

_PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

_RSA_ALGS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_MIN_RSA_BITS = 2048  # RFC 7518 §3.3 / §3.5
_EC_ALG_BY_CURVE = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
_JWK_CRV_BY_CURVE = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
_HMAC_DIGEST_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}  # RFC 7518 §3.2: key >= hash output


@dataclass(frozen=True, slots=True, eq=False)
class SigningKey:
    """A key that signs client assertions. Opaque: build it with the ``load_*`` functions or :func:`hmac_key`.

    ``repr``/``str`` show the algorithm, the ``kid`` and the public key's RFC 7638 thumbprint (``hmac`` for a
    shared secret), so a key can be identified in logs and config dumps without being disclosed.
    """

    alg: str
    kid: str | None
    _key: _PrivateKey | bytes = field(repr=False)

    @property
    def thumbprint(self) -> str | None:
        """RFC 7638 SHA-256 thumbprint of the public JWK; ``None`` for an HMAC secret (it has no public half)."""
        if isinstance(self._key, bytes):
            return None
        return _thumbprint(_public_members(self._key))

    def __repr__(self) -> str:
        shown = "hmac" if isinstance(self._key, bytes) else f"thumbprint={self.thumbprint!r}"
        return f"SigningKey(alg={self.alg!r}, kid={self.kid!r}, {shown})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SigningKey):
            return NotImplemented
        if (self.alg, self.kid) != (other.alg, other.kid):
            return False
        mine, theirs = self._key, other._key
        if isinstance(mine, bytes) and isinstance(theirs, bytes):
            return hmac.compare_digest(mine, theirs)
        return self.thumbprint == other.thumbprint  # None for HMAC: never equal to an asymmetric key

    def __hash__(self) -> int:
        return hash((self.alg, self.kid, self.thumbprint))


def load_private_key(text: str, *, alg: str | None = None, kid: str | None = None) -> SigningKey:
    """Load an unencrypted PEM (PKCS#8, PKCS#1 RSA, SEC1 EC) or a private JWK (RSA/EC) as a signing key.

    ``alg`` defaults to the JWK's ``alg``, else to the key type's natural algorithm (RSA -> RS256, P-256 ->
    ES256, P-384 -> ES384, P-521 -> ES512); ``kid`` defaults to the JWK's ``kid``. An explicit argument wins.
    """
    stripped = text.lstrip("\ufeff").strip()  # a BOM is what some editors save a JWK file with
    if stripped.startswith("{"):
        key, jwk_alg, jwk_kid = _from_jwk(stripped)
        alg = alg if alg is not None else jwk_alg
        kid = kid if kid is not None else jwk_kid
    elif "-----BEGIN" in stripped:
        key = _from_pem(stripped)
    else:
        raise ConfigError("not a PEM private key or a JWK JSON object")
    return SigningKey(alg=_check_alg(key, alg), kid=_check_kid(kid), _key=key)


def load_private_key_file(
    path: str | os.PathLike[str], *, alg: str | None = None, kid: str | None = None
) -> SigningKey:
    """Read a PEM or JWK private key from ``path``; errors name the path, never the file's content."""
    shown = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except UnicodeDecodeError:
        raise ConfigError(f"private key file {shown!r} is not text (a PEM or JWK file is expected)") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"cannot read private key file {shown!r}: {reason}") from None
    try:
        return load_private_key(text, alg=alg, kid=kid)
    except ConfigError as exc:
        raise ConfigError(f"private key file {shown!r}: {exc.errors[0].message}") from None


def hmac_key(secret: str, *, alg: str = "HS256") -> SigningKey:
    """A ``client_secret_jwt`` key: the client secret's UTF-8 bytes as the HMAC key (RFC 7523 §2.2, OIDC §9).

    RFC 7518 §3.2 requires a key at least as long as the hash output (32/48/64 bytes for HS256/384/512);
    a shorter secret is refused here instead of producing assertions a strict server rejects.
    """
    if alg not in _HMAC_DIGEST_BYTES:
        raise ConfigError(f"algorithm {_short(alg)} is not an HMAC algorithm (HS256, HS384 or HS512)")
    data = secret.encode("utf-8")
    minimum = _HMAC_DIGEST_BYTES[alg]
    if len(data) < minimum:
        raise ConfigError(f"the client secret is {len(data)} bytes; {alg} needs at least {minimum} (RFC 7518 §3.2)")
    return SigningKey(alg=alg, kid=None, _key=data)


def build_client_assertion(
    key: SigningKey,
    *,
    client_id: str,
    audience: str,
    lifetime: float = 60.0,
    now: float | None = None,
) -> str:
    """Sign a fresh client assertion: ``iss = sub = client_id``, ``aud`` = the token endpoint URL.

    ``jti`` carries 192 random bits so the server can reject replays (RFC 7523 §3 item 7); ``iat``/``exp`` are
    whole seconds of the wall clock (``now`` overrides it, for tests), ``nbf`` is omitted.
    """
    if not client_id:
        raise ConfigError("client_id is required to build a client assertion")
    if not audience:
        raise ConfigError("audience (the token endpoint URL) is required to build a client assertion")
    if not math.isfinite(lifetime) or lifetime < 1:
        raise ConfigError(f"assertion lifetime must be at least 1 second, got {lifetime!r}")
    issued_at = int(time.time() if now is None else now)
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": secrets.token_urlsafe(24),
        "iat": issued_at,
        "exp": issued_at + int(lifetime),
    }
    headers = {"typ": "JWT"} if key.kid is None else {"typ": "JWT", "kid": key.kid}
    return jwt.encode(claims, key._key, algorithm=key.alg, headers=headers)


def public_jwk(key: SigningKey) -> dict[str, str]:
    """The public JWK of an asymmetric key, with ``alg``, ``use=sig`` and ``kid`` (when the key has one).

    This is what a client registers with its authorization server (inline or through a ``jwks_uri``).
    """
    if isinstance(key._key, bytes):
        raise ConfigError("an HMAC (client_secret_jwt) key has no public JWK")
    jwk = _public_members(key._key)
    jwk.update({"alg": key.alg, "use": "sig"})
    if key.kid is not None:
        jwk["kid"] = key.kid
    return jwk


def _from_pem(text: str) -> _PrivateKey:
    if "-----BEGIN ENCRYPTED PRIVATE KEY-----" in text or "Proc-Type: 4,ENCRYPTED" in text:
        raise ConfigError("the PEM private key is encrypted; supply it unencrypted (from a secret store)")
    if "PRIVATE KEY-----" not in text:
        raise ConfigError("the PEM holds no private key (a public key or certificate cannot sign)")
    try:
        key = serialization.load_pem_private_key(text.encode("utf-8"), password=None)
    except Exception:  # the one boundary for cryptography's parse errors (ValueError, TypeError, ...)
        raise ConfigError("the PEM private key cannot be parsed") from None
    return _supported(key)


def _from_jwk(text: str) -> tuple[_PrivateKey, str | None, str | None]:
    try:
        obj: dict[str, object] = json.loads(text)  # ``text`` starts with "{": an object or an error
    except (ValueError, RecursionError):
        raise ConfigError("the JWK is not valid JSON") from None
    if "keys" in obj:
        raise ConfigError("a JWK Set was given; supply the single private JWK to sign with")
    kty = obj.get("kty")
    if kty not in ("RSA", "EC"):
        hint = "; use client_secret_jwt for a shared secret" if kty == "oct" else ""
        raise ConfigError(f"unsupported JWK key type {_short(kty)} (RSA or EC expected){hint}")
    if "d" not in obj:
        raise ConfigError("the JWK is a public key; the private key (with 'd') is needed to sign")
    if obj.get("use", "sig") != "sig":
        raise ConfigError(f"the JWK's use is {_short(obj.get('use'))}, not 'sig'")
    loader = RSAAlgorithm.from_jwk if kty == "RSA" else ECAlgorithm.from_jwk
    try:
        key = loader(obj)
    except Exception:  # the one boundary for PyJWT/cryptography JWK errors; their messages may quote members
        raise ConfigError(f"the {kty} JWK is malformed or inconsistent") from None
    return _supported(key), _opt_str(obj, "alg"), _opt_str(obj, "kid")


def _supported(key: object) -> _PrivateKey:
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < _MIN_RSA_BITS:
            raise ConfigError(f"the RSA key has {key.key_size} bits; at least {_MIN_RSA_BITS} are required")
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.name not in _EC_ALG_BY_CURVE:
            raise ConfigError(f"unsupported elliptic curve {key.curve.name!r} (P-256, P-384 or P-521 expected)")
        return key
    raise ConfigError(f"unsupported private key type {type(key).__name__} (RSA or EC expected)")


def _check_alg(key: _PrivateKey, alg: str | None) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        if alg is None:
            return "RS256"
        if alg in _RSA_ALGS:
            return alg
        raise ConfigError(f"algorithm {_short(alg)} cannot be used with an RSA key ({', '.join(sorted(_RSA_ALGS))})")
    expected = _EC_ALG_BY_CURVE[key.curve.name]
    if alg is None or alg == expected:
        return expected
    crv = _JWK_CRV_BY_CURVE[key.curve.name]
    raise ConfigError(f"algorithm {_short(alg)} cannot be used with an EC {crv} key ({expected} expected)")


def _check_kid(kid: str | None) -> str | None:
    if kid is not None and not kid:
        raise ConfigError("kid must not be empty")
    return kid


def _opt_str(obj: dict[str, object], name: str) -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"the JWK's {name!r} is not a string")
    return value


def _public_members(key: _PrivateKey) -> dict[str, str]:
    """The RFC 7638 required members of the public JWK, in lexicographic order (RFC 7518 §6.2.1 / §6.3.1)."""
    if isinstance(key, rsa.RSAPrivateKey):
        numbers = key.public_key().public_numbers()
        return {"e": _b64_uint(numbers.e), "kty": "RSA", "n": _b64_uint(numbers.n)}
    point = key.public_key().public_numbers()
    size = (key.curve.key_size + 7) // 8  # coordinates are fixed-length (RFC 7518 §6.2.1.2)
    return {
        "crv": _JWK_CRV_BY_CURVE[key.curve.name],
        "kty": "EC",
        "x": _b64(point.x.to_bytes(size, "big")),
        "y": _b64(point.y.to_bytes(size, "big")),
    }


def _thumbprint(members: dict[str, str]) -> str:
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return _b64(hashlib.sha256(canonical).digest())


def _b64_uint(value: int) -> str:
    return _b64(value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _short(value: object) -> str:
    """A JWK member or algorithm name quoted in a message, only when short: a key file's fields are not echoed."""
    return repr(value) if value is None or (isinstance(value, str) and len(value) <= 16) else "(not shown)"
