"""How long the proxy keeps a token, as ``/tokens`` reports it after a request through ``serve``.

``expires_in`` when given; else the JWT's ``exp``; else the profile's ``default_expires_in`` — never forever: an
absurd ``expires_in`` is capped too. These run the profile settings through the runtime into the cache, which
the cache's own tests (given a ``RefreshPolicy`` directly) cannot show.
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import jwt
import pytest

from tests.integration.serving_support import serving
from tests.integration.through_proxy.support import EchoUpstream, SwitchableIdp, fetch, one_route_config, url

DAY = 86400.0


async def cached_lifetime(config: dict[str, Any]) -> float:
    """Send one request through the proxy, then read the key's remaining lifetime from ``/tokens``."""
    async with serving(config) as listening, aiohttp.ClientSession() as client:
        assert listening.admin is not None
        assert (await fetch(client, url(listening.proxy, "/billing/x"))).status == 200
        async with client.get(url(listening.admin, "/tokens")) as response:
            (entry,) = (await response.json())["tokens"]
    return float(entry["expires_in"])


def signed(claims: dict[str, Any]) -> str:
    return jwt.encode(claims, "a-test-hmac-key-of-sufficient-length", algorithm="HS256")


async def test_opaque_token_without_expires_in_lives_default_expires_in(
    idp: SwitchableIdp, upstream: EchoUpstream
) -> None:
    idp.expires_in = None
    assert await cached_lifetime(one_route_config(idp, upstream, default_expires_in="2m")) == pytest.approx(120, abs=2)


async def test_opaque_token_without_expires_in_gets_300_s_by_default(
    idp: SwitchableIdp, upstream: EchoUpstream
) -> None:
    idp.expires_in = None
    assert await cached_lifetime(one_route_config(idp, upstream)) == pytest.approx(300, abs=2)


async def test_jwt_without_expires_in_lives_until_its_exp(idp: SwitchableIdp, upstream: EchoUpstream) -> None:
    idp.expires_in = None
    idp.make_token = lambda n: signed({"exp": int(time.time()) + 900, "n": n})
    assert await cached_lifetime(one_route_config(idp, upstream, default_expires_in="2m")) == pytest.approx(900, abs=3)


async def test_jwt_without_exp_falls_back_to_default_expires_in(idp: SwitchableIdp, upstream: EchoUpstream) -> None:
    idp.expires_in = None
    idp.make_token = lambda n: signed({"sub": "svc", "n": n})
    assert await cached_lifetime(one_route_config(idp, upstream, default_expires_in="2m")) == pytest.approx(120, abs=2)


async def test_expires_in_wins_over_the_jwt_exp(idp: SwitchableIdp, upstream: EchoUpstream) -> None:
    idp.expires_in = 60
    idp.make_token = lambda n: signed({"exp": int(time.time()) + 900, "n": n})
    assert await cached_lifetime(one_route_config(idp, upstream)) == pytest.approx(60, abs=2)


async def test_an_absurd_expires_in_is_capped(idp: SwitchableIdp, upstream: EchoUpstream) -> None:
    idp.expires_in = 10 * 365 * 86400  # "ten years": the token must still be re-fetched at some point
    assert await cached_lifetime(one_route_config(idp, upstream)) <= DAY
