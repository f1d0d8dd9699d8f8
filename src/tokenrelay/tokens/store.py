"""Token stores: the optional second level (L2) behind the cache's always-present local dict (L1).

A store lets several proxy replicas share tokens and coordinate fetches, as Tyk and Kong Enterprise do with
Redis. The cache consults it on a miss and before a refresh (another replica may have refreshed already),
saves every token it fetches, deletes rejected tokens with a compare-and-delete (never a token another
replica has already replaced), and takes :meth:`TokenStore.lock` around a fetch so that one replica fetches
while the others wait for its result. Times are wall-clock: monotonic clocks do not cross processes.

:class:`MemoryTokenStore` is the default: process-local, so it adds nothing across replicas, but it keeps the
cache on the same code path a shared store uses.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol, runtime_checkable

from tokenrelay.tokens.keys import CacheKey
from tokenrelay.tokens.model import StoredToken

__all__ = ["MemoryTokenStore", "TokenStore"]


@runtime_checkable
class TokenStore(Protocol):
    """A shared token store (L2). Implementations must be safe to call concurrently from one event loop."""

    async def load(self, key: CacheKey) -> StoredToken | None:
        """The stored token for ``key``, or ``None`` (missing or past its TTL)."""
        ...

    async def save(self, key: CacheKey, token: StoredToken, ttl: float) -> None:
        """Store ``token`` for ``key``, replacing any other, for at most ``ttl`` seconds."""
        ...

    async def compare_and_delete(self, key: CacheKey, fingerprint: str) -> bool:
        """Delete the stored token only if its fingerprint is ``fingerprint``; return whether it did."""
        ...

    def lock(self, key: CacheKey, ttl: float) -> AbstractAsyncContextManager[bool]:
        """Try to take the fetch lock of ``key`` (held at most ``ttl`` s); the context yields whether we got it."""
        ...


class MemoryTokenStore:
    """The process-local store: a dict with TTLs and non-blocking per-key locks."""

    def __init__(self, *, wall_clock: Callable[[], float] = time.time) -> None:
        self._wall_clock = wall_clock
        self._tokens: dict[CacheKey, tuple[StoredToken, float]] = {}
        self._locks: set[CacheKey] = set()

    async def load(self, key: CacheKey) -> StoredToken | None:
        item = self._tokens.get(key)
        if item is None:
            return None
        token, deadline = item
        if self._wall_clock() >= deadline:
            del self._tokens[key]
            return None
        return token

    async def save(self, key: CacheKey, token: StoredToken, ttl: float) -> None:
        now = self._wall_clock()
        self._purge(now)
        self._tokens[key] = (token, now + max(0.0, ttl))

    async def compare_and_delete(self, key: CacheKey, fingerprint: str) -> bool:
        item = self._tokens.get(key)
        if item is None or item[0].fingerprint != fingerprint:
            return False
        del self._tokens[key]
        return True

    def lock(self, key: CacheKey, ttl: float) -> AbstractAsyncContextManager[bool]:
        """Non-blocking: yields ``False`` at once while another holder has the key's lock."""
        return self._lock(key)

    @asynccontextmanager
    async def _lock(self, key: CacheKey) -> AsyncIterator[bool]:
        if key in self._locks:
            yield False
            return
        self._locks.add(key)
        try:
            yield True
        finally:
            self._locks.discard(key)

    def __len__(self) -> int:
        return len(self._tokens)

    def _purge(self, now: float) -> None:
        """Drop expired entries so keys that are never read again (after a reload) do not accumulate."""
        expired = [key for key, (_, deadline) in self._tokens.items() if now >= deadline]
        for key in expired:
            del self._tokens[key]
