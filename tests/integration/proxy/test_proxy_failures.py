"""Failures through a live proxy: upstream down/slow/broken, token unavailable, client gone."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest
from aiohttp import web

from tests.integration.proxy.proxy_helpers import (
    Issuer,
    MakeProxy,
    RecordingObserver,
    Upstream,
    drop_the_client_while_the_upstream_waits,
)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_upstream_down_is_502_json(
    make_proxy: MakeProxy, session: aiohttp.ClientSession, observer: RecordingObserver
) -> None:
    proxy = await make_proxy({"upstream": f"http://127.0.0.1:{closed_port()}"})
    async with session.get(proxy.make_url("/x")) as response:
        assert response.status == 502
        body = await response.json()
    assert body["error"] == "upstream_unreachable"
    assert body["route"] == "r0"
    assert observer.done[-1]["status"] == 502
    assert observer.done[-1]["upstream_status"] is None


async def test_upstream_slow_is_504(make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession) -> None:
    async def respond(request: web.BaseRequest) -> web.StreamResponse:
        await asyncio.sleep(0.5)
        return web.Response(text="late")

    upstream.respond = respond
    proxy = await make_proxy({"timeouts": {"read": "100ms"}})
    async with session.get(proxy.make_url("/x")) as response:
        assert response.status == 504
        assert (await response.json())["error"] == "upstream_timeout"


async def test_upstream_stalling_mid_body_cuts_the_client_connection(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    async def respond(request: web.BaseRequest) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "100"})
        await response.prepare(request)
        await response.write(b"x" * 10)
        await asyncio.sleep(0.5)
        return response

    upstream.respond = respond
    proxy = await make_proxy({"timeouts": {"read": "100ms"}})
    async with session.get(proxy.make_url("/x")) as response:
        assert response.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()


async def test_upstream_dying_mid_chunked_body_is_not_presented_as_complete(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    async def respond(request: web.BaseRequest) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b"partial")
        assert request.transport is not None
        request.transport.abort()
        return response

    upstream.respond = respond
    proxy = await make_proxy()
    async with session.get(proxy.make_url("/x")) as response:
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()


async def test_token_unavailable_is_503_with_retry_after(
    make_proxy: MakeProxy, upstream: Upstream, issuer: Issuer, session: aiohttp.ClientSession
) -> None:
    issuer.fail = True
    proxy = await make_proxy()
    async with session.get(proxy.make_url("/x")) as response:
        assert response.status == 503
        body = await response.json()
        retry_after = response.headers["Retry-After"]
    assert body["error"] == "token_unavailable"
    assert retry_after.isdigit()
    assert int(retry_after) >= 1
    assert upstream.seen == []


async def test_client_disconnect_cancels_the_upstream_request(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession, observer: RecordingObserver
) -> None:
    proxy = await make_proxy()
    await drop_the_client_while_the_upstream_waits(proxy, upstream, session)
    assert observer.done[-1]["status"] == 499
    assert observer.done[-1]["upstream_status"] is None
