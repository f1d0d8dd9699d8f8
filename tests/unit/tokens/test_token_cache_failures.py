"""No valid token and a failing IdP: fail at once, share the backoff, recover on the first success."""

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
from tokenrelay.grant.errors import TokenRequestError, TokenResponseError, TransportError
from tokenrelay.tokens import RefreshPolicy, TokenUnavailable

INVALID_CLIENT = TokenRequestError("rejected", status=401, payload={"error": "invalid_client"})


async def test_failing_idp_without_token_raises_token_unavailable() -> None:
    cache, key = make_cache(FakeClock(), rand=1.0), make_key()
    with pytest.raises(TokenUnavailable) as caught:
        await cache.get(key, ScriptedFetcher([TransportError("refused")]), POLICY)
    assert caught.value.reason == "idp_unreachable"
    assert caught.value.retry_after == POLICY.backoff_initial
    assert not caught.value.permanent


async def test_during_backoff_get_raises_at_once_without_fetching() -> None:
    clock = FakeClock()
    cache, key = make_cache(clock, rand=1.0), make_key()
    fetch = ScriptedFetcher([TokenRequestError("down", status=500, payload="<html>oops</html>")])
    with pytest.raises(TokenUnavailable):
        await cache.get(key, fetch, POLICY)
    clock.advance(0.5)
    for _ in range(100):
        with pytest.raises(TokenUnavailable) as caught:
            await cache.get(key, fetch, POLICY)
    assert fetch.calls == 1
    assert caught.value.retry_after == pytest.approx(0.5)
    assert caught.value.status == 500


async def test_all_waiters_of_a_failed_fetch_get_token_unavailable() -> None:
    gate = asyncio.Event()
    cache, key = make_cache(FakeClock()), make_key()
    fetch = ScriptedFetcher([TransportError("refused")], gate=gate)
    waiters = [asyncio.create_task(cache.get(key, fetch, POLICY)) for _ in range(20)]
    await fetch.started.wait()
    gate.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(result, TokenUnavailable) for result in results)
    assert len({id(result) for result in results}) == 20  # one exception object per waiter
    assert fetch.calls == 1


async def test_backoff_grows_and_recovers_on_first_success() -> None:
    clock = FakeClock()
    cache, key = make_cache(clock, rand=1.0), make_key()
    fetch = ScriptedFetcher([TransportError("a"), TransportError("b"), TransportError("c"), *tokens(1)])
    delays = []
    for _ in range(3):
        with pytest.raises(TokenUnavailable) as caught:
            await cache.get(key, fetch, POLICY)
        delays.append(caught.value.retry_after)
        clock.advance(caught.value.retry_after)
    assert delays == [1.0, 2.0, 4.0]
    token = await cache.get(key, fetch, POLICY)
    assert token.access_token == "secret-access-token-1"
    [status] = cache.status()
    assert (status.fetches_failed, status.fetches_ok, status.last_error) == (3, 1, None)


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (TokenRequestError("down", status=500, payload="<html>"), "idp_error"),
        (TokenResponseError("garbage", status=200, payload="not json"), "invalid_response"),
        (TransportError("slow", timeout=True), "timeout"),
    ],
)
async def test_each_kind_of_idp_failure_is_reported(exc: Exception, reason: str) -> None:
    cache = make_cache(FakeClock())
    with pytest.raises(TokenUnavailable) as caught:
        await cache.get(make_key(), ScriptedFetcher([exc]), POLICY)
    assert caught.value.reason == reason


async def test_invalid_client_is_a_permanent_failure() -> None:
    clock = FakeClock()
    cache, key = make_cache(clock), make_key()
    fetch = ScriptedFetcher([INVALID_CLIENT, *tokens(1)])
    policy = RefreshPolicy(permanent_backoff=300.0)
    with pytest.raises(TokenUnavailable) as caught:
        await cache.get(key, fetch, policy)
    assert caught.value.permanent
    assert caught.value.error == "invalid_client"
    assert caught.value.retry_after == 300.0
    [status] = cache.status()
    assert status.permanent_failure
    assert status.last_error == "invalid_client"
    clock.advance(299.0)
    with pytest.raises(TokenUnavailable):
        await cache.get(key, fetch, policy)
    assert fetch.calls == 1
    clock.advance(1.0)
    await cache.get(key, fetch, policy)
    assert not cache.status()[0].permanent_failure


async def test_retry_after_from_the_idp_is_honoured() -> None:
    clock = FakeClock()
    cache, key = make_cache(clock, rand=1.0), make_key()
    busy = TokenRequestError("busy", status=429, payload="", headers={"Retry-After": "30"})
    fetch = ScriptedFetcher([busy, *tokens(1)])
    with pytest.raises(TokenUnavailable) as caught:
        await cache.get(key, fetch, POLICY)
    assert caught.value.retry_after == 30.0
    clock.advance(29.0)
    with pytest.raises(TokenUnavailable):
        await cache.get(key, fetch, POLICY)
    assert fetch.calls == 1
    clock.advance(1.0)
    assert (await cache.get(key, fetch, POLICY)).access_token == "secret-access-token-1"


async def test_a_failed_fetch_never_removes_a_valid_token() -> None:
    clock = FakeClock()
    cache, key = make_cache(clock), make_key()
    fetch = ScriptedFetcher([*tokens(1), INVALID_CLIENT])
    first = await cache.get(key, fetch, POLICY)
    clock.now = first.refresh_at
    await cache.get(key, fetch, POLICY)
    for _ in range(5):
        await asyncio.sleep(0)
    assert fetch.calls == 2
    assert await cache.get(key, fetch, POLICY) is first
    assert cache.status()[0].permanent_failure


async def test_unexpected_fetcher_bug_is_contained() -> None:
    cache = make_cache(FakeClock())
    with pytest.raises(TokenUnavailable) as caught:
        await cache.get(make_key(), ScriptedFetcher([RuntimeError("bug with secret-xyz")]), POLICY)
    assert caught.value.reason == "internal"
    assert "secret-xyz" not in str(caught.value)
