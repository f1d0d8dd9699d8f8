"""TokenCache: hits, single-flight, waiter cancellation, lifetimes (injected clock, scripted fetchers)."""

from __future__ import annotations

import asyncio

import pytest

from tests.unit.tokens.tokencache_support import (
    POLICY,
    FakeClock,
    ScriptedFetcher,
    issued,
    jwt_with,
    make_cache,
    make_key,
    tokens,
)
from tokenrelay.tokens import IssuedToken, RefreshPolicy, TokenUnavailable


async def test_first_get_fetches_and_later_gets_hit() -> None:
    clock = FakeClock()
    cache, fetch, key = make_cache(clock), ScriptedFetcher(tokens(5)), make_key()
    first = await cache.get(key, fetch, POLICY)
    clock.advance(100)
    second = await cache.get(key, fetch, POLICY)
    assert first is second
    assert first.access_token == "secret-access-token-1"
    assert fetch.calls == 1


async def test_peek_returns_only_fresh_tokens() -> None:
    clock = FakeClock()
    cache, key = make_cache(clock), make_key()
    assert cache.peek(key) is None
    token = await cache.get(key, ScriptedFetcher(tokens(1)), POLICY)
    assert cache.peek(key) is token
    clock.now = token.refresh_at
    assert cache.peek(key) is None


async def test_cached_token_schedule() -> None:
    clock = FakeClock()
    token = await make_cache(clock).get(make_key(), ScriptedFetcher(tokens(1, 3600.0)), POLICY)
    assert token.obtained_at == clock.now
    assert token.expires_at == clock.now + 3600.0
    assert token.refresh_at == token.expires_at - 60.0
    assert token.wall_expires_at == clock.wall() + 3600.0
    assert len(token.fingerprint) == 8
    assert "secret-access-token" not in repr(token)


async def test_thousand_concurrent_gets_on_a_cold_key_cause_one_fetch() -> None:
    gate = asyncio.Event()
    cache, fetch, key = make_cache(FakeClock()), ScriptedFetcher(tokens(2), gate=gate), make_key()
    waiters = [asyncio.create_task(cache.get(key, fetch, POLICY)) for _ in range(1000)]
    await fetch.started.wait()
    gate.set()
    results = await asyncio.gather(*waiters)
    assert fetch.calls == 1
    assert len({id(token) for token in results}) == 1


async def test_cancelled_waiter_does_not_cancel_the_fetch_for_others() -> None:
    gate = asyncio.Event()
    cache, fetch, key = make_cache(FakeClock()), ScriptedFetcher(tokens(2), gate=gate), make_key()
    impatient = asyncio.create_task(cache.get(key, fetch, POLICY))
    patient = asyncio.create_task(cache.get(key, fetch, POLICY))
    await fetch.started.wait()
    impatient.cancel()
    with pytest.raises(asyncio.CancelledError):
        await impatient
    gate.set()
    token = await patient
    assert token.access_token == "secret-access-token-1"
    assert fetch.calls == 1


async def test_fetch_completes_and_is_cached_even_if_every_waiter_left() -> None:
    gate = asyncio.Event()
    cache, fetch, key = make_cache(FakeClock()), ScriptedFetcher(tokens(2), gate=gate), make_key()
    waiter = asyncio.create_task(cache.get(key, fetch, POLICY))
    await fetch.started.wait()
    waiter.cancel()
    gate.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert cache.peek(key) is not None
    assert fetch.calls == 1


async def test_different_keys_are_fetched_separately() -> None:
    cache = make_cache(FakeClock())
    fetch_a, fetch_b = ScriptedFetcher([issued(1)]), ScriptedFetcher([issued(2)])
    a = await cache.get(make_key("a"), fetch_a, POLICY)
    b = await cache.get(make_key("b"), fetch_b, POLICY)
    assert (a.access_token, b.access_token) == ("secret-access-token-1", "secret-access-token-2")


async def test_lifetime_from_jwt_exp_when_expires_in_is_missing() -> None:
    clock = FakeClock()
    jwt = jwt_with({"exp": clock.wall() + 120})
    token = await make_cache(clock).get(make_key(), ScriptedFetcher([IssuedToken(jwt, None)]), POLICY)
    assert token.expires_at == clock.now + 120


async def test_lifetime_defaults_for_opaque_tokens_without_expires_in() -> None:
    clock = FakeClock()
    policy = RefreshPolicy(default_lifetime=77.0)
    token = await make_cache(clock).get(make_key(), ScriptedFetcher([IssuedToken("opaque", None)]), policy)
    assert token.expires_at == clock.now + 77.0


async def test_expiry_counts_from_the_start_of_the_request() -> None:
    clock = FakeClock()

    async def slow_fetch() -> IssuedToken:
        clock.advance(3.0)
        return issued(1, 100.0)

    start = clock.now
    token = await make_cache(clock).get(make_key(), slow_fetch, POLICY)
    assert token.expires_at == start + 100.0
    assert token.obtained_at == start + 3.0


async def test_token_expired_on_arrival_is_never_returned() -> None:
    clock = FakeClock()
    cache, key = make_cache(clock), make_key()
    with pytest.raises(TokenUnavailable) as caught:
        await cache.get(key, ScriptedFetcher([issued(1, 0.0)]), POLICY)
    assert caught.value.reason == "expired_on_arrival"
    assert cache.peek(key) is None


async def test_fetch_timeout_bounds_the_wait_for_the_first_token() -> None:
    cache, key = make_cache(FakeClock()), make_key()
    fetch = ScriptedFetcher(tokens(1), gate=asyncio.Event())
    with pytest.raises(TokenUnavailable) as caught:
        await cache.get(key, fetch, RefreshPolicy(fetch_timeout=0.02))
    assert caught.value.reason == "timeout"
    assert caught.value.retry_after > 0


async def test_short_lived_token_window_is_capped_at_half_its_lifetime() -> None:
    clock = FakeClock()
    policy = RefreshPolicy(refresh_before=60.0)
    token = await make_cache(clock).get(make_key(), ScriptedFetcher(tokens(1, 2.0)), policy)
    assert token.refresh_at == pytest.approx(token.expires_at - 1.0)


async def test_refresh_jitter_moves_refresh_earlier_by_at_most_a_tenth_of_the_window() -> None:
    clock = FakeClock()
    early = await make_cache(clock, rand=0.999999).get(make_key(), ScriptedFetcher(tokens(1, 3600.0)), POLICY)
    late = await make_cache(clock, rand=0.0).get(make_key(), ScriptedFetcher(tokens(1, 3600.0)), POLICY)
    assert late.refresh_at == late.expires_at - 60.0
    assert early.refresh_at == pytest.approx(early.expires_at - 66.0, abs=1e-3)


@pytest.mark.parametrize("value", ["", "abc\r\nX-Injected: 1", "tok\x00en", "tökén"])
async def test_unusable_tokens_are_refused(value: str) -> None:
    cache, key = make_cache(FakeClock()), make_key()
    with pytest.raises(TokenUnavailable) as caught:
        await cache.get(key, ScriptedFetcher([IssuedToken(value, 60.0)]), POLICY)
    assert caught.value.reason == "invalid_response"
    assert cache.peek(key) is None
