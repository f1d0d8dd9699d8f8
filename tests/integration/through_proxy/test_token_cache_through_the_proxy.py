"""The token cache's promises as a proxy client sees them: single-flight, refresh-ahead, one refresh per 401 burst.

The cache has its own tests; these run the whole ``serve`` (listeners, handler, cache, grant core) against a real
token endpoint and upstream on 127.0.0.1, so a handler that bypassed the single-flight ``get``, waited on a
refresh, or invalidated unconditionally would fail here even if the cache alone were right.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp

from tests.integration.serving_support import eventually, serving
from tests.integration.through_proxy.support import (
    EchoUpstream,
    SwitchableIdp,
    fetch,
    lookups,
    one_route_config,
    url,
)


async def test_thousand_concurrent_requests_through_the_proxy_cause_one_token_request(
    idp: SwitchableIdp, upstream: EchoUpstream
) -> None:
    """1,000 requests on a cold cache are all inside the proxy before the IdP answers: exactly one token request."""
    idp.gate.clear()
    async with (
        serving(one_route_config(idp, upstream)) as listening,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as client,
    ):
        assert listening.admin is not None
        requests = [asyncio.create_task(fetch(client, url(listening.proxy, f"/billing/{i}"))) for i in range(1000)]
        admin = listening.admin

        async def all_asked() -> bool:  # every request has asked the cache and is waiting on it
            return await lookups(client, admin, "miss") >= 1000

        await eventually(all_asked, limit=60, interval=0.05)
        assert idp.received == 1
        idp.gate.set()
        answers = await asyncio.wait_for(asyncio.gather(*requests), 60)
    assert idp.received == 1
    assert {(a.status, a.body["authorization"]) for a in answers} == {(200, "Bearer tok-1")}


async def test_request_in_the_refresh_window_is_answered_while_the_idp_holds_the_refresh(
    idp: SwitchableIdp, upstream: EchoUpstream
) -> None:
    """Inside the refresh window the current token is injected at once; the one background refresh waits alone."""
    idp.expires_in = 2  # a 1 s window (at most half the lifetime): refresh from ~0.9 s, expiry at 2 s
    async with (
        serving(one_route_config(idp, upstream, refresh_before_expiry="1s")) as listening,
        aiohttp.ClientSession() as client,
    ):
        first = await fetch(client, url(listening.proxy, "/billing/a"))
        issued_at = time.monotonic()
        assert first.body["authorization"] == "Bearer tok-1"
        idp.gate.clear()
        idp.arrived.clear()
        await asyncio.sleep(max(0.0, issued_at + 1.1 - time.monotonic()))
        answers = [await asyncio.wait_for(fetch(client, url(listening.proxy, f"/billing/{i}")), 0.5) for i in range(5)]
        await asyncio.wait_for(idp.arrived.wait(), 1)  # the refresh really is in flight, held by the IdP
        assert {(a.status, a.body["authorization"]) for a in answers} == {(200, "Bearer tok-1")}
        assert idp.received == 2
        idp.gate.set()

        async def refreshed() -> bool:
            answer = await fetch(client, url(listening.proxy, "/billing/b"))
            return bool(answer.body["authorization"] == "Bearer tok-2")

        await eventually(refreshed)
    assert idp.received == 2


async def test_hundred_concurrent_401s_through_the_proxy_cause_one_refresh(
    idp: SwitchableIdp, upstream: EchoUpstream
) -> None:
    """100 requests rejected with the same token: compare-and-invalidate makes it one new token, all replayed.

    Half of the 401s arrive together, half only after the new token is cached: neither a simultaneous burst nor
    a late 401 for the old token may drop the new one.
    """
    async with (
        serving(one_route_config(idp, upstream)) as listening,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as client,
    ):
        assert (await fetch(client, url(listening.proxy, "/billing/warm"))).body["authorization"] == "Bearer tok-1"
        upstream.reject, upstream.hold_rejections = frozenset({"Bearer tok-1"}), 100
        upstream.seen.clear()
        requests = asyncio.gather(*(fetch(client, url(listening.proxy, f"/billing/{i}")) for i in range(100)))

        async def first_wave_replayed() -> bool:  # the first 50 came back with the new token
            return upstream.seen.count("Bearer tok-2") >= 50

        await eventually(first_wave_replayed, limit=20, interval=0.01)
        upstream.second_wave.set()
        answers = await asyncio.wait_for(requests, 30)
    assert upstream.rejected_arrivals == 100  # all 100 were rejected while in flight together
    assert idp.received == 2  # the warm-up token and exactly one refresh
    assert {(a.status, a.body["authorization"]) for a in answers} == {(200, "Bearer tok-2")}
    assert upstream.seen.count("Bearer tok-2") == 100


async def test_short_lived_token_is_not_refreshed_continuously(idp: SwitchableIdp, upstream: EchoUpstream) -> None:
    """A refresh window longer than the token's life is capped at half of it: steady traffic, few refreshes."""
    idp.expires_in = 2
    config = one_route_config(idp, upstream, refresh_before_expiry="1h")
    async with serving(config) as listening, aiohttp.ClientSession() as client:
        loop = asyncio.get_running_loop()
        until = loop.time() + 1.5
        answers = 0
        while loop.time() < until:  # bounded by time; each request takes ~1 ms
            assert (await fetch(client, url(listening.proxy, f"/billing/{answers}"))).status == 200
            answers += 1
    assert answers > 50
    assert idp.received <= 2  # the first token and at most one refresh (from ~1 s on), not one per request
