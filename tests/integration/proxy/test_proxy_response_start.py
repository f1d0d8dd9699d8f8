"""When the downstream response starts: at once for a body still on its way, with the body when it is in hand.

The proxy sends the header block together with the first body bytes when those arrived with the upstream's
headers (one write instead of two per small answer), but never holds the headers back waiting for a body:
server-sent events and long polls must see their status line as soon as the upstream sends it.
"""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

from tests.integration.proxy.proxy_helpers import MakeProxy, Upstream


async def test_headers_of_a_slow_body_reach_the_client_before_the_body(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    """An upstream that sends its headers and then waits: the client gets the headers while it still waits."""
    release = asyncio.Event()

    async def respond(request: web.BaseRequest) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await release.wait()
        await response.write(b"data: late\n\n")
        await response.write_eof()
        return response

    upstream.respond = respond
    proxy = await make_proxy()
    try:
        async with asyncio.timeout(5):
            response = await session.get(proxy.make_url("/events"))
        assert not release.is_set()  # the headers came while the upstream was still holding the body back
        assert (response.status, response.headers["Content-Type"]) == (200, "text/event-stream")
        release.set()
        assert await response.read() == b"data: late\n\n"
    finally:
        release.set()


async def test_a_body_that_came_with_the_headers_is_relayed_whole(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    """The coalesced path: status, every header and the exact body bytes, with the declared length."""
    body = b'{"ok":true}'

    async def respond(_: web.BaseRequest) -> web.StreamResponse:
        return web.Response(body=body, content_type="application/json", headers={"X-Upstream": "1"})

    upstream.respond = respond
    proxy = await make_proxy()
    async with session.get(proxy.make_url("/small")) as response:
        assert await response.read() == body
    assert (response.status, response.headers["X-Upstream"]) == (200, "1")
    assert response.headers["Content-Length"] == str(len(body))
    assert response.headers["Via"] == "1.1 tokenrelay"


async def test_an_empty_answer_is_relayed_with_its_headers(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    """A 204 has no body to carry the headers: they are still sent, once, when the response ends."""

    async def respond(_: web.BaseRequest) -> web.StreamResponse:
        return web.Response(status=204, headers={"X-Upstream": "1"})

    upstream.respond = respond
    proxy = await make_proxy()
    async with session.delete(proxy.make_url("/thing")) as response:
        assert await response.read() == b""
    assert (response.status, response.headers["X-Upstream"]) == (204, "1")
