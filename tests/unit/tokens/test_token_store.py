"""The L2 store: MemoryTokenStore semantics and how the cache uses a store (shared, broken, racing)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest

from tests.unit.tokens.tokencache_support import (
    POLICY,
    FakeClock,
    ScriptedFetcher,
    make_cache,
    make_key,
    tokens,
)
from tokenrelay.tokens import CacheKey, MemoryTokenStore, RefreshPolicy, StoredToken, TokenCache, TokenStore


def stored(fp: str = "aaaa0000", expires: float = 2000.0) -> StoredToken:
    return StoredToken(access_token="secret-stored", fingerprint=fp, wall_obtained_at=0.0, wall_expires_at=expires)


async def test_memory_store_round_trip_and_ttl() -> None:
    clock = FakeClock(now=0.0)
    store, key = MemoryTokenStore(wall_clock=clock), make_key()
    assert await store.load(key) is None
    await store.save(key, stored(), ttl=10.0)
    assert (await store.load(key)) == stored()
    clock.advance(10.0)
    assert await store.load(key) is None
    assert len(store) == 0


async def test_memory_store_purges_expired_entries_on_save() -> None:
    clock = FakeClock(now=0.0)
    store = MemoryTokenStore(wall_clock=clock)
    await store.save(make_key("a"), stored(), ttl=1.0)
    clock.advance(2.0)
    await store.save(make_key("b"), stored(), ttl=1.0)
    assert len(store) == 1


async def test_memory_store_compare_and_delete() -> None:
    store, key = MemoryTokenStore(), make_key()
    await store.save(key, stored("aaaa0000"), ttl=60.0)
    assert await store.compare_and_delete(key, "bbbb1111") is False
    assert await store.compare_and_delete(key, "aaaa0000") is True
    assert await store.compare_and_delete(key, "aaaa0000") is False


async def test_memory_store_lock_is_exclusive_per_key() -> None:
    store = MemoryTokenStore()
    assert isinstance(store, TokenStore)
    async with (
        store.lock(make_key("a"), 5.0) as first,
        store.lock(make_key("a"), 5.0) as second,
        store.lock(make_key("b"), 5.0) as other,
    ):
        assert (first, second, other) == (True, False, True)
    async with store.lock(make_key("a"), 5.0) as again:
        assert again is True


async def test_replica_adopts_a_token_from_the_shared_store_without_fetching() -> None:
    clock = FakeClock()
    shared = MemoryTokenStore(wall_clock=clock.wall)
    a, b = make_cache(clock, store=shared), make_cache(clock, store=shared)
    fetch_a, fetch_b = ScriptedFetcher(tokens(2)), ScriptedFetcher(tokens(2))
    token_a = await a.get(make_key(), fetch_a, POLICY)
    clock.advance(10.0)
    token_b = await b.get(make_key(), fetch_b, POLICY)
    assert token_b.fingerprint == token_a.fingerprint
    assert token_b.expires_at == pytest.approx(token_a.expires_at)
    assert token_b.obtained_at == pytest.approx(token_a.obtained_at)
    assert (fetch_a.calls, fetch_b.calls) == (1, 0)


async def test_replicas_racing_on_a_cold_key_fetch_once() -> None:
    clock = FakeClock()
    shared = MemoryTokenStore(wall_clock=clock.wall)
    a, b = make_cache(clock, store=shared), make_cache(clock, store=shared)
    gate = asyncio.Event()
    fetch_a, fetch_b = ScriptedFetcher(tokens(2), gate=gate), ScriptedFetcher(tokens(2))
    first = asyncio.create_task(a.get(make_key(), fetch_a, POLICY))
    await fetch_a.started.wait()
    second = asyncio.create_task(b.get(make_key(), fetch_b, POLICY))
    await asyncio.sleep(0.01)
    gate.set()
    token_a, token_b = await asyncio.gather(first, second)
    assert token_a.fingerprint == token_b.fingerprint
    assert (fetch_a.calls, fetch_b.calls) == (1, 0)


async def test_replica_fetches_itself_when_the_lock_holder_never_delivers() -> None:
    clock = FakeClock()
    shared = MemoryTokenStore(wall_clock=clock.wall)
    a, b = make_cache(clock, store=shared), make_cache(clock, store=shared)
    fetch_a = ScriptedFetcher(tokens(1), gate=asyncio.Event())
    fetch_b = ScriptedFetcher(tokens(2)[1:])
    hung = asyncio.create_task(a.get(make_key(), fetch_a, POLICY))
    await fetch_a.started.wait()
    token = await b.get(make_key(), fetch_b, RefreshPolicy(fetch_timeout=0.2))
    assert token.access_token == "secret-access-token-2"
    hung.cancel()
    await a.aclose()


async def test_expired_stored_token_is_not_adopted() -> None:
    clock = FakeClock()
    shared = MemoryTokenStore(wall_clock=lambda: 0.0)  # the store's own TTL never hides it
    await shared.save(make_key(), stored(expires=clock.wall() - 1), ttl=60.0)
    cache = make_cache(clock, store=shared)
    token = await cache.get(make_key(), ScriptedFetcher(tokens(1)), POLICY)
    assert token.access_token == "secret-access-token-1"


async def test_stored_token_due_for_refresh_is_not_adopted() -> None:
    clock = FakeClock()
    shared = MemoryTokenStore(wall_clock=clock.wall)
    a, b = make_cache(clock, store=shared), make_cache(clock, store=shared)
    first = await a.get(make_key(), ScriptedFetcher(tokens(1)), POLICY)
    clock.now = first.refresh_at + 1
    fetch_b = ScriptedFetcher(tokens(2)[1:])
    token = await b.get(make_key(), fetch_b, POLICY)
    assert token.access_token == "secret-access-token-2"


async def test_refresh_prefers_a_newer_token_another_replica_stored() -> None:
    clock = FakeClock()
    shared = MemoryTokenStore(wall_clock=clock.wall)
    a, b = make_cache(clock, store=shared), make_cache(clock, store=shared)
    fetch_a, fetch_b = ScriptedFetcher(tokens(3)), ScriptedFetcher(tokens(3)[1:])
    old = await a.get(make_key(), fetch_a, POLICY)
    await b.get(make_key(), fetch_b, POLICY)  # adopts token 1
    clock.now = old.refresh_at
    await a.get(make_key(), fetch_a, POLICY)  # a refreshes: token 2 in the store
    for _ in range(10):
        await asyncio.sleep(0)
    await b.get(make_key(), fetch_b, POLICY)  # b is due too: adopts token 2 instead of fetching
    for _ in range(10):
        await asyncio.sleep(0)
    assert (await b.get(make_key(), fetch_b, POLICY)).access_token == "secret-access-token-2"
    assert fetch_b.calls == 0


async def test_invalidated_token_is_deleted_from_the_store_and_never_readopted() -> None:
    clock = FakeClock()
    shared = MemoryTokenStore(wall_clock=clock.wall)
    cache, key = make_cache(clock, store=shared), make_key()
    fetch = ScriptedFetcher(tokens(2))
    used = await cache.get(key, fetch, POLICY)
    assert await cache.invalidate(key, used)
    assert await shared.load(key) is None
    await shared.save(key, StoredToken(used.access_token, used.fingerprint, clock.wall(), clock.wall() + 3000), 3000)
    fresh = await cache.get(key, fetch, POLICY)
    assert fresh.fingerprint != used.fingerprint
    assert fetch.calls == 2


class BrokenStore:
    """Every operation fails: the cache must keep working from the endpoint alone."""

    async def load(self, key: CacheKey) -> StoredToken | None:
        raise ConnectionError("store down")

    async def save(self, key: CacheKey, token: StoredToken, ttl: float) -> None:
        raise ConnectionError("store down")

    async def compare_and_delete(self, key: CacheKey, fingerprint: str) -> bool:
        raise ConnectionError("store down")

    def lock(self, key: CacheKey, ttl: float) -> AbstractAsyncContextManager[bool]:
        raise ConnectionError("store down")


class UnlockFails(MemoryTokenStore):
    def lock(self, key: CacheKey, ttl: float) -> AbstractAsyncContextManager[bool]:
        @asynccontextmanager
        async def broken() -> AsyncIterator[bool]:
            yield True
            raise ConnectionError("unlock failed")

        return broken()


@pytest.mark.parametrize("store", [BrokenStore(), UnlockFails()])
async def test_a_broken_store_degrades_to_fetching(store: TokenStore) -> None:
    from structlog.testing import capture_logs

    cache, key, fetch = make_cache(FakeClock(), store=store), make_key(), ScriptedFetcher(tokens(2))
    with capture_logs() as logs:
        token = await cache.get(key, fetch, POLICY)
        assert await cache.invalidate(key, token)
    assert fetch.calls == 1
    assert any(entry["event"] == "token.store_failed" for entry in logs)


async def test_expired_token_is_not_readopted_when_the_wall_clock_lags() -> None:
    clock = FakeClock()
    frozen_wall = clock.wall()  # the wall clock stalls (or jumps back): the store still believes in the token
    store = MemoryTokenStore(wall_clock=lambda: frozen_wall)
    cache = TokenCache(store, clock=clock, wall_clock=lambda: frozen_wall, rand=lambda: 0.0)
    fetch = ScriptedFetcher(tokens(2))
    first = await cache.get(make_key(), fetch, POLICY)
    clock.now = first.expires_at
    second = await cache.get(make_key(), fetch, POLICY)
    assert second.fingerprint != first.fingerprint
    assert fetch.calls == 2
