"""One replay on an upstream 401, with a fresh token and the same body; never more than once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
from aiohttp import web

from tests.integration.proxy.proxy_helpers import Issuer, MakeProxy, RecordingObserver, Seen, Upstream

RecordingResponder = Callable[[web.BaseRequest, Upstream], Awaitable[web.StreamResponse]]


def reject(
    token: str | None, *, status: int = 401, www_authenticate: str = 'Bearer error="invalid_token"'
) -> RecordingResponder:
    """An upstream that answers ``status`` to ``token`` (every token when None) and 200 otherwise."""

    async def respond(request: web.BaseRequest, upstream: Upstream) -> web.StreamResponse:
        body = await request.read()
        upstream.seen.append(Seen(request.method, request.raw_path, request.headers, body))
        if token is None or request.headers.get("Authorization") == f"Bearer {token}":
            return web.Response(status=status, text="nope", headers={"WWW-Authenticate": www_authenticate})
        return web.Response(text="fine")

    return respond


def install(upstream: Upstream, respond: RecordingResponder) -> None:
    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        return await respond(request, upstream)

    upstream.respond = handler


async def test_401_is_replayed_once_with_a_fresh_token_and_the_same_body(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession, observer: RecordingObserver
) -> None:
    install(upstream, reject("tok-1"))
    proxy = await make_proxy()
    async with session.post(proxy.make_url("/x"), data=b"the body") as response:
        assert response.status == 200
        assert await response.text() == "fine"
    assert [s.headers["Authorization"] for s in upstream.seen] == ["Bearer tok-1", "Bearer tok-2"]
    assert [s.body for s in upstream.seen] == [b"the body", b"the body"]
    assert observer.done[-1]["replayed"] is True


async def test_chunked_body_within_the_limit_is_replayed(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b"a" * 1000
        yield b"b" * 1000

    install(upstream, reject("tok-1"))
    proxy = await make_proxy()
    async with session.put(proxy.make_url("/x"), data=parts()) as response:
        assert response.status == 200
    assert [s.body for s in upstream.seen] == [b"a" * 1000 + b"b" * 1000] * 2


async def test_bodyless_request_is_replayed(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    install(upstream, reject("tok-1"))
    proxy = await make_proxy()
    async with session.get(proxy.make_url("/x")) as response:
        assert response.status == 200
    assert len(upstream.seen) == 2


async def test_body_above_max_replay_body_is_not_replayed_and_the_401_is_returned(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession, observer: RecordingObserver
) -> None:
    install(upstream, reject("tok-1"))
    proxy = await make_proxy({"max_replay_body": 10})
    async with session.post(proxy.make_url("/x"), data=b"x" * 100) as response:
        assert response.status == 401
        assert await response.text() == "nope"
    assert len(upstream.seen) == 1
    assert upstream.seen[0].body == b"x" * 100
    assert observer.skipped == [("r0", "body_too_large")]


async def test_body_exactly_at_the_limit_is_replayed(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    install(upstream, reject("tok-1"))
    proxy = await make_proxy({"max_replay_body": 10})
    async with session.post(proxy.make_url("/x"), data=b"x" * 10) as response:
        assert response.status == 200
    assert [s.body for s in upstream.seen] == [b"x" * 10] * 2


async def test_insufficient_scope_is_not_replayed(
    make_proxy: MakeProxy, upstream: Upstream, issuer: Issuer, session: aiohttp.ClientSession
) -> None:
    install(upstream, reject(None, www_authenticate='Bearer realm="api", error="insufficient_scope", scope="admin"'))
    proxy = await make_proxy()
    async with session.get(proxy.make_url("/x")) as response:
        assert response.status == 401
    assert len(upstream.seen) == 1
    assert issuer.issued == 1


async def test_401_after_the_replay_is_returned_as_is(
    make_proxy: MakeProxy, upstream: Upstream, issuer: Issuer, session: aiohttp.ClientSession
) -> None:
    install(upstream, reject(None))
    proxy = await make_proxy()
    async with session.get(proxy.make_url("/x")) as response:
        assert response.status == 401
        assert await response.text() == "nope"
    assert len(upstream.seen) == 2
    assert issuer.issued == 2


async def test_retry_on_401_false_returns_the_401(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    install(upstream, reject("tok-1"))
    proxy = await make_proxy({"retry_on_401": False})
    async with session.get(proxy.make_url("/x")) as response:
        assert response.status == 401
    assert len(upstream.seen) == 1


async def test_configured_retry_statuses_are_replayed(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    install(upstream, reject("tok-1", status=403))
    proxy = await make_proxy({"retry_statuses": [401, 403]})
    async with session.get(proxy.make_url("/x")) as response:
        assert response.status == 200
    assert len(upstream.seen) == 2


async def test_the_rejected_token_is_not_used_by_the_next_request(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    install(upstream, reject("tok-1"))
    proxy = await make_proxy()
    async with session.get(proxy.make_url("/x")) as response:
        assert response.status == 200
    async with session.get(proxy.make_url("/y")) as response:
        assert response.status == 200
    assert [s.headers["Authorization"] for s in upstream.seen] == ["Bearer tok-1", "Bearer tok-2", "Bearer tok-2"]
