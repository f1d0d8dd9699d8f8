"""Cache keys: the identity of a token is *every* input of the request that obtained it.

Peers got this wrong in both directions (Dapr keys on client id + scopes only; httpx-auth ignored the
secret until its #97): a key that leaves an input out hands one client's token to another, and a key that
depends on incidental details (dict order) fetches the same token twice. So the key is the SHA-256 of a
canonical JSON document of the token endpoint, client id, a digest of the credential (never the credential),
the auth method, scope, audience, resources and extra parameters. Parameter *names* are sorted; value lists
(scope as a list, resources, repeated params) keep the order in which they are sent, because the endpoint
sees that order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["CacheKey", "cache_key", "digest_credential"]

#: Bumped whenever the canonical form changes, so old shared-store entries are never matched by mistake.
_KEY_VERSION = 1


@dataclass(frozen=True, slots=True)
class CacheKey:
    """The identity of a cached token.

    ``digest`` is the hex SHA-256 of the canonical request inputs. ``profile`` names the configuration the key
    came from, for display and metrics; it is part of equality, so each profile owns its cache entry (and its
    own status and readiness), even when two profiles have identical inputs and therefore the same digest.
    """

    profile: str
    digest: str

    @property
    def short_digest(self) -> str:
        """The first 12 hex characters: how admin output, metric labels and logs name the key (one spelling)."""
        return self.digest[:12]

    def __str__(self) -> str:
        return f"{self.profile}:{self.short_digest}"


def cache_key(
    profile: str,
    *,
    token_endpoint: str,
    client_id: str,
    credential_digest: str,
    auth_method: str,
    scope: str | Sequence[str] | None,
    audience: str | None,
    resource: Sequence[str],
    params: Mapping[str, object],
    extra: Mapping[str, object] | None = None,
) -> CacheKey:
    """Derive the key of the token obtained with these request inputs.

    ``scope`` is kept as given: a string as is, a list in its order (the grant core joins it in that
    order). ``extra`` takes any other input that shapes the request (e.g. the body format or custom
    headers) so that callers can add inputs without a new key version.
    """
    document = {
        "v": _KEY_VERSION,
        "token_endpoint": token_endpoint,
        "client_id": client_id,
        "credential": credential_digest,
        "auth_method": auth_method,
        "scope": _canonical(scope),
        "audience": audience,
        "resource": list(resource),
        "params": _canonical(params),
        "extra": _canonical(extra or {}),
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return CacheKey(profile=profile, digest=hashlib.sha256(text.encode("ascii")).hexdigest())


def digest_credential(
    *,
    secret: bytes | None = None,
    private_key: bytes | None = None,
    private_key_file: bytes | None = None,
    cert_file: bytes | None = None,
    key_file: bytes | None = None,
) -> str:
    """Hex SHA-256 identifying a credential by its material (``None`` = absent; files given by their content).

    The one derivation of the ``credential_digest`` a key is built with, whoever resolved the material (the
    proxy's secret sources, or :func:`tokenrelay.tokens.credential_digest` for a library client), so equal
    credentials give equal digests. Each part is named and length-prefixed, so no two different sets of parts
    can hash alike, and the material itself is never kept.
    """
    parts = {
        "secret": secret,
        "private_key": private_key,
        "private_key_file": private_key_file,
        "cert_file": cert_file,
        "key_file": key_file,
    }
    hasher = hashlib.sha256(b"tokenrelay-credential-v1\n")
    for name, value in parts.items():
        hasher.update(name.encode("ascii"))
        if value is None:
            hasher.update(b"\x00-")
        else:
            hasher.update(b"\x01" + len(value).to_bytes(8, "big") + value)
    return hasher.hexdigest()


def _canonical(value: object) -> object:
    """A JSON-ready form of ``value``: mappings by sorted key, sequences in order, scalars typed.

    Types stay distinct (``1``, ``"1"``, ``True`` are different inputs: the grant core encodes them
    differently). Anything else is represented by its type name and ``str``, which is stable for the value
    types a configuration can hold.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return {"float": repr(value)}
    if isinstance(value, Mapping):
        return {str(name): _canonical(item) for name, item in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [_canonical(item) for item in value]
    return {type(value).__name__: str(value)}
