"""A scriptable token endpoint on 127.0.0.1 and a grant-core client pointed at it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tokenrelay.grant.client_credentials import ClientCredentials

CLIENT_SECRET = "s3cr3t-client-secret"


@dataclass
class Idp:
    """The token endpoint's behaviour, changed by each test; ``requests`` counts token requests."""

    mode: str = "ok"
    expires_in: float | None = 3600.0
    token_value: Callable[[int], str] = lambda n: f"access-token-value-{n}"
    gate: asyncio.Event | None = None
    requests: int = 0
    received: asyncio.Event = field(default_factory=asyncio.Event)
    forms: list[dict[str, str]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        self.forms.append(dict(await request.post()))
        self.received.set()
        if self.gate is not None:
            await self.gate.wait()
        return self._answer()

    def _answer(self) -> web.StreamResponse:
        if self.mode == "error500":
            return web.Response(status=500, text="<html>internal error</html>", content_type="text/html")
        if self.mode == "garbage":
            return web.Response(status=200, text="<html>not a token</html>", content_type="text/html")
        if self.mode == "invalid_client":
            return web.json_response({"error": "invalid_client"}, status=401)
        if self.mode == "busy":
            return web.json_response({"error": "slow_down"}, status=429, headers={"Retry-After": "7"})
        body: dict[str, object] = {"access_token": self.token_value(self.requests), "token_type": "Bearer"}
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        return web.json_response(body)


@pytest.fixture
def idp() -> Idp:
    return Idp()


@pytest.fixture
async def idp_server(idp: Idp, aiohttp_server: Callable[[web.Application], Awaitable[TestServer]]) -> TestServer:
    app = web.Application()
    app.router.add_post("/oauth/token", idp.handle)
    return await aiohttp_server(app)


@pytest.fixture
async def client(idp_server: TestServer) -> AsyncIterator[ClientCredentials]:
    config = {
        "client": {"id": "svc", "secret": CLIENT_SECRET},
        "auth": {"token_host": str(idp_server.make_url("/")).rstrip("/")},
        "http": {"timeout": 5.0},
    }
    async with ClientCredentials(config) as grant_client:
        yield grant_client


@pytest.fixture
async def dead_client(unused_tcp_port: int) -> AsyncIterator[ClientCredentials]:
    """A client whose token endpoint refuses connections (nothing listens on the port)."""
    config = {
        "client": {"id": "svc", "secret": CLIENT_SECRET},
        "auth": {"token_host": f"http://127.0.0.1:{unused_tcp_port}"},
    }
    async with ClientCredentials(config) as grant_client:
        yield grant_client
