"""Routes: which upstream, which token, for an inbound request.

A :class:`RouteTable` is compiled once per configuration (``RouteTable.build``) so that the per-request work is a
dict lookup plus a few string comparisons: host patterns are lower-cased, header formats split around ``{token}``,
upstream URLs parsed, TLS contexts and client timeouts built, all ahead of time.

Matching rules (``docs/proxy.md`` has the long form):

* Host: exact (``api.internal``) or wildcard (``*.internal`` matches ``a.internal`` and ``a.b.internal``, not
  ``internal``), case-insensitive, a trailing dot ignored. The port is ignored unless the pattern names one.
* Path: a prefix matches on a segment boundary (``/api`` matches ``/api``, ``/api/x``, not ``/apix``).
* Precedence: exact host, then wildcard host (longest suffix first), then host-less routes; within each, the
  longest path prefix; ties go to the route listed first.
* Forward-proxy (absolute-form) requests only consider routes that name a host: a host no route names is
  refused, so the proxy is never an open proxy.
* Traversal: a segment that is, or after percent-decoding contains, a ``.``/``..`` step is refused, including
  ``%2e%2e%2fadmin`` (an upstream that decodes ``%2F`` before normalising), ``..;`` (a servlet container
  that strips ``;`` path parameters) and overlong UTF-8 forms such as ``%c0%ae`` (lenient decoders read them as
  ``.``). The forwarded path itself stays byte-for-byte.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, NamedTuple
from urllib.parse import unquote

from aiohttp import ClientTimeout
from yarl import URL

from tokenrelay.grant.errors import ConfigError, FieldError
from tokenrelay.proxy.errors import ProxyError
from tokenrelay.settings import RouteSettings, RouteTlsSettings
from tokenrelay.tokens import CacheKey, Fetcher, RefreshPolicy

__all__ = ["Route", "RouteMatch", "RouteTable", "TokenBinding", "split_host"]

_DOT_NAMES: Final = frozenset({".", ".."})
_SEPARATORS: Final = re.compile(r"[/\\]")
_DOT_PROBLEM: Final = (
    "the path contains a '.' or '..' segment (also when percent-encoded, hidden behind an encoded '/' or '\\', "
    "or followed by ';' parameters)"
)
#: How many rounds of percent-decoding a segment may need to become stable (``%252e`` needs two).
_MAX_DECODES: Final = 8


@dataclass(frozen=True, slots=True)
class TokenBinding:
    """How to obtain the token of one profile: its cache key, the fetcher, and the refresh policy."""

    key: CacheKey
    fetch: Fetcher
    policy: RefreshPolicy


@dataclass(frozen=True, slots=True)
class Route:
    """One compiled route: everything the forwarding path needs, precomputed."""

    name: str
    index: int
    host: str | None  # lower-case host, or the suffix (".internal") of a wildcard
    wildcard: bool
    port: int | None
    prefix: str | None
    strip_prefix: bool
    upstream_origin: str  # "https://api.example.com:8443", no trailing slash
    upstream_path: str  # the upstream's raw path as configured ("/" when empty)
    upstream_host: str  # the Host header value for the upstream
    profile: str | None
    binding: TokenBinding | None
    header_name: str
    header_parts: tuple[str, ...]  # the header format split around {token}
    ssl: ssl.SSLContext | bool
    timeout: ClientTimeout
    preserve_host: bool
    forwarded_headers: bool
    retry_on_401: bool
    retry_statuses: frozenset[int]
    max_replay_body: int
    max_websocket_message: int

    def header_value(self, token: str) -> str:
        """The token header's value: the configured format with ``{token}`` filled in."""
        parts = self.header_parts
        if len(parts) == 2:
            return f"{parts[0]}{token}{parts[1]}"
        return token.join(parts)

    def upstream_url(self, path: str, query: str | None) -> URL:
        """The upstream URL for a raw inbound path and raw query, byte-for-byte (no re-encoding)."""
        rest = path
        if self.strip_prefix and self.prefix is not None:
            rest = path[len(self.prefix) :]
        base = self.upstream_path
        if not rest:
            joined = base
        elif rest.startswith("/"):
            joined = base.rstrip("/") + rest
        else:
            joined = base.rstrip("/") + "/" + rest
        target = joined if query is None else f"{joined}?{query}"
        return URL(self.upstream_origin + target, encoded=True)


class RouteMatch(NamedTuple):
    """A matched route and the upstream URL the request goes to (a ``NamedTuple``: one is built per request)."""

    route: Route
    url: URL


