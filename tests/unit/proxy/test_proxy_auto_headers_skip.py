"""When the proxy can spare aiohttp its skip-set work: only when skipping would change nothing."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from tokenrelay.proxy.forwarding import _SKIP_AUTO_HEADERS, _auto_headers_to_skip

_LIBRARY = (("User-Agent", "probe/1"), ("Accept", "*/*"), ("Accept-Encoding", "gzip"))


@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE", "OPTIONS"])
def test_a_bodyless_request_with_the_library_fields_needs_no_skip(method: str) -> None:
    assert _auto_headers_to_skip(method, CIMultiDict(_LIBRARY), None) is None


def test_a_request_with_every_auto_field_needs_no_skip_even_with_a_body() -> None:
    headers = CIMultiDict((*_LIBRARY, ("Content-Type", "text/plain")))
    assert _auto_headers_to_skip("POST", headers, b"x") is None


@pytest.mark.parametrize("missing", ["User-Agent", "Accept", "Accept-Encoding"])
def test_a_missing_library_field_is_skipped(missing: str) -> None:
    headers = CIMultiDict(pair for pair in _LIBRARY if pair[0] != missing)
    assert _auto_headers_to_skip("GET", headers, None) == _SKIP_AUTO_HEADERS


@pytest.mark.parametrize(("method", "body"), [("POST", None), ("PUT", None), ("GET", b"x"), ("PATCH", b"x")])
def test_a_request_aiohttp_would_give_a_content_type_is_skipped(method: str, body: bytes | None) -> None:
    assert _auto_headers_to_skip(method, CIMultiDict(_LIBRARY), body) == _SKIP_AUTO_HEADERS
