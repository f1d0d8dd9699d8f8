"""Who the admin listener answers: probes for every peer that reaches it, token state only for trusted peers.

The kubelet probes from the node's address, which is neither loopback nor usually in ``allow_clients``; a
probe answered 403 would keep every pod unready. The peer address is simulated by a first middleware that
clones the request with the address from a test header, so the test still talks over 127.0.0.1 only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.integration.runtime.runtime_support import FakeIdp, Upstream, relay_config
from tokenrelay.app import SERVICES, create_admin_listener_app, create_proxy_app
from tokenrelay.settings import build_settings

PEER_HEADER = "X-Test-Peer"


@web.middleware
async def simulated_peer(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    peer = request.headers.get(PEER_HEADER)
    return await handler(request.clone(remote=peer) if peer else request)


@asynccontextmanager
async def admin_listener(config: dict[str, Any]) -> AsyncIterator[str]:
    settings = build_settings(config)
    proxy_runner = web.AppRunner(create_proxy_app(settings))
    await proxy_runner.setup()  # starts the services (cache, holder) the admin app reports on
    admin_app = create_admin_listener_app(proxy_runner.app[SERVICES], settings)
    admin_app.middlewares.insert(0, simulated_peer)
    admin_runner = web.AppRunner(admin_app)
    await admin_runner.setup()
    site = web.TCPSite(admin_runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{admin_runner.addresses[0][1]}"
    finally:
        await admin_runner.cleanup()
        await proxy_runner.cleanup()


async def _status(client: aiohttp.ClientSession, url: str, peer: str) -> int:
    async with client.get(url, headers={PEER_HEADER: peer}) as response:
        return response.status


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
async def test_probes_answer_a_peer_outside_allow_clients(idp: FakeIdp, upstream: Upstream, path: str) -> None:
    config = relay_config(idp, upstream, access={"allow_clients": ["10.0.0.0/8"]})
    async with admin_listener(config) as base, aiohttp.ClientSession() as client:
        assert await _status(client, base + path, "192.0.2.10") in (200, 503)  # answered, not refused


@pytest.mark.parametrize("path", ["/metrics", "/tokens"])
async def test_token_state_is_refused_to_a_peer_outside_allow_clients(
    idp: FakeIdp, upstream: Upstream, path: str
) -> None:
    config = relay_config(idp, upstream, access={"allow_clients": ["10.0.0.0/8"]})
    async with admin_listener(config) as base, aiohttp.ClientSession() as client:
        assert await _status(client, base + path, "192.0.2.10") == 403
        assert await _status(client, base + path, "10.1.2.3") == 200
        assert await _status(client, base + path, "127.0.0.1") == 200


async def test_open_access_lets_any_peer_read_metrics(idp: FakeIdp, upstream: Upstream) -> None:
    config = relay_config(idp, upstream, access={"open": True})
    async with admin_listener(config) as base, aiohttp.ClientSession() as client:
        assert await _status(client, base + "/metrics", "192.0.2.10") == 200