def split_host(value: str) -> tuple[str, int | None]:
    """``"Api.Internal:8080"`` -> ``("api.internal", 8080)``; IPv6 literals keep their brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        host, rest = value[: end + 1], value[end + 1 :]
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, sep, port = value.rpartition(":")
        if not sep or not port.isdigit():
            host, port = value, ""
    return host.rstrip("."), (int(port) if port.isdigit() else None)


def _prefix_matches(prefix: str | None, path: str) -> bool:
    if prefix is None or prefix == "/":
        return True
    if not path.startswith(prefix):
        return False
    return len(path) == len(prefix) or prefix.endswith("/") or path[len(prefix)] == "/"


def _overlong_forms(char: str) -> tuple[str, ...]:
    """The 2-, 3- and 4-byte overlong UTF-8 encodings of the ASCII ``char``, as latin-1 strings (a byte a char).

    RFC 3629 allows only the shortest form, and strict decoders reject the rest, but lenient ones (old IIS, some
    servlet and C decoders) read ``C0 AE`` as ``.`` and ``C0 AF`` as ``/``: the classic traversal of
    CVE-2000-0884. Computed from the bit layout rather than listed by hand: the lead byte has ``length`` high
    bits set, and the code point's bits fill the 6-bit payloads from the right, leaving the leading ones zero.
    """
    code = ord(char)
    forms: list[str] = []
    for length in (2, 3, 4):
        lead = ((0xFF << (8 - length)) & 0xFF) | (code >> (6 * (length - 1)))
        tail = [0x80 | ((code >> (6 * shift)) & 0x3F) for shift in reversed(range(length - 1))]
        forms.append(bytes([lead, *tail]).decode("latin-1"))
    return tuple(forms)


#: Each overlong form of ``.``, ``/`` and ``\`` -> that character. No valid UTF-8 contains any of them (a lead
#: ``C0``/``C1`` never occurs, ``E0`` needs ``A0``-``BF`` next, ``F0`` needs ``90``-``BF``), so é or … never match.
_OVERLONG: Final = {form: char for char in "./\\" for form in _overlong_forms(char)}
_OVERLONG_FORMS: Final = re.compile("|".join(map(re.escape, _OVERLONG)))


def _undo_overlong(decoded: str) -> str:
    """``decoded`` (a latin-1 decoded segment) with overlong ``.``, ``/``, ``\\`` read as a lenient decoder would."""
    if decoded.isascii():  # the common case; O(1) on a str
        return decoded
    return _OVERLONG_FORMS.sub(lambda found: _OVERLONG[found.group()], decoded)


def _check_path(path: str) -> None:
    """Refuse any segment that could climb out of the upstream's base path (after ``strip_prefix``, or upstream).

    Each raw segment is percent-decoded until it is stable (``%252e`` -> ``%2e`` -> ``.``), then split at ``/``
    and ``\\`` (an upstream may decode ``%2F`` before normalising) and each piece cut at its first ``;`` (servlet
    containers drop ``;`` path parameters, so ``..;`` is ``..`` there): a piece that is ``.`` or ``..`` is refused.
    Overlong UTF-8 forms of ``.``, ``/`` and ``\\`` (``%c0%ae``, ``%c0%af``, ``%c1%9c`` ...) count as those
    characters, because lenient upstream decoders read them so (:func:`_undo_overlong`).
    Only the check decodes; the forwarded path stays byte-for-byte, so ``group%2Fproject`` passes untouched.
    """
    if "." not in path and "%" not in path and path.isascii():  # the common case: nothing to decode or climb with
        return
    for segment in path.split("/"):
        if "%" in segment or "\\" in segment or not segment.isascii():
            problem = _segment_problem(segment)
        elif "." in segment and segment.partition(";")[0] in _DOT_NAMES:  # nothing to decode or split
            problem = _DOT_PROBLEM
        else:
            continue
        if problem is not None:
            raise ProxyError("bad_request", problem)


def _segment_problem(segment: str) -> str | None:
    """Why ``segment`` (one raw path segment) is refused, or ``None`` when it is harmless.

    Raw bytes above 0x7F only reach here from aiohttp's pure-Python parser (the C parser refuses them), as UTF-8
    text with undecodable bytes surrogate-escaped; they are turned back into one latin-1 character per byte, as
    percent-decoding makes them, so ``\xc0\xae`` sent raw is seen like ``%c0%ae``.
    """
    decoded = segment if segment.isascii() else segment.encode("utf-8", "surrogateescape").decode("latin-1")
    for _ in range(_MAX_DECODES + 1):  # one more round than allowed, to see whether the last one was stable
        # latin-1 maps every decoded byte to one character, so the next round sees exactly the bytes decoded
        step = unquote(decoded, encoding="latin-1")
        if step == decoded:
            break
        decoded = step
    else:
        return f"a path segment is percent-encoded more than {_MAX_DECODES} times over"
    for piece in _SEPARATORS.split(_undo_overlong(decoded)):
        if piece.partition(";")[0] in _DOT_NAMES:
            return _DOT_PROBLEM
    return None


@dataclass(frozen=True, slots=True)
class RouteTable:
    """All routes of one configuration, indexed for matching. Build it with :meth:`build`."""

    routes: tuple[Route, ...]
    _exact: Mapping[str, tuple[Route, ...]] = field(default_factory=dict)  # by host, longest prefix first
    _wildcard: tuple[Route, ...] = ()  # longest suffix first, then longest prefix
    _hostless: tuple[Route, ...] = ()  # longest prefix first

    @classmethod
    def build(cls, routes: Sequence[RouteSettings], bindings: Mapping[str, TokenBinding]) -> RouteTable:
        """Compile ``routes``; ``bindings`` maps profile names to token bindings. Raises ``ConfigError``."""
        compiled = tuple(_compile(index, route, bindings) for index, route in enumerate(routes))
        by_prefix = sorted(compiled, key=lambda r: (-len(r.prefix or ""), r.index))
        exact: dict[str, list[Route]] = {}
        for route in by_prefix:
            if route.host is not None and not route.wildcard:
                exact.setdefault(route.host, []).append(route)
        wildcard = [r for r in by_prefix if r.wildcard]
        wildcard.sort(key=lambda r: -len(r.host or ""))  # stable: prefix order kept within a suffix
        return cls(
            routes=compiled,
            _exact={host: tuple(rs) for host, rs in exact.items()},
            _wildcard=tuple(wildcard),
            _hostless=tuple(r for r in by_prefix if r.host is None),
        )

    def match(self, host: str | None, path: str, *, forward_proxy: bool = False) -> RouteMatch | None:
        """The route for ``host`` (a Host value, port allowed) and ``path`` (raw path, query allowed).

        Raises ``ProxyError("host_not_allowed")`` for a forward-proxy request to a host no route names, and
        ``ProxyError("bad_request")`` for dot-segments (also encoded or with ``;`` parameters).
        """
        raw_path, sep, query = path.partition("?")
        _check_path(raw_path)
        # a table of path-only routes never looks at the host of an origin-form request: no need to parse it
        name, port = split_host(host) if host and (forward_proxy or self._exact or self._wildcard) else ("", None)
        route = self._find(name, port, raw_path, forward_proxy=forward_proxy)
        if route is None:
            return None
        return RouteMatch(route, route.upstream_url(raw_path, query if sep else None))

    def names_host(self, host: str) -> bool:
        """Whether any route names ``host`` (used to refuse forward-proxy requests to other hosts)."""
        name, port = split_host(host)
        return any(_host_matches(r, name, port) for r in (*self._exact.get(name, ()), *self._wildcard))

    def _find(self, name: str, port: int | None, path: str, *, forward_proxy: bool) -> Route | None:
        for route in self._exact.get(name, ()):
            if (route.port is None or route.port == port) and _prefix_matches(route.prefix, path):
                return route
        for route in self._wildcard:
            if _host_matches(route, name, port) and _prefix_matches(route.prefix, path):
                return route
        if forward_proxy:
            if not self.names_host(name if port is None else f"{name}:{port}"):
                raise ProxyError("host_not_allowed", f"no route names the host {name!r}")
            return None
        for route in self._hostless:
            if _prefix_matches(route.prefix, path):
                return route
        return None


def _host_matches(route: Route, name: str, port: int | None) -> bool:
    if route.port is not None and route.port != port:
        return False
    if route.wildcard:
        return name.endswith(route.host or "") and len(name) > len(route.host or "")
    return name == route.host


def _compile(index: int, route: RouteSettings, bindings: Mapping[str, TokenBinding]) -> Route:
    binding: TokenBinding | None = None
    if route.profile is not None:
        binding = bindings.get(route.profile)
        if binding is None:
            raise ConfigError([FieldError(f"routes.{index}.profile", f"no token binding for {route.profile!r}")])
    host, wildcard, port = _compile_host(route.match.host)
    upstream = URL(str(route.upstream), encoded=True)
    timeouts = route.timeouts
    return Route(
        name=route.name,
        index=index,
        host=host,
        wildcard=wildcard,
        port=port,
        prefix=route.match.path_prefix,
        strip_prefix=route.strip_prefix,
        upstream_origin=str(upstream.origin()),
        upstream_path=upstream.raw_path or "/",
        upstream_host=upstream.host_port_subcomponent or "",
        profile=route.profile,
        binding=binding,
        header_name=route.header.name,
        header_parts=tuple(route.header.format.split("{token}")),
        ssl=_ssl_context(route.tls, index) if upstream.scheme == "https" else True,
        timeout=ClientTimeout(total=timeouts.total, sock_connect=timeouts.connect, sock_read=timeouts.read),
        preserve_host=route.preserve_host,
        forwarded_headers=route.forwarded_headers,
        retry_on_401=route.retry_on_401,
        retry_statuses=frozenset(route.retry_statuses),
        max_replay_body=route.max_replay_body,
        max_websocket_message=route.max_websocket_message,
    )


def _compile_host(pattern: str | None) -> tuple[str | None, bool, int | None]:
    if pattern is None:
        return None, False, None
    host, port = split_host(pattern)
    if host.startswith("*."):
        return host[1:], True, port
    return host, False, port


def _ssl_context(tls: RouteTlsSettings, index: int) -> ssl.SSLContext | bool:
    """One context per route, built at compile time; ``True`` (aiohttp's shared default) when nothing is custom."""
    if tls.verify and tls.ca_file is None and tls.cert_file is None:
        return True
    try:
        context = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
        if tls.cert_file is not None:
            context.load_cert_chain(str(tls.cert_file), str(tls.key_file) if tls.key_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError([FieldError(f"routes.{index}.tls", f"cannot load TLS files: {exc}")]) from exc
    if not tls.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
