"""The upstream exchange: send a request, stream the answer back, translate failures.

aiohttp client exceptions are translated here and nowhere else: before the upstream's status line arrives a
failure becomes a :class:`ProxyError` (502/504, answered as JSON by the handler); after the downstream response
has started, the only honest signal left is to cut the client's connection, so a truncated body can never be
mistaken for a complete one.

Memory stays bounded in both directions: the request body is an async iterator handed to the client session,
the response is relayed chunk by chunk (``readany``) through a ``StreamResponse``, and both sides apply
aiohttp's flow control (a slow reader pauses the fast writer).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final

import aiohttp
import structlog
from aiohttp import HttpVersion10, HttpVersion11, web
from multidict import CIMultiDict

from tokenrelay.proxy.errors import ProxyError
from tokenrelay.proxy.headers import response_headers
from tokenrelay.proxy.routing import Route

__all__ = ["CLIENT_CLOSED", "Outcome", "relay_response", "release", "send"]

_log = structlog.get_logger("tokenrelay.proxy")

#: Headers aiohttp's client would add by itself; the proxy forwards what the client sent, not aiohttp's defaults.
_SKIP_AUTO_HEADERS: Final = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")
#: Methods for which aiohttp adds no ``Content-Type`` to a request without a body (it does for POST, PUT, PATCH).
_NO_AUTO_CONTENT_TYPE: Final = frozenset({"GET", "HEAD", "OPTIONS", "DELETE", "TRACE"})
#: An error answer smaller than this is read to the end before a replay so its connection can be reused.
_DRAIN_LIMIT: Final = 64 * 1024


#: ``Via`` protocol names for the usual versions, so they are not formatted per request.
_VERSIONS: Final = {HttpVersion11: "1.1", HttpVersion10: "1.0"}

#: The status recorded (never sent) when the client disconnects first; nginx's convention.
CLIENT_CLOSED: Final = 499


@dataclass(slots=True)
class Outcome:
    """What happened to one request, for the access log and the metrics (filled in as the request proceeds)."""

    route: str = "-"
    status: int = 0
    upstream_status: int | None = None
    upstream_duration: float | None = None
    replayed: bool = False
    fingerprint: str | None = None


async def send(
    session: aiohttp.ClientSession,
    method: str,
    route: Route,
    url: object,
    headers: CIMultiDict[str],
    body: bytes | AsyncIterator[bytes] | None,
    outcome: Outcome,
) -> aiohttp.ClientResponse:
    """Send one upstream request and return the response once its headers have arrived."""
    started = time.monotonic()
    try:
        response = await session.request(
            method,
            url,  # type: ignore[arg-type]  # a yarl.URL built with encoded=True
            headers=headers,
            data=body,
            allow_redirects=False,
            auto_decompress=False,
            skip_auto_headers=_auto_headers_to_skip(method, headers, body),
            timeout=route.timeout,
            ssl=route.ssl,
        )
    except TimeoutError as exc:
        raise ProxyError("upstream_timeout", f"the upstream of route {route.name!r} did not answer in time") from exc
    except aiohttp.ClientError as exc:
        _log.warning("upstream_unreachable", route=route.name, error=type(exc).__name__)
        raise ProxyError("upstream_unreachable", f"the upstream of route {route.name!r} could not be reached") from exc
    outcome.upstream_duration = time.monotonic() - started
    outcome.upstream_status = response.status
    return response


def _auto_headers_to_skip(
    method: str, headers: CIMultiDict[str], body: bytes | AsyncIterator[bytes] | None
) -> tuple[str, ...] | None:
    """What aiohttp must be told not to add; ``None`` when the request already carries every field it would add.

    aiohttp never overrides a field the request has, so when the client sent all of them skipping changes
    nothing, and passing ``None`` spares aiohttp building and merging a skip set on every request (its fast
    path). That is the usual case for HTTP libraries (``User-Agent``, ``Accept`` and ``Accept-Encoding``) on a
    request that gets no ``Content-Type`` anyway (no body and a method aiohttp adds none for).
    """
    if (
        "User-Agent" in headers
        and "Accept" in headers
        and "Accept-Encoding" in headers
        and ("Content-Type" in headers or (body is None and method in _NO_AUTO_CONTENT_TYPE))
    ):
        return None
    return _SKIP_AUTO_HEADERS


async def release(response: aiohttp.ClientResponse) -> None:
    """Let go of an answer we will not relay (the 401 before a replay): drain it if small, else drop it."""
    length = response.content_length
    if length is not None and length <= _DRAIN_LIMIT:
        try:
            await response.read()
        except (aiohttp.ClientError, TimeoutError):
            response.close()
            return
        response.release()
    else:
        response.close()


class _CoalescedResponse(web.StreamResponse):
    """A ``StreamResponse`` whose header block waits for the first body write, so both leave in one ``send``.

    Used only when the first part of the body is already in hand: a streamed answer whose body is not there yet
    (server-sent events, long polls) gets a plain ``StreamResponse``, whose headers go out at once. The class
    attribute is aiohttp's own switch (``web.Response`` sets it the same way); were it ever removed, the headers
    would simply be sent separately again.
    """

    _send_headers_immediately = False


async def relay_response(
    request: web.BaseRequest, response: aiohttp.ClientResponse, *, request_id: str, via: bool, outcome: Outcome
) -> web.StreamResponse:
    """Stream ``response`` to the client; a client that goes away is recorded as status 499, not raised."""
    received = response.version  # Via names the protocol *this hop received* the message in (RFC 9110 §7.6.3)
    version = "1.1" if received is None else _VERSIONS.get(received) or f"{received.major}.{received.minor}"
    try:
        first = response.content.read_nowait()  # what already arrived with the headers (often the whole body)
    except (aiohttp.ClientError, TimeoutError):
        first = b""  # _pump reads again and meets the same failure, after the headers have been sent
    kind = _CoalescedResponse if first or response.content.at_eof() else web.StreamResponse
    downstream = kind(status=response.status, reason=response.reason)
    response_headers(response.headers, version=version, request_id=request_id, via=via, into=downstream.headers)
    outcome.status = response.status
    complete = False
    try:
        await downstream.prepare(request)
        if response.content.at_eof():  # the whole body came with the headers: it and its end in one write
            await downstream.write_eof(first)
            complete = True
        else:
            complete = await _pump(request, response, downstream, first)
    except ConnectionError:  # only the downstream side: _pump handles the upstream's errors itself
        outcome.status = CLIENT_CLOSED
        _log.info("client_disconnected", route=outcome.route)
    finally:
        # A fully read answer gives its connection back to the pool; anything else must not be reused.
        if complete:
            response.release()
        else:
            response.close()
    return downstream


async def _pump(
    request: web.BaseRequest, response: aiohttp.ClientResponse, downstream: web.StreamResponse, first: bytes
) -> bool:
    """Copy the body (starting with ``first``); ``False`` if the upstream broke off (the client is then cut off)."""
    if first:
        await downstream.write(first)
    content = response.content
    while True:
        try:
            chunk = await content.readany()
        except (aiohttp.ClientError, TimeoutError) as exc:
            _log.warning("upstream_body_failed", error=type(exc).__name__)
            _abort(request)
            return False
        if not chunk:
            break
        await downstream.write(chunk)
    await downstream.write_eof()
    return True


def _abort(request: web.BaseRequest) -> None:
    """Cut the client connection: the only way to tell it the body it got is incomplete."""
    transport = request.transport
    if transport is not None:
        transport.abort()
