"""Fingerprints: how a token or secret may appear in logs, metrics, errors and the admin API.

A fingerprint identifies a credential well enough to correlate log lines ("the token that got the 401 is the one
fetched at 10:02") without revealing anything usable: 8 hex characters of its SHA-256 (32 bits) cannot be reversed
and are too short to confirm a guess of a high-entropy token offline with any confidence.
"""

from __future__ import annotations

import hashlib

__all__ = ["fingerprint"]


def fingerprint(secret: str | bytes) -> str:
    """The first 8 hex characters of the SHA-256 of ``secret``."""
    data = secret.encode("utf-8") if isinstance(secret, str) else secret
    return hashlib.sha256(data).hexdigest()[:8]
