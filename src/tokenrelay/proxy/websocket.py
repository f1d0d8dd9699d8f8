"""WebSocket upgrades: the token goes into the upstream handshake, then frames are pumped both ways.

A WebSocket carries no per-message headers, so the handshake is the only place a token can go. The proxy
completes the upstream handshake *first* (with the token, and once more with a fresh token if the upstream
answers 401), and only then accepts the client's, offering the subprotocol the upstream chose. Each side
answers its own pings; data frames and the close code cross over.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiohttp
import structlog
from aiohttp import WSCloseCode, WSMsgType, web
from multidict import CIMultiDict

from tokenrelay.proxy.errors import ProxyError
from tokenrelay.proxy.forwarding import Outcome
from tokenrelay.proxy.replay import wants_replay
from tokenrelay.proxy.routing import RouteMatch

__all__ = ["HANDSHAKE_HEADERS", "is_websocket", "proxy_websocket"]

_log = structlog.get_logger("tokenrelay.proxy")

#: The client's handshake fields: aiohttp's client makes its own for the upstream handshake.
HANDSHAKE_HEADERS = frozenset(
    {"sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-protocol"}
)

#: Called when the upstream refused the token: returns the new token header value.
Refresh = Callable[[], Awaitable[str]]


def is_websocket(request: web.BaseRequest) -> bool:
    return request.method == "GET" and request.headers.get("Upgrade", "").lower() == "websocket"


async def proxy_websocket(
    request: web.BaseRequest,
    session: aiohttp.ClientSession,
    match: RouteMatch,
    headers: CIMultiDict[str],
    refresh: Refresh,
    outcome: Outcome,
) -> web.WebSocketResponse:
    """Open the upstream WebSocket, accept the client's, and relay until either side closes."""
    protocols = [p.strip() for v in request.headers.getall("Sec-WebSocket-Protocol", ()) for p in v.split(",")]
    upstream = await _connect(session, match, headers, protocols, refresh, outcome)
    try:
        protocols_out = [upstream.protocol] if upstream.protocol else []
        downstream = web.WebSocketResponse(
            protocols=protocols_out, max_msg_size=match.route.max_websocket_message, autoclose=False
        )
        await downstream.prepare(request)
        outcome.status = 101
        await _pump_both(downstream, upstream)
    finally:
        await upstream.close()
    return downstream


async def _connect(
    session: aiohttp.ClientSession,
    match: RouteMatch,
    headers: CIMultiDict[str],
    protocols: list[str],
    refresh: Refresh,
    outcome: Outcome,
) -> aiohttp.ClientWebSocketResponse:
    route = match.route
    for attempt in (1, 2):
        try:
            async with asyncio.timeout(route.timeout.total or route.timeout.sock_connect):
                upstream = await session.ws_connect(
                    match.url,
                    headers=headers,
                    protocols=protocols,
                    ssl=route.ssl,
                    max_msg_size=route.max_websocket_message,
                    autoclose=False,
                )
        except aiohttp.WSServerHandshakeError as exc:
            outcome.upstream_status = exc.status
            if attempt == 1 and wants_replay(route, exc.status, exc.headers or CIMultiDict()):
                headers[route.header_name] = await refresh()
                outcome.replayed = True
                continue
            raise ProxyError("websocket_rejected", extra={"upstream_status": exc.status}) from exc
        except TimeoutError as exc:
            raise ProxyError("upstream_timeout") from exc
        except aiohttp.ClientError as exc:
            raise ProxyError("upstream_unreachable") from exc
        outcome.upstream_status = 101
        return upstream
    raise AssertionError("unreachable")  # pragma: no cover


async def _pump_both(downstream: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse) -> None:
    """Relay frames until one side closes; the close (and its code) is passed on before it is answered."""
    up = asyncio.create_task(_pipe(downstream, upstream))
    down = asyncio.create_task(_pipe(upstream, downstream))
    try:
        done, _ = await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (up, down):
            task.cancel()
        await asyncio.gather(up, down, return_exceptions=True)
    first = up if up in done else down
    code = (first.result() if not first.cancelled() and first.exception() is None else None) or WSCloseCode.OK
    await downstream.close(code=code)
    await upstream.close(code=code)


async def _pipe(
    source: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
    sink: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
) -> int | None:
    """Copy data frames from ``source`` to ``sink``; on a close, close ``sink`` with its code first.

    Both sides run with ``autoclose=False``: the peer that closed gets its answer only once the other side has
    been told, so a client that hangs up right after its close frame cannot cut the propagation short.
    """
    while True:
        message = await source.receive()
        if message.type is WSMsgType.TEXT:
            await sink.send_str(message.data)
        elif message.type is WSMsgType.BINARY:
            await sink.send_bytes(message.data)
        elif message.type is WSMsgType.CLOSE:
            code = int(message.data)
            await sink.close(code=code, message=(message.extra or "").encode())
            return code
        elif message.type is WSMsgType.ERROR:
            error = source.exception()
            _log.warning("websocket_error", error=type(error).__name__)
            # a message over routes[].max_websocket_message closes both sides with 1009, anything else with 1011
            return int(error.code) if isinstance(error, aiohttp.WebSocketError) else int(WSCloseCode.INTERNAL_ERROR)
        elif message.type in (WSMsgType.CLOSING, WSMsgType.CLOSED):
            return None
