"""Process metrics and their Prometheus text exposition (format 0.0.4), without a client library.

Why hand-rolled: the proxy needs only a small part of a client library (labelled counters, fixed-bucket histograms, a
few gauges read at scrape time) and must stay cheap on the request path. A recording is one dict lookup and one
float addition keyed by a tuple of label values; there are no locks because everything runs on one event loop.

Who feeds what (see ``docs/operations.md`` for the full list with types and labels):

- the proxy handler calls the :class:`ProxyObserver` methods once per request;
- token fetches are counted by wrapping each profile's fetcher with :func:`instrument_fetcher` when the runtime is
  compiled, so the cache stays free of metrics code and every outcome (ok, RFC 6749 §5.2 error code, transport)
  is seen exactly where it happens;
- token expiry gauges are read from ``TokenCache.status()`` at render time, so they can never go stale;
- IdP timings come from an aiohttp ``TraceConfig`` on the IdP session, connection-pool waits, opens and reuses
  from the upstream session's connector (:mod:`tokenrelay.tracing`).

Label cardinality is bounded by construction: routes and profiles come from the configuration, methods are
normalised to a known set, statuses are integers, and fetch outcomes are a closed vocabulary.
"""

from __future__ import annotations

import asyncio
import math
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterable, Sequence
from importlib import metadata
from typing import TYPE_CHECKING, Final, Protocol, TypeVar, runtime_checkable

from tokenrelay.grant.errors import TokenRequestError, TokenResponseError, TransportError

if TYPE_CHECKING:
    from tokenrelay.tokens import KeyStatus

__all__ = [
    "CONTENT_TYPE",
    "Counter",
    "Histogram",
    "Metrics",
    "ProxyObserver",
    "StatusSource",
    "fetch_outcome",
    "instrument_fetcher",
]

#: The ``Content-Type`` of :meth:`Metrics.render`'s output.
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

#: Latency buckets (seconds) for whole requests and upstream answers: a sidecar adds milliseconds, an upstream may
#: take a minute (the default total timeout).
LATENCY_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: Buckets for short network steps (connecting, waiting for a pooled connection, IdP round trips).
NETWORK_BUCKETS: Final = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"})
#: RFC 6749 §5.2 codes, plus RFC 8707's ``invalid_target`` and the two codes servers commonly send anyway.
_ERROR_CODES: Final = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "invalid_target",
        "server_error",
        "temporarily_unavailable",
    }
)

_T = TypeVar("_T")
Labels = tuple[str, ...]


class ProxyObserver(Protocol):
    """What the proxy reports per request. Implementations must be cheap: this runs on every request."""

    def request_done(
        self,
        route: str,
        method: str,
        status: int,
        upstream_status: int | None,
        duration: float,
        upstream_duration: float | None,
        replayed: bool,
    ) -> None: ...

    def replay_skipped(self, route: str, reason: str) -> None: ...

    def token_lookup(self, profile: str, hit: bool) -> None: ...


@runtime_checkable
class StatusSource(Protocol):
    """Anything with ``status()``: ``TokenCache`` (checked structurally, so metrics never imports the cache)."""

    def status(self) -> Sequence[KeyStatus]: ...


class Counter:
    """A monotonically increasing value per label tuple."""

    __slots__ = ("_values", "help", "labelnames", "name")

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help
        self.labelnames = tuple(labelnames)
        self._values: dict[Labels, float] = {}

    def inc(self, labels: Labels = (), amount: float = 1.0) -> None:
        """Add ``amount`` to the series ``labels`` (values in ``labelnames`` order)."""
        self._values[labels] = self._values.get(labels, 0.0) + amount

    def value(self, labels: Labels = ()) -> float:
        """The current value of one series (0 if it was never incremented)."""
        return self._values.get(labels, 0.0)

    def render(self, out: list[str]) -> None:
        _header(out, self.name, "counter", self.help)
        for labels, value in sorted(self._values.items()):
            out.append(f"{self.name}{_labels(self.labelnames, labels)} {_number(value)}")


class Histogram:
    """Observations counted into fixed buckets; rendered cumulatively with ``_sum`` and ``_count``."""

    __slots__ = ("_series", "buckets", "help", "labelnames", "name")

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = (), *, buckets: Sequence[float]) -> None:
        if list(buckets) != sorted(set(buckets)) or not buckets:
            raise ValueError("buckets must be non-empty, strictly increasing")
        self.name = name
        self.help = help
        self.labelnames = tuple(labelnames)
        self.buckets = tuple(float(b) for b in buckets)
        #: per series: [count per bucket (non-cumulative; the last one is +Inf)..., sum]
        self._series: dict[Labels, list[float]] = {}

    def observe(self, labels: Labels, value: float) -> None:
        """Record one observation (seconds) for the series ``labels``."""
        series = self._series.get(labels)
        if series is None:
            series = self._series[labels] = [0.0] * (len(self.buckets) + 2)
        series[bisect_left(self.buckets, value)] += 1
        series[-1] += value

    def count(self, labels: Labels = ()) -> int:
        """How many observations one series has."""
        series = self._series.get(labels)
        return 0 if series is None else int(sum(series[:-1]))

    def render(self, out: list[str]) -> None:
        _header(out, self.name, "histogram", self.help)
        bounds = [*(_number(b, always_float=True) for b in self.buckets), "+Inf"]
        for labels, series in sorted(self._series.items()):
            cumulative = 0.0
            for bound, n in zip(bounds, series[:-1], strict=True):
                cumulative += n
                le = _labels((*self.labelnames, "le"), (*labels, bound))
                out.append(f"{self.name}_bucket{le} {_number(cumulative)}")
            plain = _labels(self.labelnames, labels)
            out.append(f"{self.name}_sum{plain} {_number(series[-1])}")
            out.append(f"{self.name}_count{plain} {_number(cumulative)}")


