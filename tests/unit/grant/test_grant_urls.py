"""WHATWG resolution of endpoint paths against token_host (what ``new URL(path, tokenHost)`` gives)."""

from __future__ import annotations

import pytest

from tokenrelay.grant.urls import parse_http_url, resolve_url

B = "http://127.0.0.1:8080"


@pytest.mark.parametrize(
    ("base", "reference", "expected"),
    [
        (f"{B}/prefix", "/oauth/token", f"{B}/oauth/token"),
        (f"{B}/prefix/", "/oauth/token", f"{B}/oauth/token"),
        (f"{B}/prefix", "oauth/token", f"{B}/oauth/token"),
        (f"{B}/realms/acme/", "protocol/openid-connect/token", f"{B}/realms/acme/protocol/openid-connect/token"),
        (f"{B}/a/b/c", "../x/./y/..", f"{B}/a/x/"),
        (f"{B}/a/b", "..", f"{B}/"),
        (f"{B}/a/b", ".", f"{B}/a/"),
        (B, "/a/%2E%2e/b", f"{B}/b"),
        (B, "/oauth/token?tenant=acme&api-version=1.0", f"{B}/oauth/token?tenant=acme&api-version=1.0"),
        (f"{B}/?tenant=acme", "/oauth/token", f"{B}/oauth/token"),
        (B, "/oauth/my tökén", f"{B}/oauth/my%20t%C3%B6k%C3%A9n"),
        (B, "/t?q=a b'c", f"{B}/t?q=a%20b%27c"),
        (B, "/t#fragment", f"{B}/t"),
        (B, "//127.0.0.1:9/pr/token", "http://127.0.0.1:9/pr/token"),
        (B, "https://Other.Example:443/x", "https://other.example/x"),
        (B, "HTTP://other:80/x", "http://other/x"),
        (B, "http:relative", f"{B}/relative"),
        (B, "\\oauth\\token", f"{B}/oauth/token"),
        (B, " /oauth/to\tken\n", f"{B}/oauth/token"),
        (f"{B}/a?x", "?y", f"{B}/a?y"),
        (f"{B}/a?x", "#z", f"{B}/a?x"),
        (f"{B}/a?x", "", f"{B}/a?x"),
        ("http://[::1]:80/x", "y", "http://[::1]/y"),
        ("http://user:pw@h/x", "y", "http://user:pw@h/y"),
        ("http://bücher.example/", "t", "http://xn--bcher-kva.example/t"),
    ],
)
def test_resolution_matches_whatwg(base: str, reference: str, expected: str) -> None:
    assert resolve_url(reference, base) == expected


@pytest.mark.parametrize("url", ["ftp://h/x", "/relative", "http://", "http://h:port/", "mailto:x@y"])
def test_non_http_urls_are_rejected(url: str) -> None:
    with pytest.raises(ValueError, match="URL"):
        parse_http_url(url)


def test_a_parsed_base_can_be_reused() -> None:
    base = parse_http_url(f"{B}/realms/acme/")
    assert resolve_url("token", base) == f"{B}/realms/acme/token"
