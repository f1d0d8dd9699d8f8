"""WebSocket upgrades through the proxy, with the token in the upstream handshake."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import WSMsgType, web

from tests.integration.proxy.proxy_helpers import MakeProxy, Upstream


def echo_server(upstream: Upstream, seen_auth: list[str | None]) -> None:
    async def respond(request: web.BaseRequest) -> web.StreamResponse:
        seen_auth.append(request.headers.get("Authorization"))
        if request.headers.get("Authorization") == "Bearer tok-1" and request.path == "/reject-first":
            return web.Response(status=401)
        ws = web.WebSocketResponse(protocols=("chat.v2",))
        await ws.prepare(request)
        async for message in ws:
            if message.type is WSMsgType.TEXT:
                if message.data == "bye":
                    await ws.close(code=4001, message=b"done")
                    break
                await ws.send_str(f"echo:{message.data}")
            elif message.type is WSMsgType.BINARY:
                await ws.send_bytes(message.data[::-1])
        return ws

    upstream.respond = respond


async def test_websocket_is_proxied_with_the_token_in_the_handshake(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    seen_auth: list[str | None] = []
    echo_server(upstream, seen_auth)
    proxy = await make_proxy()
    async with session.ws_connect(proxy.make_url("/ws"), protocols=("chat.v1", "chat.v2")) as ws:
        assert ws.protocol == "chat.v2"
        await ws.send_str("hi")
        assert await ws.receive_str(timeout=5) == "echo:hi"
        await ws.send_bytes(b"\x01\x02\x03")
        assert await ws.receive_bytes(timeout=5) == b"\x03\x02\x01"
        await ws.send_str("bye")
        message = await ws.receive(timeout=5)
    assert message.type is WSMsgType.CLOSE
    assert ws.close_code == 4001
    assert seen_auth == ["Bearer tok-1"]


async def test_websocket_handshake_401_is_retried_once_with_a_fresh_token(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    seen_auth: list[str | None] = []
    echo_server(upstream, seen_auth)
    proxy = await make_proxy()
    async with session.ws_connect(proxy.make_url("/reject-first")) as ws:
        await ws.send_str("hi")
        assert await ws.receive_str(timeout=5) == "echo:hi"
    assert seen_auth == ["Bearer tok-1", "Bearer tok-2"]


async def test_websocket_refused_by_upstream_is_a_json_error(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    async def respond(request: web.BaseRequest) -> web.StreamResponse:
        return web.Response(status=403)

    upstream.respond = respond
    proxy = await make_proxy()
    headers = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}  # fmt: skip
    async with session.get(proxy.make_url("/ws"), headers=headers) as response:
        assert response.status == 502
        body = await response.json()
    assert body["error"] == "websocket_rejected"
    assert body["upstream_status"] == 403


async def test_client_closing_the_websocket_closes_the_upstream(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    closed: list[int | None] = []
    done = asyncio.Event()

    async def respond(request: web.BaseRequest) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for _ in ws:
            pass
        closed.append(ws.close_code)
        done.set()
        return ws

    upstream.respond = respond
    proxy = await make_proxy()
    async with session.ws_connect(proxy.make_url("/ws")) as ws:
        await ws.close(code=4002)
    async with asyncio.timeout(5):
        await done.wait()
    assert closed == [4002]


async def test_a_message_over_the_limit_closes_with_1009_and_never_reaches_the_upstream(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    """aiohttp holds a whole message in memory: ``max_websocket_message`` bounds what one connection can take."""
    received: list[int] = []
    upstream_closed = asyncio.Event()

    async def respond(request: web.BaseRequest) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            received.append(len(message.data))
            await ws.send_str(f"got {len(message.data)}")
        upstream_closed.set()
        return ws

    upstream.respond = respond
    proxy = await make_proxy({"max_websocket_message": 1024})
    async with session.ws_connect(proxy.make_url("/ws")) as ws:
        await ws.send_bytes(b"x" * 1000)  # under the limit: relayed
        assert (await asyncio.wait_for(ws.receive(), 5)).data == "got 1000"
        await ws.send_bytes(b"x" * 2000)  # over it: refused
        message = await asyncio.wait_for(ws.receive(), 5)
    await asyncio.wait_for(upstream_closed.wait(), 5)
    assert message.type is WSMsgType.CLOSE
    assert message.data == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
    assert received == [1000]
