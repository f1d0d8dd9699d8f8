"""The handler served as an ``Application`` catch-all route (as ``app.py`` does) behaves like the low-level one."""

from __future__ import annotations

import asyncio
import gzip

import aiohttp
from aiohttp import web

from tests.integration.proxy.proxy_helpers import MakeProxy, RecordingObserver, Upstream, raw_exchange, split_response


async def test_app_mode_forwards_with_the_token_and_the_raw_target(make_proxy: MakeProxy, upstream: Upstream) -> None:
    proxy = await make_proxy(app_mode=True)
    target = b"/a%2Fb/%7e?x=%2f&y=a+b"
    raw = await raw_exchange(proxy.port, b"GET " + target + b" HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    assert split_response(raw)[0] == 200
    assert upstream.seen[0].raw_path == target.decode()
    assert upstream.seen[0].headers["Authorization"] == "Bearer tok-1"


async def test_app_mode_routes_absolute_form_targets_by_host(make_proxy: MakeProxy, upstream: Upstream) -> None:
    proxy = await make_proxy({"match": {"host": "billing.internal"}}, app_mode=True)
    raw = await raw_exchange(
        proxy.port, b"GET http://billing.internal/x?q=1 HTTP/1.1\r\nHost: billing.internal\r\nConnection: close\r\n\r\n"
    )
    assert split_response(raw)[0] == 200
    assert upstream.seen[0].raw_path == "/x?q=1"
    raw = await raw_exchange(proxy.port, b"GET http://other.example/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert split_response(raw)[0] == 403


async def test_app_mode_sends_exactly_one_100_continue(make_proxy: MakeProxy, upstream: Upstream) -> None:
    proxy = await make_proxy(app_mode=True)
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    try:
        writer.write(
            b"PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
        )
        await writer.drain()
        async with asyncio.timeout(5):
            interim = await reader.readuntil(b"\r\n\r\n")
        writer.write(b"ok")
        await writer.drain()
        async with asyncio.timeout(5):
            rest = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    assert interim.startswith(b"HTTP/1.1 100 Continue")
    assert rest.startswith(b"HTTP/1.1 200")
    assert upstream.seen[0].body == b"ok"


async def test_app_mode_leaves_compressed_request_bodies_alone(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    compressed = gzip.compress(b"data " * 100)
    proxy = await make_proxy(app_mode=True)
    async with session.post(proxy.make_url("/x"), data=compressed, headers={"Content-Encoding": "gzip"}) as response:
        assert response.status == 200
    assert upstream.seen[0].body == compressed


async def test_app_mode_client_disconnect_cancels_the_upstream(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession, observer: RecordingObserver
) -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def respond(request: web.BaseRequest) -> web.StreamResponse:
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return web.Response()  # pragma: no cover

    upstream.respond = respond
    proxy = await make_proxy(app_mode=True)
    request = asyncio.create_task(session.get(proxy.make_url("/x")))
    async with asyncio.timeout(5):
        await started.wait()
    request.cancel()
    async with asyncio.timeout(5):
        await cancelled.wait()
        await observer.finished.wait()
    assert observer.done[-1]["status"] == 499
