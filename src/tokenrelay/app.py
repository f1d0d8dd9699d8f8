"""The aiohttp applications: the proxy listener's app (which owns the shared services) and the admin app.

Everything long-lived is created in the proxy app's ``cleanup_ctx`` and closed there in reverse order, so a
startup failure half-way still closes what was opened: two ``ClientSession``s (the upstream one — a pool sized by
``server.max_connections`` whose connector records the pool metrics, ``auto_decompress=False`` so bodies pass
through byte-for-byte, no cookie jar — and
the IdP one the grant core shares), the ``TokenCache``, the first compiled :class:`~tokenrelay.runtime.Runtime`
(a config that does not compile fails startup), the reload controller and the proxy handler.

The admin app is served on its own listener (``admin.port``), never under proxied paths, so a route can never
shadow ``/healthz`` and an upstream can never be reached through the admin port. It admits loopback peers and,
when ``access.allow_clients`` is set, those networks (the startup check refuses a non-loopback admin listener
without one of ``allow_clients``/``access.open``).
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Final

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Middleware
from aiohttp.web_urldispatcher import MatchInfoError

from tokenrelay.admin import create_admin_app
from tokenrelay.metrics import Metrics
from tokenrelay.proxy.access import peer_address
from tokenrelay.proxy.handler import SERVER_OPTIONS, ProxyHandler, defer_expect
from tokenrelay.proxy.in_flight import InFlight
from tokenrelay.reload import ReloadController
from tokenrelay.runtime import RuntimeHolder, compile_runtime
from tokenrelay.settings import Settings
from tokenrelay.tokens import TokenCache
from tokenrelay.tracing import InstrumentedConnector, idp_trace_config

__all__ = [
    "SERVICES",
    "InFlight",
    "Services",
    "create_admin_listener_app",
    "create_proxy_app",
    "create_proxy_server",
    "package_version",
    "proxy_services",
]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True, kw_only=True)
class Services:
    """What both listeners share; lives exactly as long as the proxy app."""

    upstream: aiohttp.ClientSession
    idp: aiohttp.ClientSession
    cache: TokenCache
    metrics: Metrics
    holder: RuntimeHolder
    reloader: ReloadController
    handler: ProxyHandler
    in_flight: InFlight


SERVICES: Final = web.AppKey("tokenrelay_services", Services)


def package_version() -> str:
    """The installed distribution's version (``0+unknown`` from a bare source tree)."""
    try:
        return version("tokenrelay")
    except PackageNotFoundError:
        return "0+unknown"


def create_proxy_app(
    settings: Settings,
    *,
    config_path: Path | None = None,
    flags: Mapping[str, Any] | None = None,
    metrics: Metrics | None = None,
) -> web.Application:
    """The proxy listener as an ``Application`` (for embedding): every request goes to the proxy handler.

    ``serve`` uses :func:`proxy_services` and :func:`create_proxy_server` instead, which answer the same requests
    the same way with less work per request. Serve it with ``web.AppRunner(app, **SERVER_OPTIONS)``.
    """
    app = web.Application(middlewares=[_unrouted])
    app.cleanup_ctx.append(_services_context(settings, config_path, dict(flags or {}), metrics))
    # ``100 Continue`` is the handler's to send, after the access check, routing and the token lookup
    app.router.add_route("*", "/{tail:.*}", _proxy, expect_handler=defer_expect)
    return app


def create_admin_listener_app(services: Services, settings: Settings) -> web.Application:
    """The admin app for ``services``; ``/readyz`` fails as soon as the proxy starts draining.

    ``/healthz`` and ``/readyz`` answer any peer that can reach the listener: the kubelet probes from the node's
    address, and they reveal only liveness and per-profile readiness reasons. ``/metrics`` and ``/tokens`` (token
    state, never tokens) answer loopback peers, ``access.allow_clients``, or anyone when ``access.open`` is set.
    Whether the listener is reachable at all is the startup check's job (non-loopback needs a policy).
    """
    in_flight = services.in_flight
    app = create_admin_app(
        holder=services.holder, cache=services.cache, metrics=services.metrics, draining=lambda: in_flight.draining
    )
    app.middlewares.append(_peer_filter(settings.access.allow_clients, open_access=settings.access.open))
    return app


