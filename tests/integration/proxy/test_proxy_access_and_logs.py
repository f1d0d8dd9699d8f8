"""Inbound access control, the access log line, and that no token ever reaches a log line."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from tests.integration.proxy.proxy_helpers import MakeProxy, Upstream
from tokenrelay.fingerprints import fingerprint


async def test_client_outside_allow_clients_is_forbidden(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    proxy = await make_proxy(access={"allow_clients": ["10.0.0.0/8"]})
    async with session.get(proxy.make_url("/x")) as response:
        assert response.status == 403
        assert (await response.json())["error"] == "forbidden"
    assert upstream.seen == []


async def test_client_inside_allow_clients_is_served(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    proxy = await make_proxy(access={"allow_clients": ["10.0.0.0/8", "127.0.0.0/8"]})
    async with session.get(proxy.make_url("/x")) as response:
        assert response.status == 200


@pytest.mark.parametrize("headers", [{}, {"X-Tokenrelay-Key": "wrong"}, {"X-Tokenrelay-Key": "k1x"}])
async def test_missing_or_wrong_api_key_is_forbidden(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession, headers: dict[str, str]
) -> None:
    proxy = await make_proxy(access={"api_keys": ["k1", "k2"]})
    async with session.get(proxy.make_url("/x"), headers=headers) as response:
        assert response.status == 403
    assert upstream.seen == []


async def test_valid_api_key_is_served_and_never_forwarded(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    proxy = await make_proxy(access={"api_keys": ["k1", "k2"], "api_key_header": "X-Proxy-Key"})
    async with session.get(proxy.make_url("/x"), headers={"X-Proxy-Key": "k2"}) as response:
        assert response.status == 200
    assert "X-Proxy-Key" not in upstream.seen[0].headers


async def test_access_is_checked_before_routing(make_proxy: MakeProxy, session: aiohttp.ClientSession) -> None:
    proxy = await make_proxy({"match": {"path_prefix": "/api"}}, access={"api_keys": ["k1"]})
    async with session.get(proxy.make_url("/nothing-here")) as response:
        assert response.status == 403


async def test_access_log_line_has_route_status_fingerprint_and_no_query_values(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    proxy = await make_proxy()
    with capture_logs() as logs:
        async with session.get(proxy.make_url("/x?user=alice&key=s3cret&flag"), headers={"X-Request-Id": "rid-1"}):
            pass
    lines = [e for e in logs if e["event"] == "request"]
    assert len(lines) == 1
    line = lines[0]
    assert line["path"] == "/x?user=&key=&flag="
    assert (line["route"], line["method"], line["status"], line["upstream_status"]) == ("r0", "GET", 200, 200)
    assert line["token"] == fingerprint("tok-1")
    assert line["replayed"] is False
    assert line["request_id"] == "rid-1"
    assert line["duration_ms"] >= 0


@pytest.mark.parametrize("sections", [{"log": {"access_log": False}}, {"log": {"level": "warning"}}])
async def test_access_log_is_skipped_when_disabled(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession, sections: dict[str, object]
) -> None:
    proxy = await make_proxy(**sections)
    with capture_logs() as logs:
        async with session.get(proxy.make_url("/x")) as response:
            assert response.status == 200
    assert [e for e in logs if e["event"] == "request"] == []


async def test_no_token_appears_in_any_log_line(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    async def respond(request: web.BaseRequest) -> web.StreamResponse:
        if request.headers.get("Authorization") == "Bearer tok-1":
            return web.Response(status=401)
        return web.Response(text="ok")

    upstream.respond = respond
    proxy = await make_proxy()
    with capture_logs() as logs:
        async with session.get(proxy.make_url("/x")) as response:
            assert response.status == 200
    text = repr(logs)
    assert "tok-1" not in text
    assert "tok-2" not in text
    assert fingerprint("tok-1") in text  # the rejected token is identified by its fingerprint
    assert any(e["event"] == "token_rejected" for e in logs)
