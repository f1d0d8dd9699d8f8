"""``Expect: 100-continue`` on the real ``serve`` listener: ``100 Continue`` only for a request that will be sent.

The handler decides on the route, the access policy and the token *before* inviting the body, so a client whose
request cannot be served (no route, no token) never uploads it; a request that can be served gets exactly one
interim answer. A listener that let aiohttp answer ``Expect`` itself (an ``Application`` router does, before any
handler runs) would invite every body.
"""

from __future__ import annotations

from tests.integration.expect_continue import first_answer_head, put_after_continue
from tests.integration.serving_support import serving
from tests.integration.through_proxy.support import EchoUpstream, SwitchableIdp, embedded, one_route_config


async def test_no_route_is_answered_without_inviting_the_body(idp: SwitchableIdp, upstream: EchoUpstream) -> None:
    async with serving(one_route_config(idp, upstream)) as listening:
        head = await first_answer_head(listening.proxy, "/elsewhere/x")
    assert head.startswith(b"HTTP/1.1 404")


async def test_unavailable_token_is_answered_without_inviting_the_body(
    idp: SwitchableIdp, upstream: EchoUpstream
) -> None:
    idp.mode = "http_500"
    async with serving(one_route_config(idp, upstream)) as listening:
        head = await first_answer_head(listening.proxy, "/billing/x")
    assert head.startswith(b"HTTP/1.1 503")
    assert upstream.seen == []


async def test_servable_request_gets_one_100_continue_then_the_answer(
    idp: SwitchableIdp, upstream: EchoUpstream
) -> None:
    async with serving(one_route_config(idp, upstream)) as listening:
        interim, rest = await put_after_continue(listening.proxy, "/billing/x")
    assert interim.startswith(b"HTTP/1.1 100 Continue")
    assert rest.startswith(b"HTTP/1.1 200")
    assert b"100 Continue" not in rest
    assert upstream.seen == ["Bearer tok-1"]


async def test_embedded_application_does_not_invite_the_body_of_an_unroutable_request(
    idp: SwitchableIdp, upstream: EchoUpstream
) -> None:
    """``create_proxy_app`` (the embedding entry point) should keep the promise ``serve`` keeps."""
    async with embedded(one_route_config(idp, upstream)) as address:
        head = await first_answer_head(address, "/elsewhere/x")
    assert head.startswith(b"HTTP/1.1 404")
