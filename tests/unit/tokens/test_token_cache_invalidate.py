"""compare-and-invalidate: drop a token only while it is still the one a request used."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from tests.unit.tokens.tokencache_support import (
    POLICY,
    FakeClock,
    ScriptedFetcher,
    make_cache,
    make_key,
    tokens,
)


async def test_invalidate_drops_the_used_token_and_the_next_get_fetches() -> None:
    cache, key, fetch = make_cache(FakeClock()), make_key(), ScriptedFetcher(tokens(2))
    used = await cache.get(key, fetch, POLICY)
    assert await cache.invalidate(key, used) is True
    assert cache.peek(key) is None
    fresh = await cache.get(key, fetch, POLICY)
    assert fresh.access_token == "secret-access-token-2"


async def test_hundred_concurrent_invalidations_cause_one_refetch() -> None:
    cache, key, fetch = make_cache(FakeClock()), make_key(), ScriptedFetcher(tokens(3))
    used = await cache.get(key, fetch, POLICY)

    async def on_401() -> tuple[bool, str]:
        dropped = await cache.invalidate(key, used)
        return dropped, (await cache.get(key, fetch, POLICY)).access_token

    results = await asyncio.gather(*(on_401() for _ in range(100)))
    assert sum(dropped for dropped, _ in results) == 1
    assert {token for _, token in results} == {"secret-access-token-2"}
    assert fetch.calls == 2


async def test_stale_invalidation_does_not_drop_the_newer_token() -> None:
    cache, key, fetch = make_cache(FakeClock()), make_key(), ScriptedFetcher(tokens(2))
    old = await cache.get(key, fetch, POLICY)
    await cache.invalidate(key, old)
    new = await cache.get(key, fetch, POLICY)
    assert await cache.invalidate(key, old) is False
    assert cache.peek(key) is new


async def test_same_fingerprint_but_different_fetch_is_not_the_same_token() -> None:
    cache, key = make_cache(FakeClock()), make_key()
    token = await cache.get(key, ScriptedFetcher(tokens(1)), POLICY)
    other_fetch = replace(token, obtained_at=token.obtained_at - 1)
    assert await cache.invalidate(key, other_fetch) is False
    equal_copy = replace(token)
    assert await cache.invalidate(key, equal_copy) is True


async def test_invalidate_unknown_key_or_empty_entry_is_false() -> None:
    cache, key = make_cache(FakeClock()), make_key()
    token = await cache.get(key, ScriptedFetcher(tokens(1)), POLICY)
    assert await cache.invalidate(make_key("other"), token) is False
    await cache.invalidate(key, token)
    assert await cache.invalidate(key, token) is False


async def test_invalidate_is_logged_with_the_fingerprint_only() -> None:
    from structlog.testing import capture_logs

    cache, key = make_cache(FakeClock()), make_key()
    token = await cache.get(key, ScriptedFetcher(tokens(1)), POLICY)
    with capture_logs() as logs:
        await cache.invalidate(key, token)
    assert logs == [
        {"event": "token.invalidated", "key": str(key), "fingerprint": token.fingerprint, "log_level": "info"}
    ]


async def test_invalidation_during_a_background_refresh_joins_that_refresh() -> None:
    clock = FakeClock()
    cache, key, fetch = make_cache(clock), make_key(), ScriptedFetcher(tokens(3))
    used = await cache.get(key, fetch, POLICY)
    fetch.gate = asyncio.Event()
    fetch.started.clear()
    clock.now = used.refresh_at
    assert await cache.get(key, fetch, POLICY) is used  # starts the refresh, which hangs
    await fetch.started.wait()
    assert await cache.invalidate(key, used)
    waiter = asyncio.create_task(cache.get(key, fetch, POLICY))
    await asyncio.sleep(0)
    assert not waiter.done()
    fetch.gate.set()
    assert (await waiter).access_token == "secret-access-token-2"
    assert fetch.calls == 2
