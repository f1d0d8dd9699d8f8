"""Fixtures for the admin API: a real token endpoint on 127.0.0.1, the real runtime, cache and metrics.

The token endpoint's behaviour is switchable per test (``idp.mode``) so that readiness can be driven through
every state with the real ``TokenCache`` deciding what is permanent and what is not.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.integration.serving_support import ServerFactory
from tests.shared_fixtures import restore_logging as restore_logging  # autouse: undo configure_logging
from tokenrelay.admin import create_admin_app
from tokenrelay.metrics import Metrics
from tokenrelay.runtime import RuntimeHolder, compile_runtime
from tokenrelay.settings import Settings
from tokenrelay.tokens import TokenCache

#: The access token the test IdP issues; tests assert it never appears in admin output.
ISSUED_TOKEN = "admin-test-access-token-5f0c2b9e"
CLIENT_SECRET = "admin-test-client-secret-77aa"

Client = TestClient[web.Request, web.Application]
#: pytest-aiohttp's ``aiohttp_client`` fixture, for an application.
ClientFactory = Callable[[web.Application], Awaitable[Client]]


@dataclass
class FakeIdP:
    """A token endpoint whose answer is chosen by ``mode``: ``ok``, ``invalid_client`` or ``down`` (HTTP 503)."""

    server: TestServer
    mode: str = "ok"
    requests: int = 0
    expires_in: int = 300


@dataclass
class AdminStack:
    idp: FakeIdP
    holder: RuntimeHolder
    cache: TokenCache
    metrics: Metrics
    settings: Settings
    clock: Clock
    extra: dict[str, object] = field(default_factory=dict)

    async def fetch(self, profile: str) -> None:
        """Have the cache fetch (or try to fetch) the profile's token, as a prefetch or a request would."""
        binding = self.holder.current.bindings[profile]
        await self.cache.get(binding.key, binding.fetch, binding.policy)

    def admin_app(self, **options: Any) -> web.Application:
        """The admin application over this stack; ``options`` go to ``create_admin_app`` as they are."""
        return create_admin_app(holder=self.holder, cache=self.cache, metrics=self.metrics, **options)


class Clock:
    """The cache's monotonic clock, advanced by hand so expiry needs no sleeping."""

    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(name="idp")
async def _idp_fixture(aiohttp_server: ServerFactory) -> FakeIdP:
    state: dict[str, FakeIdP] = {}

    async def token(request: web.Request) -> web.Response:
        idp = state["idp"]
        idp.requests += 1
        await request.read()
        if idp.mode == "invalid_client":
            return web.json_response({"error": "invalid_client"}, status=401)
        if idp.mode == "down":
            return web.json_response({"error": "temporarily_unavailable"}, status=503)
        body = {"access_token": ISSUED_TOKEN, "token_type": "Bearer", "expires_in": idp.expires_in}
        return web.json_response(body)

    app = web.Application()
    app.router.add_post("/oauth/token", token)
    state["idp"] = FakeIdP(server=await aiohttp_server(app))
    return state["idp"]


def settings_for(idp: FakeIdP, *, api_scope: str = "read") -> Settings:
    """Two profiles against the fake IdP: ``api`` is prefetched, ``lazy`` is fetched on demand."""
    auth = {"token_host": str(idp.server.make_url("/")).rstrip("/")}
    client = {"id": "admin-tests", "secret": CLIENT_SECRET}
    return Settings(
        profiles={
            "api": {"client": client, "auth": auth, "scope": api_scope},
            "lazy": {"client": client, "auth": auth, "scope": "write", "prefetch": False},
        },
        routes=[
            {"name": "api", "match": {"path_prefix": "/api"}, "upstream": "http://127.0.0.1:9", "profile": "api"},
        ],
    )


@asynccontextmanager
async def running(settings: Settings, cache: TokenCache, metrics: Metrics) -> AsyncIterator[RuntimeHolder]:
    """The real runtime compiled from ``settings`` over ``cache``; closed (holder, then cache) on the way out."""
    async with aiohttp.ClientSession() as session:
        runtime = await compile_runtime(settings, session=session, previous=None, metrics=metrics)
        holder = RuntimeHolder(runtime, session=session, cache=cache, metrics=metrics)
        yield holder
        await holder.aclose()
        await cache.aclose()


@pytest.fixture(name="stack")
async def _stack_fixture(idp: FakeIdP) -> AsyncIterator[AdminStack]:
    clock = Clock()
    metrics = Metrics(version="0.0.0-test")
    cache = TokenCache(clock=clock)
    settings = settings_for(idp)
    async with running(settings, cache, metrics) as holder:
        yield AdminStack(idp=idp, holder=holder, cache=cache, metrics=metrics, settings=settings, clock=clock)


@pytest.fixture(name="admin")
async def _admin_fixture(stack: AdminStack, aiohttp_client: ClientFactory) -> Client:
    return await aiohttp_client(stack.admin_app())
