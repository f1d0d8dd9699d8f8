"""Header rewriting through a real proxy: token injection, hop-by-hop, Host, X-Forwarded-*, Via, request id."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from tests.integration.proxy.proxy_helpers import MakeProxy, Upstream, raw_exchange, split_response


async def test_inbound_authorization_is_replaced_not_duplicated(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    proxy = await make_proxy()
    async with session.get(proxy.make_url("/x"), headers={"Authorization": "Bearer client-own"}) as response:
        assert response.status == 200
    assert upstream.seen[0].headers.getall("Authorization") == ["Bearer tok-1"]


async def test_custom_header_name_and_format_carry_the_token(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    proxy = await make_proxy({"header": {"name": "X-Api-Token", "format": "Token {token}; v=1"}})
    async with session.get(proxy.make_url("/x"), headers={"X-Api-Token": "mine"}) as response:
        assert response.status == 200
    seen = upstream.seen[0].headers
    assert seen.getall("X-Api-Token") == ["Token tok-1; v=1"]
    assert "Authorization" not in seen


async def test_route_without_profile_passes_the_client_authorization_through(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    proxy = await make_proxy({"profile": None})
    async with session.get(proxy.make_url("/x"), headers={"Authorization": "Basic abc"}) as response:
        assert response.status == 200
    assert upstream.seen[0].headers.getall("Authorization") == ["Basic abc"]


async def test_hop_by_hop_request_headers_are_dropped_including_connection_named_ones(
    make_proxy: MakeProxy, upstream: Upstream
) -> None:
    proxy = await make_proxy()
    raw = await raw_exchange(
        proxy.port,
        b"GET /x HTTP/1.1\r\nHost: h\r\nConnection: close, X-Secret-Hop\r\nX-Secret-Hop: 1\r\n"
        b"Keep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\n"
        b"Proxy-Connection: keep-alive\r\nX-End-To-End: kept\r\n\r\n",
    )
    assert split_response(raw)[0] == 200
    seen = upstream.seen[0].headers
    for name in ("X-Secret-Hop", "Keep-Alive", "TE", "Proxy-Authorization", "Proxy-Connection"):
        assert name not in seen, name
    assert seen["X-End-To-End"] == "kept"


async def test_hop_by_hop_response_headers_are_dropped(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    async def respond(request: web.BaseRequest) -> web.StreamResponse:
        return web.Response(
            text="ok",
            headers={"Connection": "X-Up-Hop", "X-Up-Hop": "1", "Keep-Alive": "timeout=1",
                     "Proxy-Authenticate": "Basic", "X-Up-Kept": "1"},
        )  # fmt: skip

    upstream.respond = respond
    proxy = await make_proxy()
    async with session.get(proxy.make_url("/x")) as response:
        assert response.status == 200
        for name in ("X-Up-Hop", "Keep-Alive", "Proxy-Authenticate"):
            assert name not in response.headers, name
        assert response.headers["X-Up-Kept"] == "1"


async def test_repeated_response_headers_survive(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    async def respond(request: web.BaseRequest) -> web.StreamResponse:
        response = web.Response(text="ok")
        response.headers.add("Set-Cookie", "a=1")
        response.headers.add("Set-Cookie", "b=2")
        return response

    upstream.respond = respond
    proxy = await make_proxy()
    async with session.get(proxy.make_url("/x")) as response:
        assert response.headers.getall("Set-Cookie") == ["a=1", "b=2"]


async def test_host_becomes_the_upstream_host(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    proxy = await make_proxy()
    async with session.get(proxy.make_url("/x"), headers={"Host": "inbound.example"}) as response:
        assert response.status == 200
    assert upstream.seen[0].headers["Host"] == upstream.url.removeprefix("http://")


async def test_preserve_host_keeps_the_inbound_host(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    proxy = await make_proxy({"preserve_host": True})
    async with session.get(proxy.make_url("/x"), headers={"Host": "inbound.example"}) as response:
        assert response.status == 200
    assert upstream.seen[0].headers["Host"] == "inbound.example"


async def test_forwarded_headers_append_to_xff_and_add_via(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    proxy = await make_proxy()
    headers = {"X-Forwarded-For": "203.0.113.9", "Host": "inbound.example"}
    async with session.get(proxy.make_url("/x"), headers=headers) as response:
        assert response.headers["Via"] == "1.1 tokenrelay"
    seen = upstream.seen[0].headers
    assert seen["X-Forwarded-For"] == "203.0.113.9, 127.0.0.1"
    assert seen["X-Forwarded-Proto"] == "http"
    assert seen["X-Forwarded-Host"] == "inbound.example"
    assert seen["Via"] == "1.1 tokenrelay"


async def test_forwarded_headers_and_via_can_be_switched_off(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    proxy = await make_proxy({"forwarded_headers": False}, server={"via": False})
    async with session.get(proxy.make_url("/x")) as response:
        assert "Via" not in response.headers
    seen = upstream.seen[0].headers
    for name in ("X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Via"):
        assert name not in seen, name


async def test_request_id_is_propagated_upstream_and_returned(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    proxy = await make_proxy()
    async with session.get(proxy.make_url("/x"), headers={"X-Request-Id": "abc-123"}) as response:
        assert response.headers["X-Request-Id"] == "abc-123"
    assert upstream.seen[0].headers.getall("X-Request-Id") == ["abc-123"]


async def test_request_id_is_generated_when_absent(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    proxy = await make_proxy()
    async with session.get(proxy.make_url("/x")) as response:
        generated = response.headers["X-Request-Id"]
    assert len(generated) == 32
    assert int(generated, 16) >= 0
    assert upstream.seen[0].headers["X-Request-Id"] == generated


async def test_client_default_headers_are_not_invented(make_proxy: MakeProxy, upstream: Upstream) -> None:
    proxy = await make_proxy()
    raw = await raw_exchange(
        proxy.port, b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
    )
    assert split_response(raw)[0] == 200
    seen = upstream.seen[0].headers
    for name in ("User-Agent", "Accept", "Accept-Encoding", "Content-Type"):
        assert name not in seen, name
    assert upstream.seen[0].body == b"hi"
