"""``Expect: 100-continue`` on the real ``serve`` listener: ``100 Continue`` only for a request that will be sent.

The handler decides on the route, the access policy and the token *before* inviting the body, so a client whose
request cannot be served (no route, no token) never uploads it; a request that can be served gets exactly one
interim answer. A listener that let aiohttp answer ``Expect`` itself (an ``Application`` router does, before any
handler runs) would invite every body.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from tests.integration.through_proxy.support import EchoUpstream, SwitchableIdp, one_route_config, serving
from tokenrelay.app import create_proxy_app
from tokenrelay.proxy import SERVER_OPTIONS
from tokenrelay.settings import build_settings


async def first_answer_head(address: tuple[str, int], path: str) -> bytes:
    """Send a PUT head with ``Expect: 100-continue`` and no body; return the first answer head that comes back."""
    reader, writer = await asyncio.open_connection(*address)
    try:
        writer.write(f"PUT {path} HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n".encode())
        await writer.drain()
        async with asyncio.timeout(5):
            return await reader.readuntil(b"\r\n\r\n")
    finally:
        writer.close()
        await writer.wait_closed()


async def test_no_route_is_answered_without_inviting_the_body(idp: SwitchableIdp, upstream: EchoUpstream) -> None:
    async with serving(one_route_config(idp, upstream)) as listening:
        head = await first_answer_head(listening.proxy, "/elsewhere/x")
    assert head.startswith(b"HTTP/1.1 404")


async def test_unavailable_token_is_answered_without_inviting_the_body(
    idp: SwitchableIdp, upstream: EchoUpstream
) -> None:
    idp.mode = "http_500"
    async with serving(one_route_config(idp, upstream)) as listening:
        head = await first_answer_head(listening.proxy, "/billing/x")
    assert head.startswith(b"HTTP/1.1 503")
    assert upstream.seen == []


async def test_servable_request_gets_one_100_continue_then_the_answer(
    idp: SwitchableIdp, upstream: EchoUpstream
) -> None:
    async with serving(one_route_config(idp, upstream)) as listening:
        reader, writer = await asyncio.open_connection(*listening.proxy)
        try:
            writer.write(
                b"PUT /billing/x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n"
                b"Connection: close\r\n\r\n"
            )
            await writer.drain()
            async with asyncio.timeout(5):
                interim = await reader.readuntil(b"\r\n\r\n")
            writer.write(b"hello")
            await writer.drain()
            async with asyncio.timeout(5):
                rest = await reader.read()
        finally:
            writer.close()
            await writer.wait_closed()
    assert interim.startswith(b"HTTP/1.1 100 Continue")
    assert rest.startswith(b"HTTP/1.1 200")
    assert b"100 Continue" not in rest
    assert upstream.seen == ["Bearer tok-1"]


async def test_embedded_application_does_not_invite_the_body_of_an_unroutable_request(
    idp: SwitchableIdp, upstream: EchoUpstream
) -> None:
    """``create_proxy_app`` (the embedding entry point) should keep the promise ``serve`` keeps."""
    runner = web.AppRunner(create_proxy_app(build_settings(one_route_config(idp, upstream))), **SERVER_OPTIONS)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        head = await first_answer_head(("127.0.0.1", runner.addresses[0][1]), "/elsewhere/x")
    finally:
        await runner.cleanup()
    assert head.startswith(b"HTTP/1.1 404")
