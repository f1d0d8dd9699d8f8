"""aiohttp's automatic request headers never reach the upstream, whichever fields the client sent itself."""

from __future__ import annotations

import pytest

from tests.integration.proxy.proxy_helpers import MakeProxy, Upstream, raw_exchange, split_response

_LIBRARY_FIELDS = b"User-Agent: probe/1\r\nAccept: text/plain\r\nAccept-Encoding: identity\r\n"


async def _send(make_proxy: MakeProxy, upstream: Upstream, head: bytes, body: bytes = b"") -> None:
    proxy = await make_proxy()
    raw = await raw_exchange(proxy.port, head + b"Host: h\r\nConnection: close\r\n" + _LIBRARY_FIELDS + b"\r\n" + body)
    assert split_response(raw)[0] == 200


@pytest.mark.parametrize("method", [b"GET", b"HEAD", b"DELETE", b"OPTIONS"])
async def test_a_bodyless_request_with_the_usual_fields_gets_no_content_type(
    make_proxy: MakeProxy, upstream: Upstream, method: bytes
) -> None:
    await _send(make_proxy, upstream, method + b" /x HTTP/1.1\r\n")
    assert "Content-Type" not in upstream.seen[0].headers


@pytest.mark.parametrize("method", [b"POST", b"PUT", b"PATCH"])
async def test_an_empty_post_like_request_gets_no_content_type(
    make_proxy: MakeProxy, upstream: Upstream, method: bytes
) -> None:
    await _send(make_proxy, upstream, method + b" /x HTTP/1.1\r\nContent-Length: 0\r\n")
    assert "Content-Type" not in upstream.seen[0].headers


async def test_a_body_without_content_type_gets_none(make_proxy: MakeProxy, upstream: Upstream) -> None:
    await _send(make_proxy, upstream, b"POST /x HTTP/1.1\r\nContent-Length: 2\r\n", b"hi")
    assert "Content-Type" not in upstream.seen[0].headers
    assert upstream.seen[0].body == b"hi"


async def test_the_clients_own_library_fields_pass_unchanged(make_proxy: MakeProxy, upstream: Upstream) -> None:
    await _send(make_proxy, upstream, b"GET /x HTTP/1.1\r\n")
    seen = upstream.seen[0].headers
    assert (seen.getall("User-Agent"), seen.getall("Accept"), seen.getall("Accept-Encoding")) == (
        ["probe/1"], ["text/plain"], ["identity"],
    )  # fmt: skip


async def test_a_client_content_type_passes_unchanged(make_proxy: MakeProxy, upstream: Upstream) -> None:
    await _send(make_proxy, upstream, b"PUT /x HTTP/1.1\r\nContent-Type: text/csv\r\nContent-Length: 2\r\n", b"a,")
    assert upstream.seen[0].headers.getall("Content-Type") == ["text/csv"]
