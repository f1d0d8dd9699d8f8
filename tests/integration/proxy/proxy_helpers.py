"""Helpers for the forwarding path tests (imported by conftest.py and the tests; a unique module name).

The raw-socket helpers (``raw_request``, ``raw_exchange``, ``split_response``, ``json_body``) serve the ``serve``
tests in ``through_proxy/`` too.

Everything listens on 127.0.0.1. The proxy is served the way production serves it: a low-level ``web.Server``
with ``handler_cancellation=True``. The token cache is the real ``TokenCache``; its fetcher POSTs to an aiohttp
token endpoint that issues ``tok-1``, ``tok-2``... so a test can tell which token the upstream saw.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDictProxy

from tokenrelay.grant.errors import TransportError
from tokenrelay.proxy import RouteTable, TokenBinding
from tokenrelay.settings import Settings
from tokenrelay.tokens import IssuedToken, RefreshPolicy, TokenCache, cache_key

Responder = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    """One request as the upstream received it."""

    method: str
    raw_path: str
    headers: CIMultiDictProxy[str]
    body: bytes


@dataclass
class Upstream:
    """A recording upstream; set ``respond`` to change its answer (it then reads the body itself)."""

    url: str = ""
    seen: list[Seen] = field(default_factory=list)
    respond: Responder | None = None

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if self.respond is not None:
            return await self.respond(request)
        body = await request.read()
        self.seen.append(Seen(request.method, request.raw_path, request.headers, body))
        return web.Response(text="ok", headers={"X-Upstream": "1"})


def chunked(*parts: bytes) -> Responder:
    """An upstream answer that sends ``parts`` as separate chunks of a chunked 200 response."""

    async def respond(request: web.BaseRequest) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for part in parts:
            await response.write(part)
        await response.write_eof()
        return response

    return respond


@dataclass
class Issuer:
    """The token endpoint: counts requests; ``fail`` makes it answer 503."""

    url: str = ""
    issued: int = 0
    fail: bool = False

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if self.fail:
            return web.Response(status=503)
        self.issued += 1
        return web.json_response({"access_token": f"tok-{self.issued}", "expires_in": 3600})


class RecordingObserver:
    """A ProxyObserver that keeps every call."""

    def __init__(self) -> None:
        self.done: list[dict[str, Any]] = []
        self.skipped: list[tuple[str, str]] = []
        self.lookups: list[tuple[str, bool]] = []
        self.finished = asyncio.Event()  # set by every request_done

    def request_done(
        self,
        route: str,
        method: str,
        status: int,
        upstream_status: int | None,
        duration: float,
        upstream_duration: float | None,
        replayed: bool,
    ) -> None:
        self.done.append(
            {"route": route, "method": method, "status": status, "upstream_status": upstream_status,
             "replayed": replayed, "duration": duration, "upstream_duration": upstream_duration}
        )  # fmt: skip
        self.finished.set()

    def replay_skipped(self, route: str, reason: str) -> None:
        self.skipped.append((route, reason))

    def token_lookup(self, profile: str, hit: bool) -> None:
        self.lookups.append((profile, hit))


@dataclass(frozen=True)
class FakeRuntime:
    settings: Settings
    routes: RouteTable


@dataclass
class Proxy:
    """A running proxy: its base URL, port, and the objects behind it."""

    url: str
    port: int
    cache: TokenCache
    observer: RecordingObserver
    settings: Settings

    def make_url(self, path: str) -> str:
        return self.url + path


MakeProxy = Callable[..., Awaitable[Proxy]]


def make_binding(issuer: Issuer, session: aiohttp.ClientSession) -> TokenBinding:
    async def fetch() -> IssuedToken:
        async with session.post(issuer.url) as response:
            if response.status != 200:
                raise TransportError("token endpoint unavailable", url=issuer.url)
            data = await response.json()
        return IssuedToken(data["access_token"], float(data["expires_in"]))

    key = cache_key(
        "p", token_endpoint=issuer.url, client_id="client", credential_digest="d" * 64,
        auth_method="client_secret_basic", scope=None, audience=None, resource=(), params={},
    )  # fmt: skip
    return TokenBinding(key=key, fetch=fetch, policy=RefreshPolicy(backoff_initial=2.0, fetch_timeout=5.0))


def raw_request(target: bytes, host: bytes = b"h", method: bytes = b"GET") -> bytes:
    """A bodiless HTTP/1.1 request with the target exactly as given, asking the server to close afterwards."""
    return method + b" " + target + b" HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n"


async def raw_exchange(port: int, data: bytes) -> bytes:
    """Send raw bytes to 127.0.0.1:port and read until the server closes (send ``Connection: close``)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(5.0):
            return await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()


def split_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names, last wins) and body of one raw HTTP/1.1 response without chunking."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def json_body(raw: bytes) -> dict[str, Any]:
    return json.loads(split_response(raw)[2])  # type: ignore[no-any-return]


async def drop_the_client_while_the_upstream_waits(
    proxy: Proxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    """Send a request the upstream holds on to, then close the client's connection to the proxy.

    Returns once the upstream's handler was cancelled (the proxy gave the upstream request up) and the proxy
    reported the request done to its observer; a proxy that does neither within 5 s fails with ``TimeoutError``.
    """
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def respond(request: web.BaseRequest) -> web.StreamResponse:
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return web.Response(text="too late")  # pragma: no cover

    upstream.respond = respond
    request = asyncio.create_task(session.get(proxy.make_url("/x")))
    async with asyncio.timeout(5):
        await started.wait()
    request.cancel()  # closes the client's connection to the proxy
    async with asyncio.timeout(5):
        await cancelled.wait()
        await proxy.observer.finished.wait()
