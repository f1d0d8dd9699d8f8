"""``Expect: 100-continue`` on the embedded ``Application`` (``create_proxy_app``): the same promise ``serve`` keeps.

The catch-all route defers ``Expect`` to the handler, which answers ``100 Continue`` only once the access policy,
the route and the token allow the request to be forwarded; a refused request never has its body uploaded, and a
forwarded one gets exactly one interim answer. (The unroutable case is in ``test_serve_expect_continue``.)
"""

from __future__ import annotations

from tests.integration.expect_continue import first_answer_head, put_after_continue
from tests.integration.through_proxy.support import EchoUpstream, SwitchableIdp, embedded, one_route_config


async def test_unavailable_token_is_answered_without_inviting_the_body(
    idp: SwitchableIdp, upstream: EchoUpstream
) -> None:
    idp.mode = "http_500"
    async with embedded(one_route_config(idp, upstream)) as address:
        head = await first_answer_head(address, "/billing/x")
    assert head.startswith(b"HTTP/1.1 503")
    assert upstream.seen == []


async def test_refused_client_is_answered_without_inviting_the_body(idp: SwitchableIdp, upstream: EchoUpstream) -> None:
    config = one_route_config(idp, upstream) | {"access": {"api_keys": ["k" * 32]}}
    async with embedded(config) as address:
        head = await first_answer_head(address, "/billing/x")
    assert head.startswith(b"HTTP/1.1 403")
    assert idp.received == 0


async def test_servable_request_gets_exactly_one_100_continue(idp: SwitchableIdp, upstream: EchoUpstream) -> None:
    async with embedded(one_route_config(idp, upstream)) as address:
        interim, rest = await put_after_continue(address, "/billing/x")
    assert interim.startswith(b"HTTP/1.1 100 Continue")
    assert rest.startswith(b"HTTP/1.1 200")
    assert b"100 Continue" not in rest
    assert upstream.seen == ["Bearer tok-1"]
