"""Replays and skipped replays through ``serve``: what the client gets, and how ``/metrics`` and the log record it.

The handler's tests check its observer calls with a recording fake; these check the wiring the operator sees: the
real ``Metrics`` behind ``/metrics`` and the ``replay_skipped`` log event, for a body buffered and replayed and for
a body above ``max_replay_body`` that streams once and gets its 401 back as is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from tests.integration.serving_support import ServerFactory, catch_all, serving
from tests.integration.through_proxy.support import SwitchableIdp, one_route_config, url


@dataclass
class RejectsFirstToken:
    """Answers 401 ``invalid_token`` to ``Bearer tok-1`` and 200 otherwise; records (token, body) of each request."""

    url: str = ""
    seen: list[tuple[str | None, bytes]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        authorization = request.headers.get("Authorization")
        self.seen.append((authorization, await request.read()))
        if authorization == "Bearer tok-1":
            return web.Response(
                status=401, text="expired", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
            )
        return web.Response(text="accepted")


@pytest.fixture(name="upstream")
async def _upstream(aiohttp_server: ServerFactory) -> RejectsFirstToken:
    upstream = RejectsFirstToken()
    upstream.url = await catch_all(aiohttp_server, upstream.handle)
    return upstream


def config(idp: SwitchableIdp, upstream: RejectsFirstToken) -> dict[str, Any]:
    """The one route ``/billing`` with a 64 KiB replay buffer."""
    config = one_route_config(idp, upstream)
    config["routes"][0]["max_replay_body"] = "64KiB"
    return config


def sample(metrics: str, name: str, **labels: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_body_within_the_limit_is_replayed_once_and_counted(
    idp: SwitchableIdp, upstream: RejectsFirstToken
) -> None:
    body = b"b" * (64 * 1024)
    async with serving(config(idp, upstream)) as listening, aiohttp.ClientSession() as client:
        assert listening.admin is not None
        async with client.post(url(listening.proxy, "/billing/orders"), data=body) as response:
            assert (response.status, await response.text()) == (200, "accepted")
        async with client.get(url(listening.admin, "/metrics")) as response:
            metrics = await response.text()
    assert upstream.seen == [("Bearer tok-1", body), ("Bearer tok-2", body)]
    assert sample(metrics, "tokenrelay_replays_total", route="billing") == 1
    assert sample(metrics, "tokenrelay_replays_skipped_total", route="billing") == 0


async def test_body_above_the_limit_streams_once_and_its_401_is_returned_counted_and_logged(
    idp: SwitchableIdp, upstream: RejectsFirstToken
) -> None:
    body = b"b" * (64 * 1024 + 1)
    async with serving(config(idp, upstream)) as listening, aiohttp.ClientSession() as client:
        assert listening.admin is not None
        with capture_logs() as logs:
            async with client.post(url(listening.proxy, "/billing/orders"), data=body) as response:
                assert (response.status, await response.text()) == (401, "expired")
                assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
        async with client.get(url(listening.admin, "/metrics")) as response:
            metrics = await response.text()
    assert upstream.seen == [("Bearer tok-1", body)]
    assert idp.issued == 1  # no refresh either: nothing could be replayed with it
    assert sample(metrics, "tokenrelay_replays_skipped_total", route="billing", reason="body_too_large") == 1
    assert sample(metrics, "tokenrelay_replays_total", route="billing") == 0
    skipped = [entry for entry in logs if entry["event"] == "replay_skipped"]
    assert len(skipped) == 1
    assert skipped[0]["reason"] == "body_too_large"
    assert re.fullmatch(r"\d+", str(skipped[0]["limit"]))
