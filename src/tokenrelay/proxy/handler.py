"""The proxy listener's request handler: route, check, inject, forward, replay once, log once.

One :class:`ProxyHandler` serves every request of the proxy listener (an aiohttp ``web.Server`` low-level
handler; an ``Application`` catch-all works too). Per request it reads the *current* runtime snapshot once, so a
reload never changes the rules half-way through a request. The order of the steps is deliberate:

1. ``CONNECT`` is refused (a token cannot be injected into a TLS tunnel);
2. the access policy runs before anything else is revealed (even whether a route exists);
3. the route is matched — absolute-form targets (``HTTP_PROXY`` clients) only against routes that name a host;
4. the token is read (``peek`` fast path, ``get`` on a miss) *before* ``100 Continue`` is sent, so a client
   whose request cannot be served never uploads its body (behind an ``Application`` route this needs
   ``expect_handler=defer_expect``, or aiohttp's router invites the body before the handler runs);
5. the upstream answer is streamed back; a 401 is replayed once with a fresh token if the body was kept.

Serve it with :data:`SERVER_OPTIONS` (``web.AppRunner(app, **SERVER_OPTIONS)``) or :func:`create_server`:
``handler_cancellation=True`` (a client that disconnects cancels the upstream request) and
``auto_decompress=False`` (a compressed request body is forwarded as sent; aiohttp's server would otherwise
inflate it while its ``Content-Encoding`` header is still forwarded, corrupting it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Final, Protocol, TypedDict

import structlog
from aiohttp import HttpVersion10, HttpVersion11, web
from multidict import CIMultiDict
from structlog.contextvars import bind_contextvars, reset_contextvars

from tokenrelay.access_log import log_access
from tokenrelay.proxy.access import AccessPolicy
from tokenrelay.proxy.errors import ProxyError, error_response
from tokenrelay.proxy.forwarding import CLIENT_CLOSED, Outcome, relay_response, release, send
from tokenrelay.proxy.headers import InboundContext, upstream_headers
from tokenrelay.proxy.in_flight import InFlight
from tokenrelay.proxy.replay import NO_BODY, RequestBody, read_body, wants_replay
from tokenrelay.proxy.request_id import HEADER as REQUEST_ID_HEADER
from tokenrelay.proxy.request_id import request_id_for
from tokenrelay.proxy.routing import Route, RouteTable, TokenBinding
from tokenrelay.proxy.websocket import HANDSHAKE_HEADERS, is_websocket, proxy_websocket
from tokenrelay.settings import AccessSettings, Settings
from tokenrelay.tokens import CachedToken, TokenCache, TokenUnavailable

if TYPE_CHECKING:
    import aiohttp

    from tokenrelay.metrics import ProxyObserver

__all__ = [
    "SERVER_OPTIONS",
    "ProxyHandler",
    "RuntimeView",
    "ServerOptions",
    "create_server",
    "defer_expect",
    "loggable_path",
]

_log = structlog.get_logger("tokenrelay.proxy")
_ACCESS_LEVELS = frozenset({"debug", "info"})
_VERSIONS: Final = {HttpVersion11: "1.1", HttpVersion10: "1.0"}  # not formatted per request


class ServerOptions(TypedDict):
    """Keyword arguments for ``web.Server`` / ``web.AppRunner``; a TypedDict so ``**`` unpacking type-checks."""

    handler_cancellation: bool
    auto_decompress: bool


#: The aiohttp server options the proxy listener needs: ``web.AppRunner(app, **SERVER_OPTIONS)``. Do not mutate.
SERVER_OPTIONS: Final[ServerOptions] = {"handler_cancellation": True, "auto_decompress": False}


class RuntimeView(Protocol):
    """The part of ``tokenrelay.runtime.Runtime`` the handler reads (kept structural to avoid an import cycle)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def routes(self) -> RouteTable: ...


