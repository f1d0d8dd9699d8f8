"""A down, slow, failing or babbling token endpoint, as a client of the proxy sees it.

With a valid cached token the proxy keeps injecting it (200s) while it retries in the background; with none it
answers 503 ``token_unavailable`` with ``Retry-After`` at once instead of queueing, does not hammer the endpoint
(one shared backoff), never injects a token past its expiry, and recovers on the first successful fetch. The
whole ``serve`` runs in-process against real servers on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import socket
import time

import aiohttp
import pytest

from tests.integration.serving_support import eventually, serving
from tests.integration.through_proxy.support import (
    Answer,
    EchoUpstream,
    Mode,
    SwitchableIdp,
    fetch,
    one_route_config,
    url,
)

FAILURES: list[Mode] = ["http_500", "garbage", "reset"]
#: "At once": far below the 10 s token fetch timeout and the endpoint's 5 s ``slow`` delay.
AT_ONCE = 1.0


async def timed(client: aiohttp.ClientSession, target: str) -> tuple[Answer, float]:
    started = time.monotonic()
    answer = await asyncio.wait_for(fetch(client, target), 15)
    return answer, time.monotonic() - started


def assert_token_unavailable(answer: Answer) -> None:
    assert answer.status == 503
    assert answer.body["error"] == "token_unavailable"
    assert int(answer.headers["Retry-After"]) >= 1


@pytest.mark.parametrize("mode", FAILURES)
async def test_failing_idp_without_a_token_answers_503_with_retry_after_at_once(
    idp: SwitchableIdp, upstream: EchoUpstream, mode: Mode
) -> None:
    """The first request waits only for the one failed fetch; the next 20 are refused at once, without a fetch."""
    idp.mode = mode
    async with serving(one_route_config(idp, upstream)) as listening, aiohttp.ClientSession() as client:
        first, took = await timed(client, url(listening.proxy, "/billing/a"))
        assert_token_unavailable(first)
        assert took < AT_ONCE
        answers = await asyncio.gather(*(timed(client, url(listening.proxy, f"/billing/{i}")) for i in range(20)))
    for answer, took in answers:
        assert_token_unavailable(answer)
        assert took < AT_ONCE
    assert idp.received == 1  # one shared backoff: the endpoint is not hammered
    assert upstream.seen == []


async def test_unreachable_idp_without_a_token_answers_503_at_once(idp: SwitchableIdp, upstream: EchoUpstream) -> None:
    """Nothing listens on the token endpoint's port: 503 with ``Retry-After``, not a hang and not a 502."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        idp.url = f"http://127.0.0.1:{probe.getsockname()[1]}"  # bound, never listening: connection refused
        async with serving(one_route_config(idp, upstream)) as listening, aiohttp.ClientSession() as client:
            answer, took = await timed(client, url(listening.proxy, "/billing/a"))
    assert_token_unavailable(answer)
    assert took < AT_ONCE


async def test_proxy_recovers_on_the_first_successful_fetch_after_an_outage(
    idp: SwitchableIdp, upstream: EchoUpstream
) -> None:
    """Once the endpoint answers again, the first fetch after the backoff serves everyone; no fetch per request."""
    idp.mode = "http_500"
    async with serving(one_route_config(idp, upstream)) as listening, aiohttp.ClientSession() as client:
        assert_token_unavailable((await timed(client, url(listening.proxy, "/billing/a")))[0])
        idp.mode = "ok"
        answers: list[Answer] = []

        async def served() -> bool:
            answers.append(await fetch(client, url(listening.proxy, "/billing/b")))
            return answers[-1].status == 200

        await eventually(served, limit=5, interval=0.05)  # the first backoff is at most 1 s
    assert answers[-1].body["authorization"] == "Bearer tok-1"
    assert {a.status for a in answers[:-1]} <= {503}
    assert idp.received == 2  # the failure and the recovery, however many requests came in between


@pytest.mark.parametrize("mode", [*FAILURES, "slow"])
async def test_failing_idp_with_a_valid_token_keeps_it_injected(
    idp: SwitchableIdp, upstream: EchoUpstream, mode: Mode
) -> None:
    """Inside the refresh window a failing (or hanging) refresh does not touch the valid token: 200s, at once."""
    idp.expires_in = 2  # a 1 s refresh window: the refresh starts at ~0.9 s, the token expires at 2 s
    async with (
        serving(one_route_config(idp, upstream, refresh_before_expiry="1s")) as listening,
        aiohttp.ClientSession() as client,
    ):
        assert (await fetch(client, url(listening.proxy, "/billing/a"))).body["authorization"] == "Bearer tok-1"
        issued_at = time.monotonic()
        idp.mode = mode
        idp.arrived.clear()
        await asyncio.sleep(max(0.0, issued_at + 1.1 - time.monotonic()))
        answers = [await timed(client, url(listening.proxy, f"/billing/{i}")) for i in range(5)]
        await asyncio.wait_for(idp.arrived.wait(), 1)  # the refresh was attempted (and failed or hangs)
        answers.append(await timed(client, url(listening.proxy, "/billing/after-the-failure")))
        assert time.monotonic() - issued_at < 1.9  # still within the token's lifetime
    for answer, took in answers:
        assert (answer.status, answer.body["authorization"]) == (200, "Bearer tok-1")
        assert took < 0.5
    assert idp.issued == 1


