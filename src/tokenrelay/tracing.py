"""aiohttp ``TraceConfig`` hooks that time the IdP and the upstream connection pool into :class:`Metrics`.

Why hooks and not code in handlers (CONVENTIONS §4): the timing lives where aiohttp already knows when a request
started, got its headers, waited for the pool or opened a connection, so neither the grant core nor the proxy
handler carries metrics code. Attach them when the sessions are created (``aiohttp.ClientSession(trace_configs=
[...])``): :func:`idp_trace_config` on the session the grant core uses for token/discovery requests,
:func:`upstream_trace_config` on the proxy's upstream session.

Per-route upstream latency is *not* measured here: a hook does not know the route, so the proxy handler reports
it through ``ProxyObserver.request_done``. The upstream hooks measure what only the pool knows: how long a
request queued for a free connection (``server.max_connections`` reached) and how long opening one took (DNS, TCP,
TLS), and how often connections are reused.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import SimpleNamespace

import aiohttp
from yarl import URL

from tokenrelay.metrics import Metrics

__all__ = ["endpoint_label", "idp_trace_config", "upstream_trace_config"]

Clock = Callable[[], float]


def idp_trace_config(metrics: Metrics, *, clock: Clock = time.monotonic) -> aiohttp.TraceConfig:
    """Hooks recording each IdP exchange: time to response headers and the status (or ``error``), per host."""
    config = aiohttp.TraceConfig()

    async def on_start(_: aiohttp.ClientSession, ctx: SimpleNamespace, __: aiohttp.TraceRequestStartParams) -> None:
        ctx.started = clock()

    async def on_end(_: aiohttp.ClientSession, ctx: SimpleNamespace, params: aiohttp.TraceRequestEndParams) -> None:
        metrics.idp_request(endpoint_label(params.url), params.response.status, clock() - ctx.started)

    async def on_exception(
        _: aiohttp.ClientSession, ctx: SimpleNamespace, params: aiohttp.TraceRequestExceptionParams
    ) -> None:
        metrics.idp_request(endpoint_label(params.url), None, clock() - ctx.started)

    config.on_request_start.append(on_start)
    config.on_request_end.append(on_end)
    config.on_request_exception.append(on_exception)
    return config


def upstream_trace_config(metrics: Metrics, *, clock: Clock = time.monotonic) -> aiohttp.TraceConfig:
    """Hooks recording pool waits, connection set-up time, and new versus reused connections."""
    config = aiohttp.TraceConfig()

    async def on_queued(
        _: aiohttp.ClientSession, ctx: SimpleNamespace, __: aiohttp.TraceConnectionQueuedStartParams
    ) -> None:
        ctx.queued = clock()

    async def on_dequeued(
        _: aiohttp.ClientSession, ctx: SimpleNamespace, __: aiohttp.TraceConnectionQueuedEndParams
    ) -> None:
        metrics.upstream_pool_waited(clock() - ctx.queued)

    async def on_create_start(
        _: aiohttp.ClientSession, ctx: SimpleNamespace, __: aiohttp.TraceConnectionCreateStartParams
    ) -> None:
        ctx.connecting = clock()

    async def on_create_end(
        _: aiohttp.ClientSession, ctx: SimpleNamespace, __: aiohttp.TraceConnectionCreateEndParams
    ) -> None:
        metrics.upstream_connection(reused=False, connect_duration=clock() - ctx.connecting)

    async def on_reuse(
        _: aiohttp.ClientSession, __: SimpleNamespace, ___: aiohttp.TraceConnectionReuseconnParams
    ) -> None:
        metrics.upstream_connection(reused=True)

    config.on_connection_queued_start.append(on_queued)
    config.on_connection_queued_end.append(on_dequeued)
    config.on_connection_create_start.append(on_create_start)
    config.on_connection_create_end.append(on_create_end)
    config.on_connection_reuseconn.append(on_reuse)
    return config


def endpoint_label(url: URL) -> str:
    """``host`` or ``host:port`` (non-default ports only); never the path, query or userinfo of the URL."""
    host = url.host or "unknown"
    if url.port is not None and not url.is_default_port():
        return f"{host}:{url.port}"
    return host
