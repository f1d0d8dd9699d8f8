"""Route matching and upstream URL construction (no sockets)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.proxy.routing_support import BINDING
from tokenrelay.grant.errors import ConfigError
from tokenrelay.proxy import ProxyError, RouteTable
from tokenrelay.proxy.routing import split_host
from tokenrelay.settings import RouteSettings


def table(*routes: dict[str, Any]) -> RouteTable:
    settings = [
        RouteSettings.model_validate({"name": f"r{i}", "upstream": "http://up.internal", "profile": "p"} | r)
        for i, r in enumerate(routes)
    ]
    return RouteTable.build(settings, {"p": BINDING})


def name_of(t: RouteTable, host: str | None, path: str, **kw: bool) -> str | None:
    match = t.match(host, path, **kw)
    return None if match is None else match.route.name


def test_exact_host_matches_case_insensitively_and_ignores_port() -> None:
    t = table({"match": {"host": "Billing.Internal"}})
    assert name_of(t, "billing.INTERNAL:8080", "/x") == "r0"
    assert name_of(t, "billing.internal.", "/x") == "r0"
    assert name_of(t, "other.internal", "/x") is None


def test_host_pattern_with_port_requires_that_port() -> None:
    t = table({"match": {"host": "billing.internal:8443"}})
    assert name_of(t, "billing.internal:8443", "/") == "r0"
    assert name_of(t, "billing.internal:8080", "/") is None
    assert name_of(t, "billing.internal", "/") is None


def test_wildcard_matches_subdomains_but_not_the_bare_suffix() -> None:
    t = table({"match": {"host": "*.internal"}})
    assert name_of(t, "a.internal", "/") == "r0"
    assert name_of(t, "a.b.INTERNAL", "/") == "r0"
    assert name_of(t, "internal", "/") is None
    assert name_of(t, "xinternal", "/") is None


def test_exact_host_beats_wildcard_and_longer_wildcard_beats_shorter() -> None:
    t = table(
        {"match": {"host": "*.internal"}},
        {"match": {"host": "*.billing.internal"}},
        {"match": {"host": "api.billing.internal"}},
    )
    assert name_of(t, "api.billing.internal", "/") == "r2"
    assert name_of(t, "v2.billing.internal", "/") == "r1"
    assert name_of(t, "crm.internal", "/") == "r0"


def test_longest_path_prefix_wins() -> None:
    t = table(
        {"match": {"path_prefix": "/api"}}, {"match": {"path_prefix": "/api/v2"}}, {"match": {"path_prefix": "/"}}
    )
    assert name_of(t, "h", "/api/v2/x") == "r1"
    assert name_of(t, "h", "/api/v1/x") == "r0"
    assert name_of(t, "h", "/other") == "r2"


def test_prefix_matches_on_segment_boundaries_only() -> None:
    t = table({"match": {"path_prefix": "/api"}})
    assert name_of(t, "h", "/api") == "r0"
    assert name_of(t, "h", "/api?x=1") == "r0"
    assert name_of(t, "h", "/api/") == "r0"
    assert name_of(t, "h", "/apix") is None


def test_ties_go_to_the_route_listed_first() -> None:
    t = table({"match": {"path_prefix": "/a"}}, {"match": {"path_prefix": "/a"}})
    assert name_of(t, "h", "/a/b") == "r0"


def test_host_routes_take_precedence_over_hostless_routes() -> None:
    t = table({"match": {"path_prefix": "/api/long/prefix"}}, {"match": {"host": "h.internal"}})
    assert name_of(t, "h.internal", "/api/long/prefix/x") == "r1"
    assert name_of(t, "other", "/api/long/prefix/x") == "r0"


def test_forward_proxy_only_considers_routes_that_name_a_host() -> None:
    t = table({"match": {"path_prefix": "/"}}, {"match": {"host": "billing.internal", "path_prefix": "/v1"}})
    assert name_of(t, "billing.internal", "/v1/x", forward_proxy=True) == "r1"
    assert name_of(t, "billing.internal", "/v2/x", forward_proxy=True) is None
    with pytest.raises(ProxyError) as caught:
        t.match("evil.example", "/v1/x", forward_proxy=True)
    assert caught.value.code == "host_not_allowed"


@pytest.mark.parametrize(
    ("upstream", "prefix", "path", "expected"),
    [
        ("http://up/v1", "/api", "/api/x", "/v1/x"),
        ("http://up/v1", "/api", "/api", "/v1"),
        ("http://up/v1", "/api", "/api/", "/v1/"),
        ("http://up/v1/", "/api", "/api/x", "/v1/x"),
        ("http://up/v1/", "/api", "/api", "/v1/"),
        ("http://up", "/api", "/api/x", "/x"),
        ("http://up", "/api", "/api", "/"),
        ("http://up/", "/api/", "/api/x", "/x"),
        ("http://up/v1", "/api/", "/api/x", "/v1/x"),
        ("http://up/v1", "/api", "/api?q=1", "/v1?q=1"),
    ],
)
def test_strip_prefix_joins_paths_with_exactly_one_slash(upstream: str, prefix: str, path: str, expected: str) -> None:
    t = table({"upstream": upstream, "strip_prefix": True, "match": {"path_prefix": prefix}})
    match = t.match("h", path)
    assert match is not None
    assert match.url.raw_path_qs == expected


def test_without_strip_prefix_the_whole_path_is_appended_to_the_upstream_path() -> None:
    t = table({"upstream": "http://up/base", "match": {"path_prefix": "/api"}})
    match = t.match("h", "/api/x")
    assert match is not None
    assert str(match.url) == "http://up/base/api/x"


def test_query_and_percent_encoding_are_kept_byte_for_byte() -> None:
    t = table({"match": {"path_prefix": "/"}})
    raw = "/a%2Fb/%7e%20c?x=%2f%2F&y=a+b&z&x=2&emoji=%F0%9F%98%80"
    match = t.match("h", raw)
    assert match is not None
    assert match.url.raw_path_qs == raw


@pytest.mark.parametrize("path", ["/api/../admin", "/api/./x", "/api/%2e%2e/admin", "/api/.%2E/x"])
def test_dot_segments_are_refused(path: str) -> None:
    t = table({"match": {"path_prefix": "/api"}, "strip_prefix": True})
    with pytest.raises(ProxyError) as caught:
        t.match("h", path)
    assert caught.value.code == "bad_request"


def test_dots_inside_segments_are_fine() -> None:
    t = table({"match": {"path_prefix": "/"}})
    assert name_of(t, "h", "/files/v1.2/..hidden/a..b") == "r0"


def test_route_with_unknown_binding_is_a_config_error() -> None:
    settings = [
        RouteSettings.model_validate(
            {"name": "r", "upstream": "http://up", "profile": "nope", "match": {"path_prefix": "/"}}
        )
    ]
    with pytest.raises(ConfigError) as caught:
        RouteTable.build(settings, {})
    assert caught.value.paths == ("routes.0.profile",)


def test_upstream_parts_are_precomputed() -> None:
    t = table({"upstream": "https://API.example:8443/v1", "match": {"path_prefix": "/"}})
    route = t.routes[0]
    assert route.upstream_origin == "https://api.example:8443"
    assert route.upstream_host == "api.example:8443"
    assert route.header_value("T") == "Bearer T"


def test_tls_verify_off_builds_a_non_verifying_context() -> None:
    t = table({"upstream": "https://up", "match": {"path_prefix": "/"}, "tls": {"verify": False}})
    context = t.routes[0].ssl
    assert not isinstance(context, bool)
    assert context.check_hostname is False


def test_default_tls_uses_aiohttp_shared_verifying_default() -> None:
    assert table({"upstream": "https://up", "match": {"path_prefix": "/"}}).routes[0].ssl is True


def test_missing_tls_files_are_a_config_error() -> None:
    with pytest.raises(ConfigError):
        table({"upstream": "https://up", "match": {"path_prefix": "/"}, "tls": {"ca_file": "/nonexistent/ca.pem"}})


def test_timeouts_map_to_client_timeout() -> None:
    t = table({"match": {"path_prefix": "/"}, "timeouts": {"connect": "2s", "total": None, "read": "30s"}})
    timeout = t.routes[0].timeout
    assert (timeout.sock_connect, timeout.total, timeout.sock_read) == (2.0, None, 30.0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("a.B:80", ("a.b", 80)), ("a.b", ("a.b", None)), ("[::1]:8080", ("[::1]", 8080)), ("[::1]", ("[::1]", None))],
)
def test_split_host(value: str, expected: tuple[str, int | None]) -> None:
    assert split_host(value) == expected
