"""Bodies through a live proxy: chunked both ways, Content-Length, gzip untouched, HEAD, 204/304, Expect."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from tests.integration.expect_continue import first_answer_head, put_after_continue
from tests.integration.proxy.proxy_helpers import (
    MakeProxy,
    Upstream,
    chunked,
    raw_exchange,
    raw_request,
    split_response,
)


async def test_chunked_request_body_arrives_whole(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    async def parts() -> AsyncIterator[bytes]:
        for i in range(5):
            yield f"part{i};".encode()

    proxy = await make_proxy()
    async with session.post(proxy.make_url("/x"), data=parts()) as response:
        assert response.status == 200
    assert upstream.seen[0].body == b"part0;part1;part2;part3;part4;"


async def test_chunked_response_stays_chunked(make_proxy: MakeProxy, upstream: Upstream) -> None:
    upstream.respond = chunked(b"c0", b"c1", b"c2")
    proxy = await make_proxy()
    raw = await raw_exchange(proxy.port, raw_request(b"/x"))
    status, headers, body = split_response(raw)
    assert status == 200
    assert headers["transfer-encoding"] == "chunked"
    assert "content-length" not in headers
    assert body.endswith(b"0\r\n\r\n")


async def test_content_length_is_preserved(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    async def respond(request: web.BaseRequest) -> web.StreamResponse:
        return web.Response(body=b"x" * 1234)

    upstream.respond = respond
    proxy = await make_proxy()
    async with session.get(proxy.make_url("/x")) as response:
        assert response.headers["Content-Length"] == "1234"
        assert "Transfer-Encoding" not in response.headers
        assert await response.read() == b"x" * 1234


async def test_content_encoding_passes_through_compressed(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    compressed = gzip.compress(b"hello " * 100)

    async def respond(request: web.BaseRequest) -> web.StreamResponse:
        return web.Response(body=compressed, headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"})

    upstream.respond = respond
    proxy = await make_proxy()
    async with session.get(proxy.make_url("/x"), auto_decompress=False) as response:
        assert response.headers["Content-Encoding"] == "gzip"
        assert response.headers["Content-Length"] == str(len(compressed))
        assert await response.read() == compressed


async def test_compressed_request_body_passes_untouched(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    compressed = gzip.compress(b"payload " * 50)
    proxy = await make_proxy()
    headers = {"Content-Encoding": "gzip"}
    async with session.post(proxy.make_url("/x"), data=compressed, headers=headers) as response:
        assert response.status == 200
    assert upstream.seen[0].body == compressed
    assert upstream.seen[0].headers["Content-Encoding"] == "gzip"


async def test_head_returns_headers_without_a_body(make_proxy: MakeProxy, upstream: Upstream) -> None:
    async def respond(request: web.BaseRequest) -> web.StreamResponse:
        assert request.method == "HEAD"
        return web.Response(body=b"x" * 50)

    upstream.respond = respond
    proxy = await make_proxy()
    raw = await raw_exchange(proxy.port, raw_request(b"/x", method=b"HEAD"))
    status, headers, body = split_response(raw)
    assert status == 200
    assert body == b""
    assert headers.get("content-length") == "50"


@pytest.mark.parametrize("status", [204, 304])
async def test_bodiless_statuses_are_relayed_without_a_body(
    make_proxy: MakeProxy, upstream: Upstream, status: int
) -> None:
    async def respond(request: web.BaseRequest) -> web.StreamResponse:
        return web.Response(status=status, headers={"ETag": '"v1"'})

    upstream.respond = respond
    proxy = await make_proxy()
    raw = await raw_exchange(proxy.port, raw_request(b"/x"))
    got, headers, body = split_response(raw)
    assert got == status
    assert body == b""
    assert headers["etag"] == '"v1"'
    assert "transfer-encoding" not in headers


async def test_expect_100_continue_is_answered_before_the_body(make_proxy: MakeProxy, upstream: Upstream) -> None:
    proxy = await make_proxy()
    interim, final = await put_after_continue(("127.0.0.1", proxy.port), "/x")
    assert interim.startswith(b"HTTP/1.1 100 Continue")
    assert split_response(final)[0] == 200
    assert upstream.seen[0].body == b"hello"
    assert "Expect" not in upstream.seen[0].headers


async def test_expect_100_continue_refused_request_never_asks_for_the_body(make_proxy: MakeProxy) -> None:
    proxy = await make_proxy({"match": {"path_prefix": "/api"}})
    head = await first_answer_head(("127.0.0.1", proxy.port), "/nothing")
    assert head.startswith(b"HTTP/1.1 404")


async def test_http10_client_gets_an_unchunked_body_ended_by_close(make_proxy: MakeProxy, upstream: Upstream) -> None:
    upstream.respond = chunked(b"one,", b"two")
    proxy = await make_proxy()
    raw = await raw_exchange(proxy.port, b"GET /x HTTP/1.0\r\nHost: h\r\n\r\n")
    status, headers, body = split_response(raw)
    assert status == 200
    assert "transfer-encoding" not in headers
    assert body == b"one,two"
    assert headers["via"] == "1.1 tokenrelay"  # the protocol the proxy received the response in
