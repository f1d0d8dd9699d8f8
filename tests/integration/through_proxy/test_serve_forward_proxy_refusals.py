"""Forward-proxy mode on the real ``serve`` listener: a routed host gets its token, anything else is refused.

The handler's own tests serve it from a low-level server; ``serve`` mounts it in an ``Application``, whose router
could answer ``CONNECT`` or an absolute-form target itself. These check that the proxy's answers are the ones a
client gets: never an open proxy, never a tunnel.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.integration.proxy.proxy_helpers import json_body, raw_exchange, raw_request, split_response
from tests.integration.serving_support import serving
from tests.integration.through_proxy.support import EchoUpstream, SwitchableIdp, one_route_config


def host_route_config(idp: SwitchableIdp, upstream: EchoUpstream) -> dict[str, Any]:
    config = one_route_config(idp, upstream)
    config["routes"][0]["match"] = {"host": "billing.internal"}
    config["routes"][0]["strip_prefix"] = False
    config["routes"].append(  # a catch-all by path: must not turn the proxy into an open one
        {"name": "everything", "match": {"path_prefix": "/"}, "upstream": upstream.url, "profile": "billing"}
    )
    return config


async def exchange(address: tuple[str, int], head: bytes) -> tuple[int, dict[str, Any]]:
    """Send a raw request head to the loopback listener; the status and the JSON body of the answer."""
    assert address[0] == "127.0.0.1"
    raw = await raw_exchange(address[1], head)
    return split_response(raw)[0], json_body(raw)


async def test_connect_is_refused_by_the_proxy_with_its_json_error(idp: SwitchableIdp, upstream: EchoUpstream) -> None:
    async with serving(host_route_config(idp, upstream)) as listening:
        status, body = await exchange(
            listening.proxy, raw_request(b"billing.internal:443", b"billing.internal:443", b"CONNECT")
        )
    assert (status, body["error"]) == (405, "connect_not_supported")
    assert "https://" in body["message"]
    assert upstream.seen == []
    assert idp.received == 0


async def test_absolute_form_target_for_an_unrouted_host_is_refused(idp: SwitchableIdp, upstream: EchoUpstream) -> None:
    async with serving(host_route_config(idp, upstream)) as listening:
        status, body = await exchange(listening.proxy, raw_request(b"http://example.org/x", b"billing.internal"))
    assert (status, body["error"]) == (403, "host_not_allowed")
    assert upstream.seen == []
    assert idp.received == 0


async def test_http_proxy_client_reaches_a_routed_host_with_the_token(
    idp: SwitchableIdp, upstream: EchoUpstream
) -> None:
    async with (
        serving(host_route_config(idp, upstream)) as listening,
        aiohttp.ClientSession() as client,
        client.get(
            "http://billing.internal/invoices?page=2", proxy=f"http://{listening.proxy[0]}:{listening.proxy[1]}"
        ) as response,
    ):
        assert response.status == 200
        assert (await response.json())["authorization"] == "Bearer tok-1"