class Metrics:
    """All of tokenrelay's metrics; implements :class:`ProxyObserver` and renders the exposition text."""

    def __init__(self, version: str | None = None) -> None:
        self.version = version if version is not None else _package_version()
        route, profile, lat, net = ("route",), ("profile",), LATENCY_BUCKETS, NETWORK_BUCKETS
        self.requests = Counter("tokenrelay_requests_total", "Requests answered.", (*route, "method", "status"))
        self.request_duration = Histogram("tokenrelay_request_duration_seconds", "Time to answer.", route, buckets=lat)
        self.upstream_duration = Histogram(
            "tokenrelay_upstream_duration_seconds", "Time to the upstream's headers (last attempt).", route, buckets=lat
        )
        self.upstream_responses = Counter(
            "tokenrelay_upstream_responses_total", "Upstream answers (last attempt).", (*route, "status")
        )
        self.replays = Counter("tokenrelay_replays_total", "Requests replayed with a fresh token.", route)
        self.replays_skipped = Counter("tokenrelay_replays_skipped_total", "Replays not attempted.", (*route, "reason"))
        self.token_fetches = Counter("tokenrelay_token_fetches_total", "Token requests.", (*profile, "outcome"))
        self.token_fetch_duration = Histogram(
            "tokenrelay_token_fetch_duration_seconds", "Token request duration, any outcome.", profile, buckets=net
        )
        self.token_lookups = Counter(
            "tokenrelay_token_cache_lookups_total", "Token lookups by the proxy.", (*profile, "result")
        )
        self.config_reloads = Counter("tokenrelay_config_reloads_total", "Config reloads.", ("outcome",))
        self.idp_duration = Histogram(
            "tokenrelay_idp_request_duration_seconds", "Time to the IdP's headers.", ("host",), buckets=net
        )
        self.idp_responses = Counter("tokenrelay_idp_responses_total", "IdP answers.", ("host", "status"))
        self.upstream_connections = Counter("tokenrelay_upstream_connections_total", "Connections used.", ("kind",))
        self.upstream_connect_duration = Histogram(
            "tokenrelay_upstream_connect_duration_seconds", "Time to open a connection (DNS+TCP+TLS).", buckets=net
        )
        self.upstream_pool_wait = Histogram(
            "tokenrelay_upstream_pool_wait_seconds", "Time queued for a pooled connection.", buckets=net
        )
        self._families: tuple[Counter | Histogram, ...] = tuple(
            v for v in vars(self).values() if isinstance(v, Counter | Histogram)
        )

    # -- ProxyObserver -------------------------------------------------------------------------------------------

    def request_done(
        self,
        route: str,
        method: str,
        status: int,
        upstream_status: int | None,
        duration: float,
        upstream_duration: float | None,
        replayed: bool,
    ) -> None:
        """Record one answered request; ``upstream_*`` are ``None`` when no upstream answered."""
        method = method if method in _METHODS else "OTHER"
        route_labels = (route,)
        self.requests.inc((route, method, str(status)))
        self.request_duration.observe(route_labels, duration)
        if upstream_status is not None:
            self.upstream_responses.inc((route, str(upstream_status)))
        if upstream_duration is not None:
            self.upstream_duration.observe(route_labels, upstream_duration)
        if replayed:
            self.replays.inc(route_labels)

    def replay_skipped(self, route: str, reason: str) -> None:
        """A 401 that was not replayed; ``reason`` is a code constant of the proxy (e.g. ``body_too_large``)."""
        self.replays_skipped.inc((route, reason))

    def token_lookup(self, profile: str, hit: bool) -> None:
        """The proxy asked the cache for a token: ``hit`` when a fresh one was there without waiting."""
        self.token_lookups.inc((profile, "hit" if hit else "miss"))

    # -- other feeds ---------------------------------------------------------------------------------------------

    def token_fetch(self, profile: str, outcome: str, duration: float) -> None:
        """One token request finished; ``outcome`` comes from :func:`fetch_outcome`."""
        self.token_fetches.inc((profile, outcome))
        self.token_fetch_duration.observe((profile,), duration)

    def config_reload(self, outcome: str) -> None:
        """A reload attempt finished: ``ok`` or ``error`` (the old config kept serving)."""
        self.config_reloads.inc((outcome,))

    def idp_request(self, host: str, status: int | None, duration: float) -> None:
        """An HTTP exchange with the IdP (token, discovery or revocation endpoint) got its headers or failed."""
        self.idp_responses.inc((host, "error" if status is None else str(status)))
        self.idp_duration.observe((host,), duration)

    def upstream_connection(self, *, reused: bool, connect_duration: float | None = None) -> None:
        """The upstream session took a connection from its pool (``reused``) or opened a new one."""
        self.upstream_connections.inc(("reused" if reused else "new",))
        if connect_duration is not None:
            self.upstream_connect_duration.observe((), connect_duration)

    def upstream_pool_waited(self, duration: float) -> None:
        """A request waited ``duration`` seconds for a pooled connection."""
        self.upstream_pool_wait.observe((), duration)

    # -- exposition ----------------------------------------------------------------------------------------------

    def render(self, cache: StatusSource | Iterable[KeyStatus] | None = None) -> str:
        """The Prometheus text exposition; token gauges come from ``cache`` (a ``TokenCache`` or its status)."""
        out: list[str] = []
        _header(out, "tokenrelay_build_info", "gauge", "Always 1; the version is a label.")
        out.append(f"tokenrelay_build_info{_labels(('version',), (self.version,))} 1")
        for family in self._families:
            family.render(out)
        statuses = cache.status() if isinstance(cache, StatusSource) else (cache or ())
        _render_token_gauges(out, statuses)
        out.append("")
        return "\n".join(out)