class ProxyHandler:
    """The proxy listener's handler. Stateless per request apart from the objects it is given."""

    def __init__(
        self,
        *,
        runtime: Callable[[], RuntimeView],
        session: aiohttp.ClientSession,
        cache: TokenCache,
        observer: ProxyObserver,
        access: AccessSettings,
        in_flight: InFlight | None = None,
    ) -> None:
        self._runtime = runtime
        #: Requests being handled, for the graceful drain (counted here: a wrapper would cost a coroutine each).
        self.in_flight = in_flight if in_flight is not None else InFlight()
        self._session = session
        self._cache = cache
        self._observer = observer
        self._policy = AccessPolicy.from_settings(access)
        self._drop = frozenset({access.api_key_header.lower()})  # the key authenticates to us, never upstream
        self._drop_ws = self._drop | HANDSHAKE_HEADERS
        self._request_id_var = _structlog_variable("request_id")

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        started = time.monotonic()
        in_flight = self.in_flight
        in_flight.enter()
        runtime = self._runtime()
        request_id = request_id_for(request.headers)
        outcome = Outcome()
        bound = self._request_id_var.set(request_id)  # structlog's own variable: what bind_contextvars would set
        try:
            response = await self._handle(request, runtime, request_id, outcome)
        except ProxyError as exc:
            response = error_response(exc, request_id=request_id, route=_route_name(outcome))
            response.headers[REQUEST_ID_HEADER] = request_id
            outcome.status = exc.status
        except asyncio.CancelledError:
            outcome.status = CLIENT_CLOSED  # the client went away: not an upstream error
            _log.info("client_disconnected", route=outcome.route)
            raise
        finally:
            self._finish(request, runtime, request_id, outcome, started)
            self._request_id_var.reset(bound)
            in_flight.leave()
        return response

    async def _handle(
        self, request: web.BaseRequest, runtime: RuntimeView, request_id: str, outcome: Outcome
    ) -> web.StreamResponse:
        if request.method == "CONNECT":
            raise ProxyError("connect_not_supported")
        self._policy.check(request.remote, request.headers)
        host, target, forward_proxy = _target(request)
        match = runtime.routes.match(host, target, forward_proxy=forward_proxy)
        if match is None:
            raise ProxyError("no_route", f"no route matches host {host or ''!r} and this path")
        route = match.route
        outcome.route = route.name
        binding = route.binding
        token = None
        if binding is not None:  # the fresh-token read is inline: no coroutine unless the cache must fetch
            token = self._peek(route, binding, outcome)
            if token is None:
                token = await self._fetch(route, binding, outcome)
        via = runtime.settings.server.via
        websocket = is_websocket(request)
        headers = self._upstream_headers(request, route, host, token, request_id, via=via, websocket=websocket)
        if websocket:
            return await proxy_websocket(
                request, self._session, match, headers, lambda: self._refresh(route, token, outcome), outcome
            )
        # reading a body takes coroutines (100 Continue, the replay buffer): a request without one skips them
        body = await _request_body(request, route) if request.body_exists else NO_BODY
        response = await send(self._session, request.method, route, match.url, headers, body.payload(), outcome)
        if wants_replay(route, response.status, response.headers):
            if body.complete:
                await release(response)
                headers[route.header_name] = await self._refresh(route, token, outcome)
                outcome.replayed = True
                response = await send(self._session, request.method, route, match.url, headers, body.payload(), outcome)
            else:
                self._observer.replay_skipped(route.name, "body_too_large")
                _log.info("replay_skipped", route=route.name, reason="body_too_large", limit=route.max_replay_body)
        return await relay_response(request, response, request_id=request_id, via=via, outcome=outcome)

    def _upstream_headers(
        self,
        request: web.BaseRequest,
        route: Route,
        host: str | None,
        token: CachedToken | None,
        request_id: str,
        *,
        via: bool,
        websocket: bool,
    ) -> CIMultiDict[str]:
        """The upstream request's headers: the client's, rewritten by the route's rules, with the token."""
        return upstream_headers(
            request.headers,
            InboundContext(request.remote, request.scheme, host or "", _version(request), request_id),
            upstream_host=host if route.preserve_host and host else route.upstream_host,
            token_header=route.header_name if token is not None else None,
            token_value=route.header_value(token.access_token) if token is not None else None,
            forwarded=route.forwarded_headers,
            via=via,
            drop=self._drop_ws if websocket else self._drop,
        )

    def _peek(self, route: Route, binding: TokenBinding, outcome: Outcome) -> CachedToken | None:
        """The route's fresh token from a lock-free ``peek``, or ``None`` when the cache must fetch (:meth:`_fetch`)."""
        token = self._cache.peek(binding.key)
        self._observer.token_lookup(route.profile or "", token is not None)
        if token is not None:
            outcome.fingerprint = token.fingerprint
        return token

    async def _fetch(self, route: Route, binding: TokenBinding, outcome: Outcome) -> CachedToken:
        """The route's token through the single-flight ``get`` (after a ``peek`` miss)."""
        try:
            token = await self._cache.get(binding.key, binding.fetch, binding.policy)
        except TokenUnavailable as exc:
            detail = f"no access token is available for profile {route.profile!r}"
            if exc.error:
                detail += f" (token endpoint error: {exc.error})"
            raise ProxyError("token_unavailable", detail, retry_after=exc.retry_after) from exc
        outcome.fingerprint = token.fingerprint
        return token

    async def _refresh(self, route: Route, used: CachedToken | None, outcome: Outcome) -> str:
        """After the upstream rejected ``used``: invalidate exactly it, get a fresh one, return the header value."""
        binding = route.binding
        if binding is None or used is None:  # wants_replay() is false for token-less routes
            raise ProxyError("bad_request", "this route has no token to refresh")
        _log.info("token_rejected", route=route.name, token=used.fingerprint, upstream_status=outcome.upstream_status)
        await self._cache.invalidate(binding.key, used)
        token = self._peek(route, binding, outcome) or await self._fetch(route, binding, outcome)
        return route.header_value(token.access_token)

    def _finish(
        self, request: web.BaseRequest, runtime: RuntimeView, request_id: str, outcome: Outcome, started: float
    ) -> None:
        """Metrics always; the access line only when it would be written (no work when logging is off)."""
        duration = time.monotonic() - started
        status = outcome.status or 500
        self._observer.request_done(
            outcome.route, request.method, status, outcome.upstream_status, duration, outcome.upstream_duration,
            outcome.replayed,
        )  # fmt: skip
        log = runtime.settings.log
        if log.access_log and log.level in _ACCESS_LEVELS:
            log_access(
                route=outcome.route,
                method=request.method,
                path=loggable_path(request.raw_path),
                status=status,
                upstream_status=outcome.upstream_status,
                duration_ms=round(duration * 1000, 3),
                token=outcome.fingerprint,
                replayed=outcome.replayed,
                request_id=request_id,
            )


