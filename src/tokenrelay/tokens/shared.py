"""The cache's view of its L2 :class:`TokenStore`: adoption rules applied, store failures absorbed.

A store is an optimisation (fewer fetches across replicas), never a dependency: when it fails, the failure
is logged (operation and exception type only) and the cache carries on from the token endpoint alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager

import structlog

from tokenrelay.tokens.keys import CacheKey
from tokenrelay.tokens.model import CachedToken
from tokenrelay.tokens.policy import RefreshPolicy
from tokenrelay.tokens.schedule import Scheduler
from tokenrelay.tokens.store import TokenStore

__all__ = ["PEER_POLL_INTERVAL", "SharedTokens"]

_log = structlog.get_logger("tokenrelay.tokens")

#: How often a replica that did not get the store's fetch lock looks for the lock holder's token.
PEER_POLL_INTERVAL = 0.05


class SharedTokens:
    """Load, save, delete and lock through ``store`` on behalf of a :class:`TokenCache`."""

    def __init__(self, store: TokenStore, scheduler: Scheduler) -> None:
        self._store = store
        self._scheduler = scheduler

    async def adopt(self, key: CacheKey, policy: RefreshPolicy, *, skip: Collection[str | None]) -> CachedToken | None:
        """A stored token worth using instead of a fetch: not one of ``skip`` (the token we hold, the one we
        retired), still valid, and not itself due for refresh.
        """
        try:
            stored = await self._store.load(key)
        except Exception as exc:  # a broken store degrades to fetching, never to failing
            _failed(key, "load", exc)
            return None
        if stored is None or stored.fingerprint in skip:
            return None
        return self._scheduler.adopt(stored, policy)

    async def await_peer(
        self, key: CacheKey, policy: RefreshPolicy, *, skip: Collection[str | None]
    ) -> CachedToken | None:
        """Another holder of the store lock is fetching: wait (up to half the fetch timeout) for its token."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + policy.fetch_timeout / 2
        while loop.time() < deadline:
            await asyncio.sleep(PEER_POLL_INTERVAL)
            token = await self.adopt(key, policy, skip=skip)
            if token is not None:
                return token
        return None

    async def save(self, key: CacheKey, token: CachedToken) -> None:
        try:
            await self._store.save(key, self._scheduler.stored(token), token.expires_at - self._scheduler.clock())
        except Exception as exc:  # the token is still good locally
            _failed(key, "save", exc)

    async def delete(self, key: CacheKey, fingerprint: str) -> None:
        try:
            await self._store.compare_and_delete(key, fingerprint)
        except Exception as exc:  # the cache remembers the rejected fingerprint anyway
            _failed(key, "delete", exc)

    @asynccontextmanager
    async def lock(self, key: CacheKey, ttl: float) -> AsyncIterator[bool]:
        """The store's fetch lock; a store that cannot lock lets us fetch (availability over deduplication)."""
        try:
            manager = self._store.lock(key, ttl)
            owner = await manager.__aenter__()
        except Exception as exc:
            _failed(key, "lock", exc)
            yield True
            return
        try:
            yield owner
        finally:
            try:
                await manager.__aexit__(None, None, None)
            except Exception as exc:
                _failed(key, "unlock", exc)


def _failed(key: CacheKey, operation: str, exc: Exception) -> None:
    _log.warning("token.store_failed", key=str(key), operation=operation, error=type(exc).__name__)
