"""Routing through a live proxy: no_route, forward-proxy (absolute-form) targets, CONNECT, raw paths."""

from __future__ import annotations

import aiohttp

from tests.integration.proxy.proxy_helpers import (
    MakeProxy,
    Upstream,
    json_body,
    raw_exchange,
    raw_request,
    split_response,
)


async def test_no_route_is_404_json(make_proxy: MakeProxy, session: aiohttp.ClientSession) -> None:
    proxy = await make_proxy({"match": {"path_prefix": "/api"}})
    async with session.get(proxy.make_url("/other")) as response:
        assert response.status == 404
        body = await response.json()
    assert body["error"] == "no_route"
    assert body["request_id"] == response.headers["X-Request-Id"]


async def test_host_route_is_selected_by_host_header(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    proxy = await make_proxy({"match": {"host": "billing.internal"}, "upstream": upstream.url + "/billing"})
    async with session.get(proxy.make_url("/x"), headers={"Host": "Billing.Internal:8080"}) as response:
        assert response.status == 200
    async with session.get(proxy.make_url("/x"), headers={"Host": "crm.internal"}) as response:
        assert response.status == 404
    assert [s.raw_path for s in upstream.seen] == ["/billing/x"]


async def test_strip_prefix_through_the_proxy(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    proxy = await make_proxy(
        {"match": {"path_prefix": "/billing"}, "strip_prefix": True, "upstream": upstream.url + "/v1/"}
    )
    async with session.get(proxy.make_url("/billing/invoices")) as response:
        assert response.status == 200
    assert upstream.seen[0].raw_path == "/v1/invoices"


async def test_raw_query_and_percent_encoding_reach_the_upstream_byte_for_byte(
    make_proxy: MakeProxy, upstream: Upstream
) -> None:
    proxy = await make_proxy()
    target = b"/a%2Fb/%7e%20c;p=1?x=%2f%2F&y=a+b&z&x=2&e=%F0%9F%98%80&q=%3D%26"
    raw = await raw_exchange(proxy.port, raw_request(target))
    assert split_response(raw)[0] == 200
    assert upstream.seen[0].raw_path == target.decode()


async def test_dot_segments_are_refused_with_400(make_proxy: MakeProxy, upstream: Upstream) -> None:
    proxy = await make_proxy({"match": {"path_prefix": "/api"}, "strip_prefix": True})
    raw = await raw_exchange(proxy.port, raw_request(b"/api/%2e%2e/admin"))
    assert split_response(raw)[0] == 400
    assert json_body(raw)["error"] == "bad_request"
    assert upstream.seen == []


async def test_forward_proxy_absolute_form_is_routed_by_target_host(make_proxy: MakeProxy, upstream: Upstream) -> None:
    proxy = await make_proxy({"match": {"host": "billing.internal"}})
    raw = await raw_exchange(proxy.port, raw_request(b"http://billing.internal/x/y?a=%2F", b"billing.internal"))
    assert split_response(raw)[0] == 200
    assert upstream.seen[0].raw_path == "/x/y?a=%2F"
    assert upstream.seen[0].headers["Authorization"] == "Bearer tok-1"


async def test_forward_proxy_target_host_wins_over_host_header(make_proxy: MakeProxy, upstream: Upstream) -> None:
    proxy = await make_proxy({"match": {"host": "billing.internal"}})
    raw = await raw_exchange(proxy.port, raw_request(b"http://evil.example/x", b"billing.internal"))
    assert split_response(raw)[0] == 403
    assert json_body(raw)["error"] == "host_not_allowed"
    assert upstream.seen == []


async def test_forward_proxy_to_unknown_host_is_refused_even_with_a_catch_all_route(
    make_proxy: MakeProxy, upstream: Upstream
) -> None:
    proxy = await make_proxy({"match": {"path_prefix": "/"}})
    raw = await raw_exchange(proxy.port, raw_request(b"http://example.org/", b"example.org"))
    assert split_response(raw)[0] == 403
    assert json_body(raw)["error"] == "host_not_allowed"
    assert upstream.seen == []


async def test_forward_proxy_with_aiohttp_client_proxy_setting(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    proxy = await make_proxy({"match": {"host": "billing.internal"}})
    async with session.get("http://billing.internal/x?q=1", proxy=proxy.url) as response:
        assert response.status == 200
    assert upstream.seen[0].raw_path == "/x?q=1"


async def test_connect_is_refused_with_a_clear_message(make_proxy: MakeProxy, upstream: Upstream) -> None:
    proxy = await make_proxy({"match": {"host": "billing.internal"}})
    raw = await raw_exchange(proxy.port, raw_request(b"billing.internal:443", b"billing.internal:443", b"CONNECT"))
    status, _, _ = split_response(raw)
    assert status == 405
    body = json_body(raw)
    assert body["error"] == "connect_not_supported"
    assert "https://" in body["message"]
    assert upstream.seen == []
