"""Read the ``exp`` claim of a JWT access token, for endpoints that send no ``expires_in``.

Only the payload segment is decoded and nothing is verified: the token is opaque to us, and ``exp`` is used
only to decide when to *stop using* it, so a wrong value can at worst make us refresh early or fall back to
the default lifetime. Anything unusual (not three segments, too long, bad base64 or JSON, ``exp`` not a
finite number) yields ``None``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math

__all__ = ["MAX_JWT_LENGTH", "jwt_expiry"]

#: Tokens longer than this are not decoded (bounded work per fetch, whatever the endpoint sends).
MAX_JWT_LENGTH = 16 * 1024


def jwt_expiry(token: str) -> float | None:
    """The token's ``exp`` (seconds since the epoch) when it is a JWS with a numeric ``exp``, else ``None``."""
    if len(token) > MAX_JWT_LENGTH:
        return None
    segments = token.split(".")
    if len(segments) != 3:
        return None
    payload = segments[1]
    try:
        raw = base64.b64decode(payload + "=" * (-len(payload) % 4), altchars=b"-_", validate=True)
        claims = json.loads(raw)
    except (ValueError, binascii.Error, RecursionError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    try:
        value = float(exp)
    except OverflowError:
        return None
    return value if math.isfinite(value) else None
