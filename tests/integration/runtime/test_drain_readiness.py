"""During the graceful drain ``/readyz`` fails at once (503 ``draining``) while ``/healthz`` and in-flight requests
carry on: a Kubernetes Service stops routing to the pod before its listener closes the last connection."""

from __future__ import annotations

import asyncio

import aiohttp

from tests.integration.runtime.runtime_support import FakeIdp, Upstream, relay_config
from tests.integration.serving_support import serving
from tokenrelay.server import Listening


def url(address: tuple[str, int] | None, path: str) -> str:
    assert address is not None
    return f"http://{address[0]}:{address[1]}{path}"


async def readyz(client: aiohttp.ClientSession, listening: Listening) -> tuple[int, object]:
    async with client.get(url(listening.admin, "/readyz")) as response:
        return response.status, await response.json()


async def test_readyz_answers_draining_during_the_drain_while_in_flight_requests_finish(
    idp: FakeIdp, upstream: Upstream
) -> None:
    stop = asyncio.Event()
    async with serving(relay_config(idp, upstream), stop=stop) as listening, aiohttp.ClientSession() as client:
        assert (await readyz(client, listening))[0] == 200
        slow = asyncio.create_task(client.get(url(listening.proxy, "/billing/slow")))
        await asyncio.wait_for(upstream.slow_started.wait(), 5)
        stop.set()  # what SIGTERM does
        await asyncio.sleep(0.05)
        assert await readyz(client, listening) == (503, {"status": "draining"})
        async with client.get(url(listening.admin, "/healthz")) as response:
            assert response.status == 200
        upstream.release.set()
        async with await asyncio.wait_for(slow, 5) as response:
            assert response.status == 200
