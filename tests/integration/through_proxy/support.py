"""Support for the token-cache-through-the-proxy tests: a token endpoint whose failures can be switched on and off.

Every test here drives the real ``tokenrelay.server.serve`` (both listeners, the real cache, the real grant core)
in-process (``tests.integration.serving_support.serving``), or the embedded ``Application`` (``embedded``), so what
is asserted is what a client of the proxy sees, not what the cache returns to a unit test.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import aiohttp
from aiohttp import web

from tokenrelay.app import create_proxy_app
from tokenrelay.proxy import SERVER_OPTIONS
from tokenrelay.settings import build_settings

Mode = Literal["ok", "http_500", "garbage", "reset", "slow", "invalid_client", "throttled"]


@dataclass
class SwitchableIdp:
    """A token endpoint issuing ``tok-1``, ``tok-2`` ...; ``mode`` picks how it fails; ``gate`` holds answers."""

    url: str = ""
    mode: Mode = "ok"
    #: ``None`` leaves ``expires_in`` out of the answer.
    expires_in: int | None = 300
    #: Makes the n-th access token (default ``tok-<n>``).
    make_token: Callable[[int], str] = field(default=lambda n: f"tok-{n}")
    #: How long ``slow`` waits before answering.
    delay: float = 5.0
    #: Token requests received, whatever was answered.
    received: int = 0
    issued: int = 0
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.gate.set()

    async def token(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        self.received += 1
        self.arrived.set()
        await self.gate.wait()
        if self.mode == "slow":
            await asyncio.sleep(self.delay)
        if self.mode == "http_500":
            return web.json_response({"error": "server_error"}, status=500)
        if self.mode == "garbage":
            return web.Response(body=b"<html>gateway says hello</html>", content_type="application/json")
        if self.mode == "throttled":
            return web.json_response({"error": "slow_down"}, status=429, headers={"Retry-After": "30"})
        if self.mode == "invalid_client":
            return web.json_response({"error": "invalid_client", "error_description": "unknown client"}, status=401)
        if self.mode == "reset":
            assert request.transport is not None
            request.transport.abort()  # the connection dies before a status line: "IdP down" to the client
            return web.Response()
        self.issued += 1
        body: dict[str, Any] = {"access_token": self.make_token(self.issued), "token_type": "Bearer"}
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        return web.json_response(body, headers={"Cache-Control": "no-store"})


@dataclass
class EchoUpstream:
    """Echoes the token it was sent; tokens in ``reject`` get 401 once ``hold_rejections`` of them have arrived.

    Every rejected request is held until all of them are in flight at once (the burst is real). The first half
    is then answered at once; the second half waits for ``second_wave``, so its 401s reach the proxy *after*
    the refresh that the first half caused: stale rejections of a token that is no longer cached.
    """

    url: str = ""
    reject: frozenset[str] = frozenset()
    hold_rejections: int = 0
    rejected_arrivals: int = 0
    all_rejections_arrived: asyncio.Event = field(default_factory=asyncio.Event)
    second_wave: asyncio.Event = field(default_factory=asyncio.Event)
    seen: list[str | None] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        authorization = request.headers.get("Authorization")
        self.seen.append(authorization)
        if authorization in self.reject:
            self.rejected_arrivals += 1
            arrival = self.rejected_arrivals
            if arrival >= self.hold_rejections:
                self.all_rejections_arrived.set()
            await asyncio.wait_for(self.all_rejections_arrived.wait(), 20)
            if arrival > self.hold_rejections // 2:
                await asyncio.wait_for(self.second_wave.wait(), 20)
            return web.json_response(
                {"error": "invalid_token"}, status=401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
            )
        return web.json_response({"authorization": authorization})


class Served(Protocol):
    """Any loopback server of these tests: its base URL."""

    url: str


def one_route_config(idp: Served, upstream: Served, **profile: Any) -> dict[str, Any]:
    """One profile (``billing``, fetched on demand) and one route ``/billing`` -> upstream; loopback, port 0."""
    return {
        "listen": {"host": "127.0.0.1", "port": 0},
        "admin": {"host": "127.0.0.1", "port": 0},
        "log": {"access_log": False},
        "server": {"shutdown_grace": 2.0, "max_connections_per_host": 0},
        "profiles": {
            "billing": {
                "client": {"id": "relay-client", "secret": "relay-secret-value"},
                "auth": {"tokenHost": idp.url, "tokenPath": "/token"},
                "prefetch": False,
            }
            | profile
        },
        "routes": [
            {
                "name": "billing",
                "match": {"path_prefix": "/billing"},
                "upstream": upstream.url,
                "strip_prefix": True,
                "profile": "billing",
            }
        ],
    }


def url(address: tuple[str, int], path: str) -> str:
    return f"http://{address[0]}:{address[1]}{path}"


async def lookups(client: aiohttp.ClientSession, admin: tuple[str, int], result: str) -> int:
    """``tokenrelay_token_cache_lookups_total`` for profile ``billing`` and ``result`` (hit/miss) from /metrics."""
    async with client.get(url(admin, "/metrics")) as response:
        text = await response.text()
    pattern = rf'^tokenrelay_token_cache_lookups_total\{{[^}}]*result="{result}"[^}}]*\}} (\d+(?:\.\d+)?)$'
    found = re.search(pattern, text, re.MULTILINE)
    return int(float(found.group(1))) if found else 0


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: dict[str, Any]


async def fetch(client: aiohttp.ClientSession, target: str) -> Answer:
    async with client.get(target) as response:
        return Answer(response.status, dict(response.headers), await response.json())


@asynccontextmanager
async def embedded(config: dict[str, Any]) -> AsyncIterator[tuple[str, int]]:
    """``create_proxy_app`` served the documented way (``AppRunner(app, **SERVER_OPTIONS)``) on 127.0.0.1."""
    runner = web.AppRunner(create_proxy_app(build_settings(config)), **SERVER_OPTIONS)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield ("127.0.0.1", runner.addresses[0][1])
    finally:
        await runner.cleanup()
