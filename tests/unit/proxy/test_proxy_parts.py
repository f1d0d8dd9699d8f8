"""The small parts of the forwarding path, without sockets: headers, access, request id, errors, replay rules."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import StreamReader
from multidict import CIMultiDict, CIMultiDictProxy

from tokenrelay.proxy import AccessPolicy, ProxyError, error_response
from tokenrelay.proxy.handler import loggable_path
from tokenrelay.proxy.headers import InboundContext, response_headers, upstream_headers
from tokenrelay.proxy.replay import NO_BODY, read_body, wants_replay
from tokenrelay.proxy.request_id import request_id_for
from tokenrelay.settings import AccessSettings

CTX = InboundContext(peer="10.1.2.3", scheme="http", host="svc.local", version="1.1", request_id="rid")


def headers(*pairs: tuple[str, str]) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(pairs))


def build(inbound: CIMultiDictProxy[str], **kw: Any) -> CIMultiDict[str]:
    options: dict[str, Any] = {"upstream_host": "up:8443", "token_header": "Authorization",
                               "token_value": "Bearer T", "forwarded": True, "via": True} | kw  # fmt: skip
    return upstream_headers(inbound, CTX, **options)


def test_upstream_headers_replace_every_authorization_with_one() -> None:
    out = build(headers(("authorization", "a"), ("Authorization", "b")))
    assert out.getall("Authorization") == ["Bearer T"]


def test_upstream_headers_keep_repeated_end_to_end_fields_in_order() -> None:
    out = build(headers(("Cookie", "a=1"), ("X-Multi", "1"), ("X-Multi", "2")))
    assert out.getall("X-Multi") == ["1", "2"]
    assert out["Cookie"] == "a=1"


def test_upstream_headers_drop_every_connection_named_field_from_all_connection_headers() -> None:
    inbound = headers(("Connection", "X-A, x-b"), ("Connection", "X-C"), ("X-A", "1"), ("X-B", "1"), ("X-C", "1"))
    out = build(inbound)
    assert not {"X-A", "X-B", "X-C", "Connection"} & set(out)


def test_upstream_headers_drop_extra_names_and_expect() -> None:
    out = build(headers(("X-Key", "k"), ("Expect", "100-continue"), ("X-Keep", "1")), drop=frozenset({"x-key"}))
    assert "X-Key" not in out
    assert "Expect" not in out
    assert out["X-Keep"] == "1"


def test_upstream_headers_replace_inbound_host_and_request_id() -> None:
    out = build(headers(("Host", "inbound"), ("X-Request-Id", "spoofed")))
    assert out.getall("Host") == ["up:8443"]
    assert out.getall("X-Request-Id") == ["rid"]


def test_upstream_headers_fold_existing_via_and_xff() -> None:
    out = build(headers(("Via", "1.0 a"), ("Via", "1.1 b"), ("X-Forwarded-For", "1.1.1.1")))
    assert out.getall("Via") == ["1.0 a, 1.1 b, 1.1 tokenrelay"]
    assert out["X-Forwarded-For"] == "1.1.1.1, 10.1.2.3"


def test_upstream_headers_keep_an_earlier_proxy_forwarded_proto_and_host() -> None:
    out = build(headers(("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "public.example")))
    assert out["X-Forwarded-Proto"] == "https"
    assert out["X-Forwarded-Host"] == "public.example"


def test_upstream_headers_on_a_first_hop_add_each_forwarded_field_once() -> None:
    out = build(headers(("Accept", "*/*")))
    assert out.getall("X-Forwarded-For") == ["10.1.2.3"]
    assert out.getall("X-Forwarded-Proto") == ["http"]
    assert out.getall("X-Forwarded-Host") == ["svc.local"]
    assert out.getall("Via") == ["1.1 tokenrelay"]


def test_upstream_headers_fold_into_a_token_header_configured_under_a_forwarded_name() -> None:
    out = build(headers(("Accept", "*/*")), token_header="Via", token_value="T")
    assert out.getall("Via") == ["T, 1.1 tokenrelay"]


def test_upstream_headers_without_token_leave_authorization_alone() -> None:
    out = build(headers(("Authorization", "Basic x")), token_header=None, token_value=None)
    assert out["Authorization"] == "Basic x"


def test_response_headers_drop_hop_by_hop_and_add_via_and_request_id() -> None:
    upstream = headers(
        ("Transfer-Encoding", "chunked"), ("Connection", "keep-alive, X-Hop"), ("X-Hop", "1"),
        ("Set-Cookie", "a"), ("Set-Cookie", "b"), ("Content-Encoding", "gzip"),
    )  # fmt: skip
    out = response_headers(upstream, version="1.1", request_id="rid", via=True)
    assert not {"Transfer-Encoding", "Connection", "X-Hop"} & set(out)
    assert out.getall("Set-Cookie") == ["a", "b"]
    assert out["Content-Encoding"] == "gzip"
    assert out["Via"] == "1.1 tokenrelay"
    assert out["X-Request-Id"] == "rid"


def test_response_headers_fold_the_upstreams_via() -> None:
    out = response_headers(headers(("Via", "1.0 cdn"), ("Via", "1.1 lb")), version="1.1", request_id="r", via=True)
    assert out.getall("Via") == ["1.0 cdn, 1.1 lb, 1.1 tokenrelay"]


def policy(**kw: Any) -> AccessPolicy:
    return AccessPolicy.from_settings(AccessSettings.model_validate(kw))


def test_access_without_configuration_allows_everyone() -> None:
    policy().check(None, headers())


@pytest.mark.parametrize(
    ("peer", "allowed"),
    [("10.2.3.4", True), ("::ffff:10.2.3.4", True), ("192.168.1.1", False), ("fd00::1", True), (None, False),
     ("not-an-ip", False)],
)  # fmt: skip
def test_access_checks_the_peer_against_the_cidrs(peer: str | None, allowed: bool) -> None:
    p = policy(allow_clients=["10.0.0.0/8", "fd00::/8"])
    if allowed:
        p.check(peer, headers())
    else:
        with pytest.raises(ProxyError) as caught:
            p.check(peer, headers())
        assert caught.value.code == "forbidden"


def test_access_requires_one_of_the_api_keys() -> None:
    p = policy(api_keys=["first", "second"])
    p.check("1.2.3.4", headers(("X-Tokenrelay-Key", "second")))
    for bad in (headers(), headers(("X-Tokenrelay-Key", "secon")), headers(("X-Tokenrelay-Key", "secondx"))):
        with pytest.raises(ProxyError):
            p.check("1.2.3.4", bad)


def test_forbidden_message_never_contains_a_key() -> None:
    p = policy(api_keys=["hunter2"])
    with pytest.raises(ProxyError) as caught:
        p.check("1.2.3.4", headers(("X-Tokenrelay-Key", "hunter3")))
    assert "hunter" not in str(caught.value)


@pytest.mark.parametrize("value", ["abc-123", "A" * 200])
def test_request_id_keeps_a_sane_inbound_value(value: str) -> None:
    assert request_id_for(headers(("X-Request-Id", value))) == value


@pytest.mark.parametrize("value", ["", "A" * 201, "has space", "new\nline", "é"])
def test_request_id_replaces_an_unusable_value(value: str) -> None:
    generated = request_id_for(headers(("X-Request-Id", value)))
    assert generated != value
    assert len(generated) == 32


@pytest.mark.parametrize(
    ("code", "status"),
    [("no_route", 404), ("host_not_allowed", 403), ("connect_not_supported", 405), ("forbidden", 403),
     ("upstream_unreachable", 502), ("upstream_timeout", 504), ("token_unavailable", 503), ("bad_request", 400)],
)  # fmt: skip
def test_error_table_statuses(code: str, status: int) -> None:
    response = error_response(ProxyError(code), request_id="rid")
    assert response.status == status
    assert response.content_type == "application/json"
    assert response.text is not None
    body = json.loads(response.text)
    assert body["error"] == code
    assert body["request_id"] == "rid"


def test_retry_after_is_rounded_up() -> None:
    response = error_response(ProxyError("token_unavailable", retry_after=1.2))
    assert response.headers["Retry-After"] == "2"


def test_unknown_error_code_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown proxy error code"):
        ProxyError("nope")


@pytest.mark.parametrize(
    ("raw", "logged"),
    [("/x", "/x"), ("/x?a=1&b=2", "/x?a=&b="), ("/x?flag&k=v=w", "/x?flag=&k="), ("/x?", "/x?"),
     ("http://h/x?token=abc", "http://h/x?token=")],
)  # fmt: skip
def test_loggable_path_drops_query_values(raw: str, logged: str) -> None:
    assert loggable_path(raw) == logged


class _Route:
    """Just the fields wants_replay reads."""

    def __init__(self, *, binding: object = object(), retry_on_401: bool = True, statuses: tuple[int, ...] = (401,)):
        self.binding = binding
        self.retry_on_401 = retry_on_401
        self.retry_statuses = frozenset(statuses)


@pytest.mark.parametrize(
    ("route", "status", "www_authenticate", "expected"),
    [
        (_Route(), 401, None, True),
        (_Route(), 401, 'Bearer error="invalid_token"', True),
        (_Route(), 401, 'Bearer realm="x", error="insufficient_scope"', False),
        (_Route(), 401, "Bearer error=insufficient_scope", False),
        (_Route(), 403, None, False),
        (_Route(statuses=(401, 403)), 403, None, True),
        (_Route(retry_on_401=False), 401, None, False),
        (_Route(binding=None), 401, None, False),
    ],
)
def test_wants_replay(route: _Route, status: int, www_authenticate: str | None, expected: bool) -> None:
    h = headers(("WWW-Authenticate", www_authenticate)) if www_authenticate else headers()
    assert wants_replay(route, status, h) is expected  # type: ignore[arg-type]


class _Protocol:
    """The minimum a StreamReader needs from its protocol."""

    _reading_paused = False

    def pause_reading(self, **_: object) -> None: ...

    def resume_reading(self, **_: object) -> None: ...


async def _reader(data: bytes) -> StreamReader:
    reader = StreamReader(_Protocol(), 2**16, loop=asyncio.get_running_loop())  # type: ignore[arg-type]
    reader.feed_data(data)
    reader.feed_eof()
    return reader


async def test_read_body_keeps_a_body_within_the_limit_whole() -> None:
    body = await read_body(await _reader(b"x" * 10), 10)
    assert body.complete
    assert body.payload() == b"x" * 10


async def test_read_body_streams_a_body_above_the_limit_head_first() -> None:
    body = await read_body(await _reader(b"0123456789AB"), 10)
    assert not body.complete
    payload = body.payload()
    assert not isinstance(payload, bytes | None)
    assert b"".join([chunk async for chunk in payload]) == b"0123456789AB"


async def test_a_request_without_a_body_sends_none() -> None:
    assert NO_BODY.complete
    assert NO_BODY.payload() is None


async def test_read_body_of_an_empty_stream_sends_an_empty_body() -> None:
    body = await read_body(await _reader(b""), 10)
    assert body.complete
    assert body.payload() == b""


async def test_read_body_with_negative_limit_buffers_nothing() -> None:
    body = await read_body(await _reader(b"abc"), -1)
    assert body.head == b""
    assert not body.complete
