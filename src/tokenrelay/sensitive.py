"""The one list of credential-like key names, shared by the log redaction backstop and ``check-config`` output.

Two lists drifted before: the log pipeline missed ``privateKey``, ``clientSecret`` and ``api_keys``, which the
configuration printer masked. Both now read :data:`SENSITIVE_KEYS` through :func:`normalise_key`, so a key is
masked in a log line exactly when it is masked in printed configuration.
"""

from __future__ import annotations

from typing import Final

__all__ = ["REDACTED", "SENSITIVE_KEYS", "is_sensitive_key", "normalise_key"]

#: What a masked value is replaced with, in log lines and in printed configuration alike.
REDACTED: Final = "***"

#: Credential-like key names as people write them. A key matches in any spelling — snake_case, camelCase,
#: kebab-case, any case (``clientSecret``, ``client-secret``, ``CLIENT_SECRET``, ``accessToken``, ``X-Api-Key``) —
#: because both sides are compared in :func:`normalise_key` form. ``token_fingerprint`` and other derived names are
#: deliberately absent: a fingerprint is how a token *may* appear.
_NAMES: Final = (
    "secret",
    "client_secret",
    "private_key",
    "password",
    "passphrase",
    "authorization",
    "proxy_authorization",
    "access_token",
    "refresh_token",
    "id_token",
    "token",
    "client_assertion",
    "assertion",
    "api_key",
    "api_keys",
    "x_api_key",
    "x_tokenrelay_key",
    "cookie",
    "set_cookie",
)


def normalise_key(key: str) -> str:
    """``Proxy-Authorization``, ``proxy_authorization`` and ``proxyAuthorization`` all -> ``proxyauthorization``."""
    return key.lower().replace("_", "").replace("-", "")


#: Keys whose values are masked, in :func:`normalise_key` form.
SENSITIVE_KEYS: Final = frozenset(normalise_key(name) for name in _NAMES)


def is_sensitive_key(key: str) -> bool:
    """Whether values under ``key`` are always masked (uncached: the log path memoises its own verdicts)."""
    return normalise_key(key) in SENSITIVE_KEYS