@contextlib.asynccontextmanager
async def proxy_services(
    settings: Settings,
    *,
    config_path: Path | None = None,
    flags: Mapping[str, Any] | None = None,
    metrics: Metrics | None = None,
) -> AsyncIterator[Services]:
    """Create the shared services, yield them, close them in reverse order (also when startup fails half-way)."""
    observer = metrics or Metrics(package_version())
    server = settings.server
    # The connector records the pool metrics; a TraceConfig would cost every request ~10 % more CPU.
    connector = InstrumentedConnector(
        observer, limit=server.max_connections, limit_per_host=server.max_connections_per_host
    )
    upstream = aiohttp.ClientSession(connector=connector, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar())
    idp = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(), trace_configs=[idp_trace_config(observer)])
    cache = TokenCache()
    try:
        runtime = await compile_runtime(settings, session=idp, previous=None, metrics=observer)
        holder = RuntimeHolder(runtime, session=idp, cache=cache, metrics=observer)
        handler = ProxyHandler(
            runtime=lambda: holder.current, session=upstream, cache=cache, observer=observer, access=settings.access
        )
        reloader = ReloadController(holder, config_path=config_path, flags=dict(flags or {}))
        yield Services(
            upstream=upstream,
            idp=idp,
            cache=cache,
            metrics=observer,
            holder=holder,
            reloader=reloader,
            handler=handler,
            in_flight=handler.in_flight,
        )
        await reloader.aclose()
        await holder.aclose()
    finally:
        await cache.aclose()
        await upstream.close()
        await idp.close()


def create_proxy_server(services: Services, **kwargs: Any) -> web.Server:
    """The proxy listener as aiohttp's low-level server: every request straight to the handler, counted in flight.

    What ``serve`` uses. No router, no middleware chain, no ``web.Request``/match-info per request: about 7 % of
    the per-request CPU an ``Application`` catch-all costs (``docs/performance.md``). ``kwargs`` go to
    ``web.Server`` (e.g. ``access_log=None``).
    """
    return web.Server(services.handler, **SERVER_OPTIONS, **kwargs)


def _services_context(
    settings: Settings, config_path: Path | None, flags: dict[str, Any], metrics: Metrics | None
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def services_ctx(app: web.Application) -> AsyncIterator[None]:
        async with proxy_services(settings, config_path=config_path, flags=flags, metrics=metrics) as services:
            app[SERVICES] = services
            yield

    return services_ctx


async def _proxy(request: web.Request) -> web.StreamResponse:
    return await request.app[SERVICES].handler(request)


@web.middleware
async def _unrouted(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Targets the router cannot place (``CONNECT host:443``) still reach the proxy handler, which answers them."""
    if isinstance(request.match_info, MatchInfoError):
        return await _proxy(request)
    return await handler(request)


#: Admin paths every peer that reaches the admin listener may call (health probes).
PROBE_PATHS: Final = frozenset({"/healthz", "/readyz"})


def _peer_filter(allowed: Sequence[IPNetwork], *, open_access: bool) -> Middleware:
    networks = tuple(allowed)

    @web.middleware
    async def peer_filter(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not admin_request_allowed(request.path, request.remote, networks, open_access=open_access):
            return web.json_response({"error": "forbidden"}, status=403, headers={"Cache-Control": "no-store"})
        return await handler(request)

    return peer_filter


def admin_request_allowed(path: str, remote: str | None, networks: tuple[IPNetwork, ...], *, open_access: bool) -> bool:
    """Whether the admin listener answers ``path`` for this peer (see :func:`create_admin_listener_app`)."""
    return path in PROBE_PATHS or open_access or _peer_allowed(remote, networks)


def _peer_allowed(remote: str | None, networks: tuple[IPNetwork, ...]) -> bool:
    address = peer_address(remote)  # the proxy's own parsing: zones dropped, IPv4-mapped unwrapped
    return address is not None and (address.is_loopback or any(address in network for network in networks))
