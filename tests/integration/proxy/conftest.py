"""Fixtures for the forwarding path: a real token endpoint, a real upstream, the handler on a real listener.

Everything listens on 127.0.0.1. The proxy is served the way production serves it: a low-level ``web.Server``
with ``handler_cancellation=True``. The token cache is the real ``TokenCache``; its fetcher POSTs to an aiohttp
token endpoint that issues ``tok-1``, ``tok-2``... so a test can tell which token the upstream saw.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.integration.proxy.proxy_helpers import (
    FakeRuntime,
    Issuer,
    MakeProxy,
    Proxy,
    RecordingObserver,
    Upstream,
    make_binding,
)
from tokenrelay.proxy import SERVER_OPTIONS, ProxyHandler, RouteTable, create_server
from tokenrelay.settings import Settings
from tokenrelay.tokens import TokenCache


@pytest.fixture
async def upstream(aiohttp_raw_server: Any) -> Upstream:
    up = Upstream()
    server = await aiohttp_raw_server(up.handle, auto_decompress=False)  # test servers cancel handlers already
    up.url = str(server.make_url("")).rstrip("/")
    return up


@pytest.fixture
async def issuer(aiohttp_raw_server: Any) -> Issuer:
    iss = Issuer()
    server = await aiohttp_raw_server(iss.handle)
    iss.url = str(server.make_url("/token"))
    return iss


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def cache() -> AsyncIterator[TokenCache]:
    c = TokenCache()
    yield c
    await c.aclose()


@pytest.fixture
def observer() -> RecordingObserver:
    return RecordingObserver()


@pytest.fixture
async def make_proxy(
    upstream: Upstream,
    issuer: Issuer,
    session: aiohttp.ClientSession,
    cache: TokenCache,
    observer: RecordingObserver,
) -> AsyncIterator[MakeProxy]:
    """``await make_proxy(route_overrides..., access=..., log=..., server=...)`` starts a proxy.

    ``app_mode=True`` serves the handler as an ``Application`` catch-all route (how ``app.py`` serves it) instead
    of a low-level ``web.Server``.
    """
    runners: list[web.BaseRunner] = []

    async def factory(*routes: dict[str, Any], app_mode: bool = False, **sections: Any) -> Proxy:
        if not routes:
            routes = ({},)
        route_settings = [
            {"name": f"r{i}", "match": {"path_prefix": "/"}, "upstream": upstream.url, "profile": "p"} | r
            for i, r in enumerate(routes)
        ]
        settings = Settings(
            profiles={"p": {"client": {"id": "client", "secret": "s"}, "auth": {"token_host": issuer.url}}},
            routes=route_settings,
            **sections,
        )
        table = RouteTable.build(settings.routes, {"p": make_binding(issuer, session)})
        runtime = FakeRuntime(settings, table)
        handler = ProxyHandler(
            runtime=lambda: runtime, session=session, cache=cache, observer=observer, access=settings.access
        )
        runner: web.BaseRunner
        if app_mode:
            app = web.Application()

            async def catch_all(request: web.Request) -> web.StreamResponse:
                return await handler(request)

            app.router.add_route("*", "/{tail:.*}", catch_all)
            runner = web.AppRunner(app, **SERVER_OPTIONS)
        else:
            runner = web.ServerRunner(create_server(handler))
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        return Proxy(f"http://127.0.0.1:{port}", port, cache, observer, settings)

    yield factory
    for runner in reversed(runners):
        await runner.cleanup()
