"""Per-request shortcuts of the proxy keep their results: fresh request ids, headers written in place."""

from __future__ import annotations

import re

from multidict import CIMultiDict, CIMultiDictProxy

from tokenrelay.proxy.headers import response_headers
from tokenrelay.proxy.request_id import request_id_for

_NO_HEADERS: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())


def test_fresh_request_ids_are_32_hex_digits_and_distinct() -> None:
    """The shape of a uuid4 hex (what log pipelines may already parse), 128 random bits each."""
    ids = {request_id_for(_NO_HEADERS) for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"[0-9a-f]{32}", value) for value in ids)


def test_response_headers_fill_the_responses_own_headers_in_place() -> None:
    """``into`` is filled and returned, so the response does not copy a second dict."""
    into: CIMultiDict[str] = CIMultiDict()
    upstream = CIMultiDictProxy(CIMultiDict([("Content-Type", "text/plain"), ("Connection", "close")]))
    out = response_headers(upstream, version="1.1", request_id="rid", via=True, into=into)
    assert out is into
    assert list(into.items()) == [("Content-Type", "text/plain"), ("X-Request-Id", "rid"), ("Via", "1.1 tokenrelay")]
