"""Encoded traversal through the real handler: refused with 400 before any token is fetched or upstream reached.

An upstream that decodes ``%2F`` before normalising, a servlet container that drops ``;`` path parameters, or a
lenient decoder that reads overlong UTF-8 (``%c0%ae``) as ``.`` would otherwise be led outside the route's base path
while carrying the injected token.
"""

from __future__ import annotations

import pytest

from tests.integration.proxy.proxy_helpers import (
    Issuer,
    MakeProxy,
    Upstream,
    json_body,
    raw_exchange,
    raw_request,
    split_response,
)

TRAVERSALS = [
    b"/billing/%2e%2e%2fadmin",
    b"/billing/..%2Fadmin",
    b"/billing/..%5Cadmin",
    b"/billing/..;/admin",
    b"/billing/%2E%2e;jsessionid=1/admin",
    b"/billing/%252e%252e%252fadmin",
    b"/billing/%c0%ae%c0%ae%c0%afadmin",  # overlong UTF-8: lenient decoders read ../admin (CVE-2000-0884)
    b"/billing/a%e0%80%af%25f0%2580%2580%25ae.;p=1/admin",  # 3-byte overlong '/', double-encoded 4-byte '.'
]


def billing_route(upstream: Upstream) -> dict[str, object]:
    return {"match": {"path_prefix": "/billing"}, "strip_prefix": True, "upstream": upstream.url + "/v1"}


@pytest.mark.parametrize("app_mode", [False, True], ids=["server", "application"])
@pytest.mark.parametrize("target", TRAVERSALS, ids=lambda t: t.decode())
async def test_encoded_traversal_is_refused_before_the_token_and_the_upstream(
    make_proxy: MakeProxy, upstream: Upstream, issuer: Issuer, target: bytes, app_mode: bool
) -> None:
    proxy = await make_proxy(billing_route(upstream), app_mode=app_mode)
    raw = await raw_exchange(proxy.port, raw_request(target))
    assert split_response(raw)[0] == 400
    body = json_body(raw)
    assert body["error"] == "bad_request"
    assert "'..'" in body["message"]
    assert upstream.seen == []
    assert issuer.issued == 0


async def test_encoded_traversal_in_an_absolute_form_target_is_refused(
    make_proxy: MakeProxy, upstream: Upstream
) -> None:
    route = billing_route(upstream) | {"match": {"host": "billing.internal", "path_prefix": "/billing"}}
    proxy = await make_proxy(route)
    raw = await raw_exchange(proxy.port, raw_request(b"http://billing.internal/billing/..;/admin", b"billing.internal"))
    assert split_response(raw)[0] == 400
    assert upstream.seen == []


@pytest.mark.parametrize("app_mode", [False, True], ids=["server", "application"])
async def test_gitlab_style_encoded_slashes_reach_the_upstream_byte_for_byte(
    make_proxy: MakeProxy, upstream: Upstream, app_mode: bool
) -> None:
    proxy = await make_proxy(billing_route(upstream), app_mode=app_mode)
    rest = "/projects/group%2Fsub%2Fproject/repository/files/docs%2F.config%2Fa.yml/raw?ref=main"
    raw = await raw_exchange(proxy.port, raw_request(b"/billing" + rest.encode()))
    assert split_response(raw)[0] == 200
    assert upstream.seen[0].raw_path == "/v1" + rest
    assert upstream.seen[0].headers["Authorization"] == "Bearer tok-1"