def fetch_outcome(error: BaseException | None) -> str:
    """The bounded ``outcome`` label of a token fetch: ``ok``, an RFC 6749 §5.2 code, or a failure class."""
    if error is None:
        return "ok"
    if isinstance(error, TokenRequestError):
        if error.error in _ERROR_CODES:
            return error.error
        return f"http_{error.status // 100}xx" if error.status else "http_error"
    if isinstance(error, TokenResponseError):
        return "invalid_response"
    if isinstance(error, TransportError):
        return "timeout" if error.timeout else "transport"
    if isinstance(error, TimeoutError):
        return "timeout"
    return "internal_error"


def instrument_fetcher(
    fetch: Callable[[], Awaitable[_T]],
    profile: str,
    metrics: Metrics,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> Callable[[], Awaitable[_T]]:
    """Wrap a token ``Fetcher`` so every call is counted by outcome and timed; results and errors pass unchanged.

    A fetch cancelled from outside (the cache's ``fetch_timeout``, a reload, shutdown) counts as ``cancelled``: a
    rising rate of those means the IdP answers slower than the cache is willing to wait.
    """

    async def instrumented() -> _T:
        start = clock()
        try:
            result = await fetch()
        except asyncio.CancelledError:
            metrics.token_fetch(profile, "cancelled", clock() - start)
            raise
        except Exception as exc:
            metrics.token_fetch(profile, fetch_outcome(exc), clock() - start)
            raise
        metrics.token_fetch(profile, "ok", clock() - start)
        return result

    return instrumented


def _render_token_gauges(out: list[str], statuses: Iterable[KeyStatus]) -> None:
    expiry: list[str] = []
    permanent: list[str] = []
    for status in sorted(statuses, key=lambda s: (s.key.profile, s.key.digest)):
        labels = _labels(("profile", "key"), (status.key.profile, status.key.short_digest))
        if status.fingerprint is not None and status.expires_in is not None:
            expiry.append(f"tokenrelay_token_expiry_seconds{labels} {_number(status.expires_in)}")
        permanent.append(f"tokenrelay_token_permanent_failure{labels} {int(status.permanent_failure)}")
    _header(out, "tokenrelay_token_expiry_seconds", "gauge", "Seconds until the cached token expires.")
    out.extend(expiry)
    _header(
        out,
        "tokenrelay_token_permanent_failure",
        "gauge",
        "1 while the IdP rejects the client itself (invalid_client/unauthorized_client).",
    )
    out.extend(permanent)


def _header(out: list[str], name: str, kind: str, help: str) -> None:
    out.append(f"# HELP {name} {help.replace(chr(92), chr(92) * 2).replace(chr(10), chr(92) + 'n')}")
    out.append(f"# TYPE {name} {kind}")


def _labels(names: Sequence[str], values: Sequence[str]) -> str:
    if not names:
        return ""
    pairs = ",".join(f'{name}="{_escape(value)}"' for name, value in zip(names, values, strict=True))
    return "{" + pairs + "}"


def _escape(value: str) -> str:
    """Label value escaping of the text format: backslash, double quote and line feed."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def _number(value: float, *, always_float: bool = False) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if value.is_integer() and not always_float and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def _package_version() -> str:
    try:
        return metadata.version("tokenrelay")
    except metadata.PackageNotFoundError:
        return "unknown"
