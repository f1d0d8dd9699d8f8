"""Header rewriting in both directions.

Why each rule exists:

* Hop-by-hop fields (RFC 9110 §7.6.1, plus every field the ``Connection`` header names) describe *one*
  connection; forwarding them would make the upstream (or the client) act on a connection it is not part of —
  e.g. a client's ``Proxy-Authorization`` would leak to the upstream.
* The token header (``Authorization`` unless the route names another) is *replaced*, never appended: two
  ``Authorization`` fields are a request smuggling hazard and servers pick either one.
* The access-control key header authenticates the client *to us*; it is never forwarded.
* ``Expect`` is answered by the proxy itself (it sends ``100 Continue`` once it has decided to forward).
* Repeated fields (``Set-Cookie``, ``Via``...) survive because everything goes through ``CIMultiDict.add``.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from multidict import CIMultiDict, CIMultiDictProxy

__all__ = [
    "HOP_BY_HOP",
    "InboundContext",
    "connection_tokens",
    "response_headers",
    "upstream_headers",
]

#: RFC 9110 §7.6.1 plus the historical ``Proxy-Connection`` and ``Keep-Alive``; lower-case.
HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "transfer-encoding",
        "upgrade",
        "proxy-authorization",
        "proxy-authenticate",
        "trailer",
    }
)
#: Never forwarded upstream for other reasons (see the module docstring); ``host`` is set explicitly.
_REQUEST_SKIP: Final = HOP_BY_HOP | {"host", "expect", "x-request-id"}
_NONE: Final[frozenset[str]] = frozenset()
#: Request fields the rewrite appends to or keeps when present; when none came in, they are simply added.
_REQUEST_APPENDED: Final = frozenset({"via", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"})


class InboundContext(NamedTuple):
    """What the header rewrite needs to know about the inbound request, besides its headers.

    A ``NamedTuple`` rather than a frozen dataclass: one is built per request, and a frozen dataclass's
    ``__init__`` (an ``object.__setattr__`` per field) costs about three times as much.
    """

    peer: str | None  # the client's IP address
    scheme: str  # "http" or "https": how the client reached us
    host: str  # the Host the client asked for (the absolute-form target's authority in forward-proxy mode)
    version: str  # "1.1"
    request_id: str


def connection_tokens(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> frozenset[str]:
    """The lower-case field names listed in ``Connection`` (all of its occurrences)."""
    values = headers.getall("Connection", ())
    if not values:
        return _NONE
    return frozenset(t.strip().lower() for value in values for t in value.split(",") if t.strip())


def upstream_headers(
    inbound: CIMultiDictProxy[str],
    ctx: InboundContext,
    *,
    upstream_host: str,
    token_header: str | None,
    token_value: str | None,
    forwarded: bool,
    via: bool,
    drop: frozenset[str] = frozenset(),
) -> CIMultiDict[str]:
    """Build the upstream request's headers once, in one pass over the inbound ones.

    ``upstream_host`` is the Host to send (already resolved against ``preserve_host``); ``drop`` lists extra
    lower-case names to remove (the access key header, WebSocket handshake fields). No set is built per request
    unless the client named headers in ``Connection``.
    """
    named = connection_tokens(inbound)
    token_lower = token_header.lower() if token_header is not None else None
    out: CIMultiDict[str] = CIMultiDict()
    out["Host"] = upstream_host
    # whether a field this function adds to or keeps (Via, X-Forwarded-*) is already there (a token header may
    # even be configured under one of those names)
    appended = token_lower in _REQUEST_APPENDED
    for name, value in inbound.items():
        lower = name.lower()
        if lower in _REQUEST_SKIP or lower in drop or lower == token_lower or (named and lower in named):
            continue
        out.add(name, value)
        appended = appended or lower in _REQUEST_APPENDED
    if token_header is not None and token_value is not None:
        out[token_header] = token_value
    out["X-Request-Id"] = ctx.request_id
    if forwarded:
        if appended:
            _add_forwarded(out, ctx)
        else:  # the usual first hop: nothing to merge with, so no lookups
            if ctx.peer is not None:
                out.add("X-Forwarded-For", ctx.peer)
            out.add("X-Forwarded-Proto", ctx.scheme)
            out.add("X-Forwarded-Host", ctx.host)
    if via:
        if appended:
            _append(out, "Via", f"{ctx.version} tokenrelay")
        else:
            out.add("Via", f"{ctx.version} tokenrelay")
    return out


def response_headers(
    upstream: CIMultiDictProxy[str],
    *,
    version: str,
    request_id: str,
    via: bool,
    into: CIMultiDict[str] | None = None,
) -> CIMultiDict[str]:
    """The downstream response's headers: the upstream's minus hop-by-hop fields, plus ``Via`` and the id.

    ``into`` (the new response's own, empty ``headers``) is filled in place and returned: handing a dict to
    ``StreamResponse(headers=...)`` would copy every field once more.
    """
    named = connection_tokens(upstream)
    out: CIMultiDict[str] = CIMultiDict() if into is None else into
    for name, value in upstream.items():
        lower = name.lower()
        if lower not in HOP_BY_HOP and not (named and lower in named):
            out.add(name, value)
    out["X-Request-Id"] = request_id
    if via:
        if "Via" in out:
            _append(out, "Via", f"{version} tokenrelay")
        else:
            out.add("Via", f"{version} tokenrelay")
    return out


def _add_forwarded(out: CIMultiDict[str], ctx: InboundContext) -> None:
    """``X-Forwarded-For`` gets the peer appended; ``-Proto``/``-Host`` keep an earlier proxy's values."""
    if ctx.peer is not None:
        _append(out, "X-Forwarded-For", ctx.peer)
    out.setdefault("X-Forwarded-Proto", ctx.scheme)
    out.setdefault("X-Forwarded-Host", ctx.host)


def _append(out: CIMultiDict[str], name: str, value: str) -> None:
    """Append to a comma-separated field, folding repeated occurrences into one (RFC 9110 §5.3)."""
    existing = out.popall(name, ())
    out[name] = ", ".join((*existing, value)) if existing else value
