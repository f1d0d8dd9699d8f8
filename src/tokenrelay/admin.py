"""The admin listener: ``/healthz``, ``/readyz``, ``/metrics``, ``/tokens``. Status about tokens, never tokens.

Why a separate app on its own listener: proxied paths belong to the upstreams, so admin endpoints must not share
their namespace, and the admin listener can stay on loopback (or behind ``access.allow_clients``) while the proxy
listens wider. Every answer carries ``Cache-Control: no-store``: token status changes by the second and must not
be served from a cache.

Readiness (``/readyz``) answers "should traffic be sent here?". It fails when a profile's client is rejected by
the IdP itself (``permanent_failure``: ``invalid_client`` / ``unauthorized_client``; retrying will not help), and,
depending on the mode, while ``prefetch`` profiles lack a token:

- ``startup`` (default): every ``prefetch`` profile must have had a token once (remembered per profile name, so a
  reload that changes its cache key does not undo it); after that a transient IdP outage does not flap readiness
  (every replica would go unready at once, and clients would lose the proxy's precise ``503 token_unavailable``
  + ``Retry-After`` answers).
- ``strict``: every ``prefetch`` profile must hold a valid token *now*.
- ``lenient``: only permanent failures fail readiness.

The mode is the configuration key ``admin.readiness``. It is read from the current runtime's settings on every
probe, so a reload (SIGHUP, the file watch) that changes it takes effect at the next ``/readyz`` without a
restart; which profiles have "had a token once" is remembered across such a switch. Choose ``startup`` for a
gateway Deployment or a sidecar (no traffic before the credentials work, no fleet-wide flapping after), ``strict``
where a replica without a token should leave rotation at once because something else can serve instead
(health-based failover to another region or IdP), and ``lenient`` where the pod must come up and stay in its
Service without tokens (the application can work without the token-protected upstreams; a laptop or CI).
Embedders may pin a mode with ``ReadinessCheck(..., mode=...)``; an explicit mode wins over the setting.

During a graceful shutdown ``/readyz`` answers 503 ``{"status": "draining"}`` from the moment the drain starts,
whatever the tokens, so a Kubernetes Service stops sending new traffic while the requests in flight finish;
``/healthz`` stays 200 (the process is alive and must not be restarted mid-drain).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from tokenrelay.metrics import CONTENT_TYPE, Metrics
from tokenrelay.proxy.access import AccessPolicy
from tokenrelay.proxy.errors import ProxyError

if TYPE_CHECKING:
    from tokenrelay.runtime import RuntimeHolder
    from tokenrelay.tokens import KeyStatus, TokenCache

__all__ = [
    "ProfileReadiness",
    "Readiness",
    "ReadinessCheck",
    "ReadinessMode",
    "create_admin_app",
]

ReadinessMode = Literal["startup", "strict", "lenient"]
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_NO_STORE: Final = "no-store"


@dataclass(frozen=True, slots=True)
class ProfileReadiness:
    """One profile's verdict; ``reason`` is a stable code, ``last_error`` the cache's last failure code."""

    ready: bool
    reason: str
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class Readiness:
    """The whole verdict: ready only if the config is loaded and every profile is ready."""

    ready: bool
    generation: int | None
    profiles: Mapping[str, ProfileReadiness] = field(default_factory=dict)
    reason: str | None = None

    def to_dict(self) -> dict[str, object]:
        body: dict[str, object] = {
            "status": "ready" if self.ready else "not_ready",
            "generation": self.generation,
            "profiles": {
                name: {"ready": p.ready, "reason": p.reason, "last_error": p.last_error}
                for name, p in sorted(self.profiles.items())
            },
        }
        if self.reason is not None:
            body["reason"] = self.reason
        return body


class ReadinessCheck:
    """Computes :class:`Readiness` from the current runtime and the cache status (see the module docstring).

    ``mode`` pins the readiness mode; ``None`` (the default) reads ``admin.readiness`` from the current runtime's
    settings on every call, so a reload can change it.
    """

    def __init__(self, holder: RuntimeHolder, cache: TokenCache, mode: ReadinessMode | None = None) -> None:
        self._holder = holder
        self._cache = cache
        self._mode = mode
        #: Profiles that have had a token at least once (``startup`` mode).
        self._started: set[str] = set()

    def __call__(self) -> Readiness:
        runtime = self._holder.current
        # By the whole key, not the digest: two profiles with identical token inputs share a digest but are
        # separate cache entries (CacheKey equality includes the profile), each with its own token and errors.
        by_key = {status.key: status for status in self._cache.status()}
        mode = self._mode if self._mode is not None else runtime.settings.admin.readiness
        profiles = {
            name: self._profile(name, mode, runtime.settings.profiles[name].prefetch, by_key.get(binding.key))
            for name, binding in runtime.bindings.items()
            if name in runtime.settings.profiles
        }
        ready = all(p.ready for p in profiles.values())
        return Readiness(ready=ready, generation=runtime.generation, profiles=profiles)

    def _profile(self, name: str, mode: ReadinessMode, prefetch: bool, status: KeyStatus | None) -> ProfileReadiness:
        if status is None:
            valid, last_error = False, None
        else:
            if status.permanent_failure:
                return ProfileReadiness(False, "permanent_failure", status.last_error)
            valid, last_error = status.fingerprint is not None and (status.expires_in or 0.0) > 0, status.last_error
            if valid or status.fetches_ok > 0:
                self._started.add(name)  # by name: a reload that changes the key must not undo startup
        if valid:
            return ProfileReadiness(True, "token_valid", last_error)
        if not prefetch:
            return ProfileReadiness(True, "on_demand", last_error)
        started = name in self._started
        ready = mode == "lenient" or (mode == "startup" and started)
        return ProfileReadiness(ready, "token_unavailable" if started else "awaiting_token", last_error)


def create_admin_app(
    *,
    holder: RuntimeHolder,
    cache: TokenCache,
    metrics: Metrics,
    readiness: Callable[[], Readiness] | None = None,
    allow_clients: Sequence[_Network] = (),
    draining: Callable[[], bool] | None = None,
) -> web.Application:
    """The admin application; ``allow_clients`` (CIDRs), when given, restricts it to those peer addresses.

    ``draining`` says whether a graceful shutdown has started; while it is true ``/readyz`` answers 503.
    """
    check = readiness if readiness is not None else ReadinessCheck(holder, cache)
    middlewares = [_allow_only(tuple(allow_clients))] if allow_clients else []
    app = web.Application(middlewares=middlewares)
    app.on_response_prepare.append(_no_store)

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        if draining is not None and draining():
            return web.json_response({"status": "draining"}, status=503)
        verdict = check()
        return web.json_response(verdict.to_dict(), status=200 if verdict.ready else 503)

    async def metrics_text(_: web.Request) -> web.Response:
        return web.Response(body=metrics.render(cache).encode("utf-8"), headers={"Content-Type": CONTENT_TYPE})

    async def tokens(_: web.Request) -> web.Response:
        statuses = sorted(cache.status(), key=lambda s: (s.key.profile, s.key.digest))
        return web.json_response(
            {
                "generation": holder.current.generation,
                "tokens": [token_status(status) for status in statuses],
            }
        )

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_text)
    app.router.add_get("/tokens", tokens)
    return app


def token_status(status: KeyStatus) -> dict[str, object]:
    """One ``/tokens`` entry: identifies the key and the token (fingerprint) without ever containing either."""
    return {
        "profile": status.key.profile,
        "key": status.key.short_digest,
        "fingerprint": status.fingerprint,
        "expires_in": _seconds(status.expires_in),
        "age": _seconds(status.age),
        "refreshing": status.refreshing,
        "last_error": status.last_error,
        "permanent_failure": status.permanent_failure,
        "next_retry_in": _seconds(status.next_retry_in),
        "fetches_ok": status.fetches_ok,
        "fetches_failed": status.fetches_failed,
        "hits": status.hits,
        "misses": status.misses,
    }


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


async def _no_store(_: web.Request, response: web.StreamResponse) -> None:
    response.headers["Cache-Control"] = _NO_STORE


def _allow_only(networks: tuple[_Network, ...]) -> Middleware:
    """Refuse peers outside ``networks`` with 403, using the proxy's own address check (one implementation)."""
    policy = AccessPolicy(networks=networks, keys=(), key_header="")

    @web.middleware
    async def allow_only(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            policy.check(request.remote, request.headers)
        except ProxyError:
            return web.json_response(
                {"error": "forbidden", "message": "this client address may not use the admin API"}, status=403
            )
        return await handler(request)

    return allow_only
