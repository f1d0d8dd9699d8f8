"""The forwarding path (see ``docs/proxy.md``): route, check access, inject the token, stream, replay once on 401.

``runtime.py`` compiles a :class:`RouteTable` from the configuration; ``app.py``/``server.py`` serve a
:class:`ProxyHandler` on the proxy listener. Nothing here knows how tokens are fetched: a route carries a
:class:`TokenBinding` (cache key, fetcher, refresh policy) and the handler asks the ``TokenCache``.
"""

from __future__ import annotations

from tokenrelay.proxy.access import AccessPolicy
from tokenrelay.proxy.errors import ERRORS, ErrorSpec, ProxyError, error_response
from tokenrelay.proxy.handler import SERVER_OPTIONS, ProxyHandler, RuntimeView, create_server
from tokenrelay.proxy.routing import Route, RouteMatch, RouteTable, TokenBinding

__all__ = [
    "ERRORS",
    "SERVER_OPTIONS",
    "AccessPolicy",
    "ErrorSpec",
    "ProxyError",
    "ProxyHandler",
    "Route",
    "RouteMatch",
    "RouteTable",
    "RuntimeView",
    "TokenBinding",
    "create_server",
    "error_response",
]
