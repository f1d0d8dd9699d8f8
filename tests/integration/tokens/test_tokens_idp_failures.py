"""An IdP that is down, slow, failing or talking garbage, with and without a valid cached token."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.integration.tokens.conftest import Idp
from tests.unit.tokens.tokencache_support import FakeClock
from tokenrelay.grant.client_credentials import ClientCredentials
from tokenrelay.tokens import CachedToken, RefreshPolicy, TokenCache, TokenUnavailable, fetcher_for, key_for_client

POLICY = RefreshPolicy(fetch_timeout=2.0, backoff_initial=1.0, backoff_max=30.0)


def cache_with(clock: FakeClock) -> TokenCache:
    return TokenCache(clock=clock, wall_clock=time.time, rand=lambda: 1.0)


async def refresh_fails(cache: TokenCache, client: ClientCredentials, clock: FakeClock, first: CachedToken) -> None:
    """Move into the refresh window, let the background refresh fail, and check the token is still served."""
    key, fetch = await key_for_client("p", client), fetcher_for(client, {})
    clock.now = first.refresh_at
    assert await cache.get(key, fetch, POLICY) is first
    for _ in range(200):
        if cache.status()[0].last_error is not None:
            break
        await asyncio.sleep(0.005)
    assert await cache.get(key, fetch, POLICY) is first
    assert cache.status()[0].last_error is not None


@pytest.mark.parametrize(("mode", "reason"), [("error500", "idp_error"), ("garbage", "invalid_response")])
async def test_failing_idp_without_a_token_fails_fast(
    mode: str, reason: str, idp: Idp, client: ClientCredentials
) -> None:
    idp.mode = mode
    clock = FakeClock()
    cache, key, fetch = cache_with(clock), await key_for_client("p", client), fetcher_for(client, {})
    with pytest.raises(TokenUnavailable) as caught:
        await cache.get(key, fetch, POLICY)
    assert caught.value.reason == reason
    started = time.monotonic()
    with pytest.raises(TokenUnavailable):
        await cache.get(key, fetch, POLICY)
    assert time.monotonic() - started < 0.5  # at once (fetch_timeout is 2 s), no queueing
    assert idp.requests == 1  # and no fetch during the backoff


@pytest.mark.parametrize("mode", ["error500", "garbage", "invalid_client", "busy"])
async def test_failing_idp_with_a_valid_token_keeps_serving_it(mode: str, idp: Idp, client: ClientCredentials) -> None:
    clock = FakeClock()
    cache = cache_with(clock)
    first = await cache.get(await key_for_client("p", client), fetcher_for(client, {}), POLICY)
    idp.mode = mode
    await refresh_fails(cache, client, clock, first)
    assert idp.requests == 2


async def test_unreachable_idp_without_a_token(dead_client: ClientCredentials) -> None:
    cache = cache_with(FakeClock())
    with pytest.raises(TokenUnavailable) as caught:
        await cache.get(await key_for_client("p", dead_client), fetcher_for(dead_client, {}), POLICY)
    assert caught.value.reason == "idp_unreachable"
    assert caught.value.retry_after == 1.0


async def test_slow_idp_is_bounded_by_fetch_timeout(idp: Idp, client: ClientCredentials) -> None:
    idp.gate = asyncio.Event()
    cache = cache_with(FakeClock())
    started = time.monotonic()
    with pytest.raises(TokenUnavailable) as caught:
        await cache.get(await key_for_client("p", client), fetcher_for(client, {}), RefreshPolicy(fetch_timeout=0.1))
    assert caught.value.reason == "timeout"
    assert time.monotonic() - started < 1.0
    idp.gate.set()


async def test_recovers_on_the_first_successful_fetch(idp: Idp, client: ClientCredentials) -> None:
    clock = FakeClock()
    cache, key, fetch = cache_with(clock), await key_for_client("p", client), fetcher_for(client, {})
    idp.mode = "error500"
    for _ in range(3):
        with pytest.raises(TokenUnavailable) as caught:
            await cache.get(key, fetch, POLICY)
        clock.advance(caught.value.retry_after)
    idp.mode = "ok"
    token = await cache.get(key, fetch, POLICY)
    assert token.access_token == "access-token-value-4"
    [status] = cache.status()
    assert (status.fetches_failed, status.fetches_ok, status.last_error) == (3, 1, None)


async def test_invalid_client_marks_the_key_permanent(idp: Idp, client: ClientCredentials) -> None:
    idp.mode = "invalid_client"
    cache = cache_with(FakeClock())
    with pytest.raises(TokenUnavailable) as caught:
        await cache.get(await key_for_client("p", client), fetcher_for(client, {}), POLICY)
    assert caught.value.permanent
    assert caught.value.error == "invalid_client"
    assert caught.value.retry_after == POLICY.permanent_backoff
    [status] = cache.status()
    assert status.permanent_failure
    assert status.last_error == "invalid_client"


async def test_retry_after_from_the_idp_is_honoured(idp: Idp, client: ClientCredentials) -> None:
    idp.mode = "busy"
    clock = FakeClock()
    cache, key, fetch = cache_with(clock), await key_for_client("p", client), fetcher_for(client, {})
    with pytest.raises(TokenUnavailable) as caught:
        await cache.get(key, fetch, RefreshPolicy(backoff_initial=1.0))
    assert caught.value.retry_after == 7.0
    assert caught.value.status == 429
    idp.mode = "ok"
    clock.advance(6.9)
    with pytest.raises(TokenUnavailable):
        await cache.get(key, fetch, POLICY)
    assert idp.requests == 1
    clock.advance(0.1)
    await cache.get(key, fetch, POLICY)
    assert idp.requests == 2


async def test_never_served_past_expiry_while_the_idp_is_down(idp: Idp, client: ClientCredentials) -> None:
    clock = FakeClock()
    cache, key, fetch = cache_with(clock), await key_for_client("p", client), fetcher_for(client, {})
    idp.expires_in = 60
    first = await cache.get(key, fetch, POLICY)
    idp.mode = "error500"
    await refresh_fails(cache, client, clock, first)
    clock.now = first.expires_at
    with pytest.raises(TokenUnavailable):
        await cache.get(key, fetch, POLICY)
    assert cache.peek(key) is None
