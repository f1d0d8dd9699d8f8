"""The handler served as an ``Application`` catch-all route (as ``app.py`` does) behaves like the low-level one."""

from __future__ import annotations

import gzip

import aiohttp

from tests.integration.expect_continue import put_after_continue
from tests.integration.proxy.proxy_helpers import (
    MakeProxy,
    RecordingObserver,
    Upstream,
    drop_the_client_while_the_upstream_waits,
    raw_exchange,
    raw_request,
    split_response,
)


async def test_app_mode_forwards_with_the_token_and_the_raw_target(make_proxy: MakeProxy, upstream: Upstream) -> None:
    proxy = await make_proxy(app_mode=True)
    target = b"/a%2Fb/%7e?x=%2f&y=a+b"
    raw = await raw_exchange(proxy.port, raw_request(target))
    assert split_response(raw)[0] == 200
    assert upstream.seen[0].raw_path == target.decode()
    assert upstream.seen[0].headers["Authorization"] == "Bearer tok-1"


async def test_app_mode_routes_absolute_form_targets_by_host(make_proxy: MakeProxy, upstream: Upstream) -> None:
    proxy = await make_proxy({"match": {"host": "billing.internal"}}, app_mode=True)
    raw = await raw_exchange(proxy.port, raw_request(b"http://billing.internal/x?q=1", b"billing.internal"))
    assert split_response(raw)[0] == 200
    assert upstream.seen[0].raw_path == "/x?q=1"
    raw = await raw_exchange(proxy.port, raw_request(b"http://other.example/", b"x"))
    assert split_response(raw)[0] == 403


async def test_app_mode_sends_exactly_one_100_continue(make_proxy: MakeProxy, upstream: Upstream) -> None:
    proxy = await make_proxy(app_mode=True)
    interim, rest = await put_after_continue(("127.0.0.1", proxy.port), "/x", b"ok")
    assert interim.startswith(b"HTTP/1.1 100 Continue")
    assert rest.startswith(b"HTTP/1.1 200")
    assert upstream.seen[0].body == b"ok"


async def test_app_mode_leaves_compressed_request_bodies_alone(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    compressed = gzip.compress(b"data " * 100)
    proxy = await make_proxy(app_mode=True)
    async with session.post(proxy.make_url("/x"), data=compressed, headers={"Content-Encoding": "gzip"}) as response:
        assert response.status == 200
    assert upstream.seen[0].body == compressed


async def test_app_mode_client_disconnect_cancels_the_upstream(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession, observer: RecordingObserver
) -> None:
    proxy = await make_proxy(app_mode=True)
    await drop_the_client_while_the_upstream_waits(proxy, upstream, session)
    assert observer.done[-1]["status"] == 499
