"""The token cache between the proxy and the grant core (see ``docs/token-cache.md``).

``proxy/`` asks :class:`TokenCache` for a token by :class:`CacheKey`; the cache fetches through a
:data:`Fetcher` (``fetcher_for`` adapts the grant core), refreshes ahead of expiry, backs off on failure
and never hands out an expired token.
"""

from __future__ import annotations

from tokenrelay.tokens.cache import FetchObserver, TokenCache
from tokenrelay.tokens.grant_source import credential_digest, fetcher_for, issued_from, key_for_client, request_shape
from tokenrelay.tokens.jwt_expiry import jwt_expiry
from tokenrelay.tokens.keys import CacheKey, cache_key
from tokenrelay.tokens.model import CachedToken, Fetcher, IssuedToken, KeyStatus, StoredToken, TokenUnavailable
from tokenrelay.tokens.policy import RefreshPolicy, policy_for_profile
from tokenrelay.tokens.store import MemoryTokenStore, TokenStore

__all__ = [
    "CacheKey",
    "CachedToken",
    "FetchObserver",
    "Fetcher",
    "IssuedToken",
    "KeyStatus",
    "MemoryTokenStore",
    "RefreshPolicy",
    "StoredToken",
    "TokenCache",
    "TokenStore",
    "TokenUnavailable",
    "cache_key",
    "credential_digest",
    "fetcher_for",
    "issued_from",
    "jwt_expiry",
    "key_for_client",
    "policy_for_profile",
    "request_shape",
]
