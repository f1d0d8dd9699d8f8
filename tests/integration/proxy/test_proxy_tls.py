"""Per-route TLS towards an https upstream: verification on by default, a custom CA, verify off, client certs."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from tests.integration.proxy.proxy_helpers import MakeProxy
from tests.integration.proxy.self_signed import make_cert


@dataclass
class TlsUpstreams:
    """``await start(client_ca=None)`` starts an https upstream and returns its URL; ``server_cert`` is its cert.

    The upstream answers ``True`` when the client presented a certificate, ``False`` otherwise.
    """

    start: Callable[..., Awaitable[str]]
    server_cert: Path


@pytest.fixture
async def tls_upstream(tmp_path: Path) -> AsyncIterator[TlsUpstreams]:
    runners: list[web.ServerRunner] = []
    server_cert, server_key = make_cert(tmp_path, "server")

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        return web.Response(text=str(bool(peer)))

    async def start(client_ca: Path | None = None) -> str:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(server_cert, server_key)
        if client_ca is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(client_ca)
        runner = web.ServerRunner(web.Server(handle))
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        return f"https://127.0.0.1:{runner.addresses[0][1]}"

    yield TlsUpstreams(start, server_cert)
    for runner in runners:
        await runner.cleanup()


async def test_unknown_upstream_certificate_is_refused_by_default(
    make_proxy: MakeProxy, tls_upstream: TlsUpstreams, session: aiohttp.ClientSession
) -> None:
    proxy = await make_proxy({"upstream": await tls_upstream.start()})
    async with session.get(proxy.make_url("/x")) as response:
        assert response.status == 502


async def test_route_ca_file_trusts_the_upstream(
    make_proxy: MakeProxy, tls_upstream: TlsUpstreams, session: aiohttp.ClientSession
) -> None:
    url = await tls_upstream.start()
    proxy = await make_proxy({"upstream": url, "tls": {"ca_file": str(tls_upstream.server_cert)}})
    async with session.get(proxy.make_url("/x")) as response:
        assert response.status == 200


async def test_verify_false_accepts_any_certificate(
    make_proxy: MakeProxy, tls_upstream: TlsUpstreams, session: aiohttp.ClientSession
) -> None:
    proxy = await make_proxy({"upstream": await tls_upstream.start(), "tls": {"verify": False}})
    async with session.get(proxy.make_url("/x")) as response:
        assert response.status == 200


async def test_route_client_certificate_is_presented(
    make_proxy: MakeProxy, tls_upstream: TlsUpstreams, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    client_cert, client_key = make_cert(tmp_path, "client")
    url = await tls_upstream.start(client_ca=client_cert)
    tls = {"ca_file": str(tls_upstream.server_cert), "cert_file": str(client_cert), "key_file": str(client_key)}
    proxy = await make_proxy({"upstream": url, "tls": tls})
    async with session.get(proxy.make_url("/x")) as response:
        assert response.status == 200
        assert await response.text() == "True"
