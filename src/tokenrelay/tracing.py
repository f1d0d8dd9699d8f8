"""Timing the IdP and the upstream connection pool into :class:`Metrics`, outside the request code.

Why here and not code in handlers (CONVENTIONS §4): the timing lives where aiohttp already knows when a request
started, got its headers, waited for the pool or opened a connection, so neither the grant core nor the proxy
handler carries metrics code. :func:`idp_trace_config` is a ``TraceConfig`` for the session the grant core uses
for token/discovery requests; the proxy's upstream session uses :class:`InstrumentedConnector`.

Per-route upstream latency is *not* measured here: a hook does not know the route, so the proxy handler reports
it through ``ProxyObserver.request_done``. The upstream hooks measure what only the pool knows: how long a
request queued for a free connection (``server.max_connections`` reached) and how long opening one took (DNS, TCP,
TLS), and how often connections are reused.

The upstream session uses a connector rather than a ``TraceConfig`` because a session with *any* ``TraceConfig``
pays for every trace signal of every request (a parameters object and an awaited ``Signal.send`` per step, whether
or not anything listens) — about 10 % of the proxy's CPU per request in ``bench/run.py``. The connector sees the
three moments it needs (queued, opened, reused) directly, at the cost of overriding three of ``TCPConnector``'s
internal methods (``_get``, ``_create_connection``, ``_wait_for_available_connection``); the tests in
``tests/integration/admin/test_tracing_hooks.py`` pin the behaviour, so an aiohttp upgrade that renames them fails
loudly instead of silently zeroing the metrics.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import aiohttp
from yarl import URL

from tokenrelay.metrics import Metrics

if TYPE_CHECKING:
    from aiohttp.client_proto import ResponseHandler
    from aiohttp.client_reqrep import ClientRequest, ConnectionKey
    from aiohttp.connector import Connection
    from aiohttp.tracing import Trace

__all__ = ["InstrumentedConnector", "endpoint_label", "idp_trace_config"]

Clock = Callable[[], float]


class InstrumentedConnector(aiohttp.TCPConnector):
    """A ``TCPConnector`` that records pool waits, opened connections (timed) and reuses into :class:`Metrics`."""

    def __init__(self, metrics: Metrics, *, clock: Clock = time.monotonic, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._metrics = metrics
        self._clock = clock

    async def _get(self, key: ConnectionKey, traces: list[Trace]) -> Connection | None:
        """A pooled connection (counted as reused), or ``None``: ``connect`` then opens one (``_create_connection``)."""
        connection = await super()._get(key, traces)
        if connection is not None:
            self._metrics.upstream_connection(reused=True)
        return connection

    async def _create_connection(
        self,
        req: ClientRequest,
        traces: list[Trace],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109
    ) -> ResponseHandler:
        started = self._clock()
        protocol = await super()._create_connection(req, traces, timeout)
        self._metrics.upstream_connection(reused=False, connect_duration=self._clock() - started)
        return protocol

    async def _wait_for_available_connection(self, key: ConnectionKey, traces: list[Trace]) -> None:
        started = self._clock()
        await super()._wait_for_available_connection(key, traces)
        self._metrics.upstream_pool_waited(self._clock() - started)


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


def endpoint_label(url: URL) -> str:
    """``host`` or ``host:port`` (non-default ports only); never the path, query or userinfo of the URL."""
    host = url.host or "unknown"
    if url.port is not None and not url.is_default_port():
        return f"{host}:{url.port}"
    return host
