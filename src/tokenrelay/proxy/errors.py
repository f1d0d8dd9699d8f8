"""The proxy's own failures, and the one table that turns each into an HTTP answer.

Every answer the proxy makes *itself* (as opposed to relaying the upstream's) is JSON with a stable ``error``
code, so a client or a dashboard can react to the code and never has to parse prose::

    ProxyError(code)          raised anywhere on the forwarding path, caught once in the handler
      no_route                404  no route matches the request's host and path
      host_not_allowed        403  forward-proxy request for a host no route names (never an open proxy)
      connect_not_supported   405  CONNECT: a token cannot be injected into a TLS tunnel
      forbidden               403  the inbound access policy refused the client
      bad_request             400  a request the proxy will not forward (e.g. dot-segments escaping the upstream)
      token_unavailable       503  no token could be obtained; ``Retry-After`` says when to try again
      upstream_unreachable    502  connecting to or talking with the upstream failed
      upstream_timeout        504  the upstream did not answer in time
      websocket_rejected      502  the upstream refused the WebSocket handshake

Messages are written here, by us: they never contain a token, a secret or an upstream's error body.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Final

from aiohttp import web

__all__ = ["ERRORS", "ErrorSpec", "ProxyError", "error_response"]


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    """How one proxy error is answered: its HTTP status and a default human-readable message."""

    status: int
    message: str


#: The table: error code -> status + default message. The codes are part of the public interface.
ERRORS: Final[dict[str, ErrorSpec]] = {
    "no_route": ErrorSpec(404, "no route matches this request"),
    "host_not_allowed": ErrorSpec(403, "this proxy only forwards to the hosts its routes name"),
    "connect_not_supported": ErrorSpec(
        405,
        "CONNECT is not supported: a token cannot be injected into a TLS tunnel; "
        "send plain http:// to the proxy and route it to an https:// upstream instead",
    ),
    "forbidden": ErrorSpec(403, "the access policy does not allow this client"),
    "bad_request": ErrorSpec(400, "the request cannot be forwarded"),
    "token_unavailable": ErrorSpec(503, "no access token is available for this route"),
    "upstream_unreachable": ErrorSpec(502, "the upstream could not be reached"),
    "upstream_timeout": ErrorSpec(504, "the upstream did not answer in time"),
    "websocket_rejected": ErrorSpec(502, "the upstream refused the WebSocket handshake"),
}


class ProxyError(Exception):
    """A failure the proxy answers itself. ``code`` is a key of :data:`ERRORS`.

    ``detail`` refines the message (never secret material); ``retry_after`` (seconds) becomes ``Retry-After``;
    ``extra`` adds fields to the JSON body (e.g. ``upstream_status``).
    """

    def __init__(
        self,
        code: str,
        detail: str | None = None,
        *,
        retry_after: float | None = None,
        extra: dict[str, str | int] | None = None,
    ) -> None:
        if code not in ERRORS:
            raise ValueError(f"unknown proxy error code {code!r}")
        self.code = code
        self.detail = detail
        self.retry_after = retry_after
        self.extra = extra or {}
        super().__init__(f"{code}: {detail or ERRORS[code].message}")

    @property
    def status(self) -> int:
        return ERRORS[self.code].status


def error_response(error: ProxyError, *, request_id: str | None = None, route: str | None = None) -> web.Response:
    """The JSON answer for ``error``; ``Retry-After`` is rounded *up* so a client never retries too early."""
    body: dict[str, str | int] = {"error": error.code, "message": error.detail or ERRORS[error.code].message}
    if route is not None:
        body["route"] = route
    if request_id is not None:
        body["request_id"] = request_id
    body.update(error.extra)
    headers: dict[str, str] = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(max(0, math.ceil(error.retry_after)))
    return web.Response(
        status=error.status,
        text=json.dumps(body, separators=(",", ":")),
        content_type="application/json",
        headers=headers,
    )