async def test_expired_token_is_never_injected_while_the_idp_fails(idp: SwitchableIdp, upstream: EchoUpstream) -> None:
    """Past its expiry the old token is dropped: 503 with ``Retry-After``, and the upstream never sees it again."""
    idp.expires_in = 1
    async with serving(one_route_config(idp, upstream)) as listening, aiohttp.ClientSession() as client:
        assert (await fetch(client, url(listening.proxy, "/billing/a"))).status == 200
        issued_at = time.monotonic()
        idp.mode = "http_500"
        await asyncio.sleep(max(0.0, issued_at + 1.2 - time.monotonic()))
        upstream.seen.clear()
        answers = [(await timed(client, url(listening.proxy, f"/billing/{i}")))[0] for i in range(3)]
    for answer in answers:
        assert_token_unavailable(answer)
    assert upstream.seen == []


async def test_slow_idp_on_a_cold_start_costs_latency_not_errors(idp: SwitchableIdp, upstream: EchoUpstream) -> None:
    """Requests arriving while the first fetch is slow wait for it (one fetch) and then all succeed."""
    idp.mode, idp.delay = "slow", 0.3
    async with serving(one_route_config(idp, upstream)) as listening, aiohttp.ClientSession() as client:
        answers = await asyncio.gather(*(timed(client, url(listening.proxy, f"/billing/{i}")) for i in range(20)))
    for answer, took in answers:
        assert (answer.status, answer.body["authorization"]) == (200, "Bearer tok-1")
        assert took >= 0.3
    assert idp.received == 1


async def test_idp_slower_than_the_token_request_timeout_answers_503(
    idp: SwitchableIdp, upstream: EchoUpstream
) -> None:
    """A hanging endpoint costs at most the token request timeout (``http.timeout``), then 503 ``Retry-After``."""
    idp.mode, idp.delay = "slow", 10.0
    config = one_route_config(idp, upstream, http={"timeout": 0.3})
    async with serving(config) as listening, aiohttp.ClientSession() as client:
        answer, took = await timed(client, url(listening.proxy, "/billing/a"))
    assert_token_unavailable(answer)
    assert 0.3 <= took < 0.3 + AT_ONCE


async def test_idp_retry_after_reaches_the_client_and_holds_back_the_next_fetch(
    idp: SwitchableIdp, upstream: EchoUpstream
) -> None:
    """A 429 with ``Retry-After: 30`` from the token endpoint: the proxy's 503 says 30 too, and nothing is retried."""
    idp.mode = "throttled"
    async with serving(one_route_config(idp, upstream)) as listening, aiohttp.ClientSession() as client:
        answers = [await fetch(client, url(listening.proxy, f"/billing/{i}")) for i in range(5)]
    for answer in answers:
        assert_token_unavailable(answer)
        assert 29 <= int(answer.headers["Retry-After"]) <= 30
    assert idp.received == 1


@pytest.mark.parametrize(
    ("token", "expires_in"),
    [
        pytest.param("", 300, id="empty-token"),
        pytest.param("tok\r\nX-Injected: 1", 300, id="crlf-in-token"),
        pytest.param("t\u00f6k", 300, id="non-ascii-token"),
        pytest.param("tok-expired", 0, id="expired-on-arrival"),
        pytest.param("tok-negative", -60, id="negative-expires-in"),
    ],
)
async def test_unusable_token_from_the_idp_is_never_injected(
    idp: SwitchableIdp, upstream: EchoUpstream, token: str, expires_in: int
) -> None:
    """A 200 whose token would inject nothing, split the upstream request's headers, or is already expired: 503."""
    idp.make_token, idp.expires_in = (lambda n: token), expires_in
    async with serving(one_route_config(idp, upstream)) as listening, aiohttp.ClientSession() as client:
        answer = await fetch(client, url(listening.proxy, "/billing/a"))
    assert_token_unavailable(answer)
    assert upstream.seen == []