def _structlog_variable(key: str) -> ContextVar[Any]:
    """The ``ContextVar`` behind structlog's context-local ``key``, found through its public API.

    Setting and resetting it directly is what ``bind_contextvars``/``reset_contextvars`` do, minus building a
    name and two dicts per request; ``merge_contextvars`` and ``clear_contextvars`` see the same variable.
    """
    tokens = bind_contextvars(**{key: None})
    variable = tokens[key].var
    reset_contextvars(**tokens)
    return variable


def create_server(handler: ProxyHandler, **kwargs: Any) -> web.Server:
    """The low-level server for the proxy listener, with the two settings forwarding depends on."""
    return web.Server(handler, **SERVER_OPTIONS, **kwargs)


def _target(request: web.BaseRequest) -> tuple[str | None, str, bool]:
    """``(host, origin-form target, forward_proxy)`` from the raw request target, byte-for-byte.

    Origin-form (``GET /x?y HTTP/1.1``) takes the host from ``Host``; absolute-form (``GET http://h/x HTTP/1.1``,
    what ``HTTP_PROXY`` clients send) takes it from the target itself, as RFC 9112 §3.2.2 requires.
    """
    raw = request.raw_path
    if raw.startswith("/"):
        return request.headers.get("Host"), raw, False
    scheme, sep, rest = raw.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        raise ProxyError("bad_request", "unsupported request target form")
    cuts = [i for i in (rest.find("/"), rest.find("?")) if i >= 0]
    cut = min(cuts) if cuts else len(rest)
    authority = rest[:cut].rpartition("@")[2]  # never forward or match on userinfo
    target = rest[cut:] or "/"
    return authority, ("/" + target if target.startswith("?") else target), True


def loggable_path(raw: str) -> str:
    """The path with query *values* removed (``/x?a=&b=``): values often carry personal data or keys."""
    path, sep, query = raw.partition("?")
    if not sep:
        return path
    if "&" not in query:  # the common case, without building a list
        return f"{path}?{query.partition('=')[0]}=" if query else f"{path}?"
    names = (part.partition("=")[0] for part in query.split("&") if part)
    return f"{path}?{'&'.join(f'{name}=' for name in names)}"


#: Set on a ``web.Request`` by :func:`defer_expect`: the router left ``100 Continue`` to the handler.
_CONTINUE_DEFERRED: Final = web.RequestKey("tokenrelay_continue_deferred", bool)


async def defer_expect(request: web.Request) -> None:
    """An ``expect_handler`` for the proxy's catch-all route: leave ``Expect`` to the handler.

    aiohttp's default expect handler sends ``100 Continue`` as soon as the router has matched, before any handler
    runs, so an unroutable or token-less request would upload its body anyway. This one sends nothing and marks
    the request, and the handler answers ``100 Continue`` itself once it has decided to forward (as it does on
    the low-level server). Unknown ``Expect`` values are ignored there too: the header is never forwarded.
    """
    request[_CONTINUE_DEFERRED] = True


async def _request_body(request: web.BaseRequest, route: Route) -> RequestBody:
    """The body of a request that has one: ``100 Continue`` first if asked, then kept whole when replayable."""
    if "Expect" in request.headers:
        await _send_continue(request)
    replayable = route.binding is not None and route.retry_on_401
    return await read_body(request.content, route.max_replay_body if replayable else -1)


async def _send_continue(request: web.BaseRequest) -> None:
    """Answer ``Expect: 100-continue`` ourselves, now that the request will be forwarded.

    The low-level server never answers it; an ``Application`` route does, in its router, unless its
    ``expect_handler`` is :func:`defer_expect` — so a ``web.Request`` gets one only when that deferred it,
    never a second one.
    """
    if request.version < (1, 1):
        return
    if isinstance(request, web.Request) and not request.get(_CONTINUE_DEFERRED, False):
        return
    if request.headers.get("Expect", "").lower() == "100-continue":
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # as aiohttp's own expect handler: the response body has not started


def _version(request: web.BaseRequest) -> str:
    version = request.version
    return _VERSIONS.get(version) or f"{version.major}.{version.minor}"


def _route_name(outcome: Outcome) -> str | None:
    return None if outcome.route == "-" else outcome.route
