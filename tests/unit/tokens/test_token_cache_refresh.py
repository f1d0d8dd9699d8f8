"""Refresh ahead: inside the window requests get the current token at once; one background refresh."""

from __future__ import annotations

import asyncio

import pytest

from tests.unit.tokens.tokencache_support import (
    POLICY,
    FakeClock,
    ScriptedFetcher,
    make_cache,
    make_key,
    tokens,
)
from tokenrelay.grant.errors import TransportError
from tokenrelay.tokens import CachedToken, CacheKey, TokenCache, TokenUnavailable


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def start_refresh(
    clock: FakeClock, cache: TokenCache, key: CacheKey, fetch: ScriptedFetcher
) -> tuple[CachedToken, CachedToken]:
    """Get the first token, move to its refresh point and get again, which starts the background refresh;
    let that run. Returns the first token and what the second get served."""
    first = await cache.get(key, fetch, POLICY)
    clock.now = first.refresh_at
    served = await cache.get(key, fetch, POLICY)
    await settle()
    return first, served


async def test_get_in_the_refresh_window_returns_at_once_while_the_refresh_hangs() -> None:
    clock = FakeClock()
    cache, key = make_cache(clock), make_key()
    fetch = ScriptedFetcher(tokens(3))
    first = await cache.get(key, fetch, POLICY)
    fetch.gate = asyncio.Event()
    clock.now = first.refresh_at + 1
    results = [await asyncio.wait_for(cache.get(key, fetch, POLICY), 1.0) for _ in range(50)]
    assert all(token is first for token in results)
    await settle()
    assert fetch.calls == 2  # exactly one background refresh for 50 requests
    fetch.gate.set()
    await settle()
    refreshed = await cache.get(key, fetch, POLICY)
    assert refreshed.access_token == "secret-access-token-2"
    assert fetch.calls == 2


async def test_background_refresh_is_logged_as_a_refresh() -> None:
    from structlog.testing import capture_logs

    clock = FakeClock()
    cache, key, fetch = make_cache(clock), make_key(), ScriptedFetcher(tokens(2))
    first = await cache.get(key, fetch, POLICY)
    clock.now = first.refresh_at
    with capture_logs() as logs:
        await cache.get(key, fetch, POLICY)
        await settle()
    fetched = [entry for entry in logs if entry["event"] == "token.fetched"]
    assert len(fetched) == 1
    assert fetched[0]["refresh"] is True


async def test_expired_token_is_never_returned_requests_wait_for_the_new_one() -> None:
    clock = FakeClock()
    cache, key, fetch = make_cache(clock), make_key(), ScriptedFetcher(tokens(2))
    first = await cache.get(key, fetch, POLICY)
    clock.now = first.expires_at
    second = await cache.get(key, fetch, POLICY)
    assert second.access_token == "secret-access-token-2"
    assert second.expires_at > clock.now


async def test_failed_refresh_keeps_serving_the_valid_token() -> None:
    clock = FakeClock()
    cache, key = make_cache(clock, rand=1.0), make_key()
    fetch = ScriptedFetcher([*tokens(1), TransportError("refused")])
    first, served = await start_refresh(clock, cache, key, fetch)
    assert served is first
    assert fetch.calls == 2
    assert await cache.get(key, fetch, POLICY) is first
    await settle()
    assert fetch.calls == 2  # backing off: no new fetch yet
    [status] = cache.status()
    assert status.fingerprint == first.fingerprint
    assert status.last_error == "idp_unreachable"


async def test_refresh_retries_after_backoff_and_recovers() -> None:
    clock = FakeClock()
    cache, key = make_cache(clock, rand=1.0), make_key()
    fetch = ScriptedFetcher([*tokens(1), TransportError("refused"), *tokens(2)[1:]])
    first, _ = await start_refresh(clock, cache, key, fetch)
    clock.advance(POLICY.backoff_initial)
    assert await cache.get(key, fetch, POLICY) is first
    await settle()
    assert fetch.calls == 3
    recovered = await cache.get(key, fetch, POLICY)
    assert recovered.access_token == "secret-access-token-2"
    [status] = cache.status()
    assert status.last_error is None
    assert status.next_retry_in is None


async def test_refresh_backoff_is_capped_so_a_retry_happens_before_expiry() -> None:
    clock = FakeClock()
    cache, key = make_cache(clock, rand=1.0), make_key()
    fetch = ScriptedFetcher([*tokens(1, 20.0), TransportError("refused")])
    first = await cache.get(key, fetch, POLICY)
    for _ in range(6):  # push the exponential backoff well past the remaining lifetime
        clock.now = max(clock.now, first.refresh_at)
        await cache.get(key, fetch, POLICY)
        await settle()
        [status] = cache.status()
        assert status.next_retry_in is not None
        assert clock.now + status.next_retry_in < first.expires_at
        clock.advance(status.next_retry_in)
    assert fetch.calls == 7


async def test_token_expiring_during_a_failing_refresh_is_not_served() -> None:
    clock = FakeClock()
    cache, key = make_cache(clock, rand=1.0), make_key()
    fetch = ScriptedFetcher([*tokens(1), TransportError("refused")])
    first, _ = await start_refresh(clock, cache, key, fetch)
    clock.now = first.expires_at
    with pytest.raises(TokenUnavailable):
        await cache.get(key, fetch, POLICY)
    assert cache.peek(key) is None
