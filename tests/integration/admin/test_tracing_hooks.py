"""``tokenrelay.tracing``: the TraceConfig hooks time real requests to loopback servers into Metrics."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.integration.admin.conftest import FakeIdP, settings_for
from tests.integration.serving_support import ServerFactory
from tests.unit.observability.prom_exposition import parse
from tokenrelay.metrics import Metrics
from tokenrelay.runtime import compile_runtime
from tokenrelay.tokens import TokenCache
from tokenrelay.tracing import InstrumentedConnector, idp_trace_config


async def _server(aiohttp_server: ServerFactory, delay: float = 0.0) -> TestServer:
    async def hello(_: web.Request) -> web.Response:
        if delay:
            await asyncio.sleep(delay)
        return web.Response(text="hello")

    app = web.Application()
    app.router.add_get("/", hello)
    return await aiohttp_server(app)


def _host(server: TestServer) -> str:
    return f"127.0.0.1:{server.port}"


async def test_idp_hook_times_each_exchange_by_host_and_status(aiohttp_server: ServerFactory) -> None:
    """One request: one idp_responses sample with the status, one duration observation, per host:port."""
    server, metrics = await _server(aiohttp_server), Metrics(version="1")
    async with aiohttp.ClientSession(trace_configs=[idp_trace_config(metrics)]) as session:
        response = await session.get(server.make_url("/"))
        await response.read()
    assert metrics.idp_responses.value((_host(server), "200")) == 1
    assert metrics.idp_duration.count((_host(server),)) == 1


async def test_idp_hook_records_failed_exchanges_as_error(unused_loopback_port: int) -> None:
    """A refused connection has no status: it is counted as ``error`` and still timed."""
    metrics = Metrics(version="1")
    async with aiohttp.ClientSession(trace_configs=[idp_trace_config(metrics)]) as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(f"http://127.0.0.1:{unused_loopback_port}/oauth/token")
    assert metrics.idp_responses.value((f"127.0.0.1:{unused_loopback_port}", "error")) == 1
    assert metrics.idp_duration.count((f"127.0.0.1:{unused_loopback_port}",)) == 1


async def test_idp_hook_sees_the_grant_cores_token_requests(idp: FakeIdP) -> None:
    """Attached to the IdP session given to the runtime, the hook counts real token fetches."""
    metrics, cache = Metrics(version="1"), TokenCache()
    async with aiohttp.ClientSession(trace_configs=[idp_trace_config(metrics)]) as session:
        runtime = await compile_runtime(settings_for(idp), session=session, previous=None, metrics=metrics)
        binding = runtime.bindings["api"]
        await cache.get(binding.key, binding.fetch, binding.policy)
        await cache.aclose()
    assert metrics.idp_responses.value((_host(idp.server), "200")) == 1
    assert metrics.token_fetches.value(("api", "ok")) == 1


async def test_instrumented_connector_counts_new_and_reused_connections(aiohttp_server: ServerFactory) -> None:
    """One connection opened (and timed), then reused."""
    server, metrics = await _server(aiohttp_server), Metrics(version="1")
    async with aiohttp.ClientSession(connector=InstrumentedConnector(metrics)) as session:
        for _ in range(3):
            async with session.get(server.make_url("/")) as response:
                await response.read()
    assert metrics.upstream_connections.value(("new",)) == 1
    assert metrics.upstream_connections.value(("reused",)) == 2
    assert metrics.upstream_connect_duration.count(()) == 1
    assert metrics.upstream_pool_wait.count(()) == 0


async def test_instrumented_connector_times_waits_for_a_full_pool(aiohttp_server: ServerFactory) -> None:
    """With a pool of one, concurrent requests queue; each wait is observed and it is not negligible."""
    server, metrics = await _server(aiohttp_server, delay=0.05), Metrics(version="1")
    async with aiohttp.ClientSession(connector=InstrumentedConnector(metrics, limit=1)) as session:

        async def fetch() -> None:
            async with session.get(server.make_url("/")) as response:
                await response.read()

        await asyncio.gather(fetch(), fetch(), fetch())
    family = parse(metrics.render())["tokenrelay_upstream_pool_wait_seconds"]
    assert family.value("tokenrelay_upstream_pool_wait_seconds_count") >= 2
    assert family.value("tokenrelay_upstream_pool_wait_seconds_sum") >= 0.05
    assert metrics.upstream_connections.value(("new",)) + metrics.upstream_connections.value(("reused",)) == 3


async def test_instrumented_connector_counts_nothing_for_a_failed_connect(unused_loopback_port: int) -> None:
    """A refused connection is neither opened nor reused: the counters stay at zero."""
    metrics = Metrics(version="1")
    async with aiohttp.ClientSession(connector=InstrumentedConnector(metrics)) as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(f"http://127.0.0.1:{unused_loopback_port}/")
    assert metrics.upstream_connections.value(("new",)) == 0
    assert metrics.upstream_connections.value(("reused",)) == 0
