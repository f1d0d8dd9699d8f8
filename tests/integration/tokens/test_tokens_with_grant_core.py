"""The token cache over the real grant core and a real aiohttp token endpoint on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time

import pytest
from structlog.testing import capture_logs

from tests.integration.tokens.conftest import CLIENT_SECRET, Idp
from tests.unit.tokens.tokencache_support import FakeClock, jwt_with
from tokenrelay.grant.client_credentials import ClientCredentials
from tokenrelay.tokens import RefreshPolicy, TokenCache, TokenUnavailable, fetcher_for, key_for_client

POLICY = RefreshPolicy(fetch_timeout=5.0)


def cache_with(clock: FakeClock, rand: float = 0.0) -> TokenCache:
    """Scheduling on the test's clock; the wall clock stays real because the grant core's expiry uses it."""
    return TokenCache(clock=clock, wall_clock=time.time, rand=lambda: rand)


async def settle(idp: Idp | None = None) -> None:
    for _ in range(20):
        await asyncio.sleep(0.001)


async def test_thousand_concurrent_gets_send_one_token_request(idp: Idp, client: ClientCredentials) -> None:
    idp.gate = asyncio.Event()
    cache, key, fetch = TokenCache(), await key_for_client("p", client), fetcher_for(client, {})
    waiters = [asyncio.create_task(cache.get(key, fetch, POLICY)) for _ in range(1000)]
    await asyncio.wait_for(idp.received.wait(), 5.0)
    await settle()
    idp.gate.set()
    results = await asyncio.gather(*waiters)
    assert idp.requests == 1
    assert {token.access_token for token in results} == {"access-token-value-1"}


async def test_refresh_ahead_returns_while_the_endpoint_is_blocked(idp: Idp, client: ClientCredentials) -> None:
    clock = FakeClock()
    cache, key, fetch = cache_with(clock), await key_for_client("p", client), fetcher_for(client, {})
    first = await cache.get(key, fetch, POLICY)
    idp.gate = asyncio.Event()
    clock.now = first.refresh_at + 1
    for _ in range(100):
        assert await asyncio.wait_for(cache.get(key, fetch, POLICY), 0.5) is first
    await settle()
    assert idp.requests == 2  # one background refresh, however many requests
    idp.gate.set()
    for _ in range(200):
        if cache.peek(key) is not None:
            break
        await asyncio.sleep(0.005)
    refreshed = await cache.get(key, fetch, POLICY)
    assert refreshed.access_token == "access-token-value-2"
    assert idp.requests == 2


async def test_token_request_carries_the_binding_params(idp: Idp, client: ClientCredentials) -> None:
    fetch = fetcher_for(client, {"scope": ["read", "write"], "audience": "https://api.test"})
    await TokenCache().get(await key_for_client("p", client), fetch, POLICY)
    assert idp.forms[0]["scope"] == "read write"
    assert idp.forms[0]["audience"] == "https://api.test"
    assert idp.forms[0]["grant_type"] == "client_credentials"


async def test_lifetime_from_expires_in(client: ClientCredentials, idp: Idp) -> None:
    clock = FakeClock()
    idp.expires_in = 120
    token = await cache_with(clock).get(await key_for_client("p", client), fetcher_for(client, {}), POLICY)
    assert token.expires_at == pytest.approx(clock.now + 120, abs=0.5)


async def test_lifetime_from_jwt_exp_when_expires_in_is_missing(client: ClientCredentials, idp: Idp) -> None:
    clock = FakeClock()
    idp.expires_in = None
    idp.token_value = lambda n: jwt_with({"exp": int(time.time()) + 600, "n": n})
    token = await cache_with(clock).get(await key_for_client("p", client), fetcher_for(client, {}), POLICY)
    assert token.expires_at == pytest.approx(clock.now + 600, abs=2)


async def test_lifetime_default_for_opaque_token_without_expires_in(client: ClientCredentials, idp: Idp) -> None:
    clock = FakeClock()
    idp.expires_in = None
    policy = RefreshPolicy(default_lifetime=90.0)
    token = await cache_with(clock).get(await key_for_client("p", client), fetcher_for(client, {}), policy)
    assert token.expires_at == clock.now + 90.0


async def test_hundred_concurrent_invalidations_cause_one_new_request(idp: Idp, client: ClientCredentials) -> None:
    cache, key, fetch = TokenCache(), await key_for_client("p", client), fetcher_for(client, {})
    used = await cache.get(key, fetch, POLICY)

    async def on_401() -> str:
        await cache.invalidate(key, used)
        return (await cache.get(key, fetch, POLICY)).access_token

    assert set(await asyncio.gather(*(on_401() for _ in range(100)))) == {"access-token-value-2"}
    assert idp.requests == 2


async def test_rotated_secret_gives_a_new_key(idp_server: object, client: ClientCredentials) -> None:
    config = client.config.model_dump()
    config["client"]["secret"] = "rotated-secret"
    async with ClientCredentials(config) as rotated:
        assert await key_for_client("p", rotated) != await key_for_client("p", client)
    assert await key_for_client("p", client) == await key_for_client("p", client)


async def test_logs_of_a_whole_flow_hold_no_token_or_secret(idp: Idp, client: ClientCredentials) -> None:
    clock = FakeClock()
    cache, key, fetch = cache_with(clock), await key_for_client("p", client), fetcher_for(client, {})
    with capture_logs() as logs:
        token = await cache.get(key, fetch, POLICY)
        await cache.invalidate(key, token)
        idp.mode = "invalid_client"
        with pytest.raises(TokenUnavailable):
            await cache.get(key, fetch, POLICY)
    text = repr(logs) + repr(cache.status())
    assert {"token.fetched", "token.invalidated", "token.fetch_failed"} <= {entry["event"] for entry in logs}
    assert token.access_token not in text
    assert CLIENT_SECRET not in text
