"""The compiled configuration: one immutable :class:`Runtime` per config generation, swapped atomically.

``compile_runtime`` turns validated :class:`~tokenrelay.settings.Settings` into what the serving path needs: per
profile a grant-core ``ClientCredentials`` (all sharing one IdP session), a ``TokenBinding`` (its cache key, its
fetcher, its refresh policy), and the route table. A request reads ``holder.current`` once and keeps that
snapshot to the end, so a reload never changes the rules under a request in flight.

``RuntimeHolder.reload`` compiles the new settings *before* touching anything: an invalid config raises and the
old runtime keeps serving. A valid one is swapped in one assignment, the cache keeps only the tokens whose key
is unchanged (``cache.retain``), and profiles with ``prefetch`` get their first token in the background. A
rotated ``secret_file`` changes the credential digest, hence the key, hence the old token is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import aiohttp
import structlog

from tokenrelay.grant.client_credentials import ClientCredentials
from tokenrelay.grant.config import OAuth2Config, validate_config
from tokenrelay.grant.errors import ConfigError, FieldError
from tokenrelay.grant.urls import resolve_url
from tokenrelay.metrics import Metrics, instrument_fetcher
from tokenrelay.proxy.routing import RouteTable, TokenBinding
from tokenrelay.secrets import FileSignature, ResolvedCredentials, file_changed, resolve_profiles, sign_file
from tokenrelay.settings import ProfileSettings, Settings
from tokenrelay.tokens import TokenCache, cache_key, fetcher_for, request_shape
from tokenrelay.tokens.policy import policy_for_profile

__all__ = ["Runtime", "RuntimeHolder", "compile_runtime"]

_log: Final = structlog.get_logger("tokenrelay.config")


@dataclass(frozen=True, slots=True)
class Runtime:
    """One immutable snapshot of the compiled config; swapped atomically on reload."""

    settings: Settings
    routes: RouteTable
    bindings: Mapping[str, TokenBinding]
    clients: Mapping[str, ClientCredentials]
    generation: int
    #: Credential files read for this snapshot (secret, signing key, TLS client cert/key), checked for rotation.
    watched: tuple[FileSignature, ...] = ()


async def compile_runtime(
    settings: Settings,
    *,
    session: aiohttp.ClientSession,
    previous: Runtime | None,
    metrics: Metrics | None = None,
    environ: Mapping[str, str] | None = None,
) -> Runtime:
    """Compile ``settings``; raises :class:`ConfigError` listing every problem (nothing is swapped then).

    ``session`` is the IdP session (never the upstream one). A profile whose settings and key are unchanged
    since ``previous`` keeps its client and binding, so its discovery cache and identity carry over.
    """
    resolved = await asyncio.to_thread(resolve_profiles, settings.profiles, environ=environ)
    clients: dict[str, ClientCredentials] = {}
    bindings: dict[str, TokenBinding] = {}
    problems: list[FieldError] = []
    for name, profile in settings.profiles.items():
        try:
            clients[name], bindings[name] = _compile_profile(name, profile, resolved[name], session, previous, metrics)
        except ConfigError as exc:
            problems.extend(FieldError(_under(f"profiles.{name}", e.path), e.message) for e in exc.errors)
    if problems:
        raise ConfigError(problems)
    # Signed *before* the route table loads them: a file replaced in between then differs from its signature
    # at the next check and is loaded again, never missed.
    route_files = await asyncio.to_thread(_sign_route_tls_files, settings)
    routes = RouteTable.build(settings.routes, bindings)
    return Runtime(
        settings=settings,
        routes=routes,
        bindings=bindings,
        clients=clients,
        generation=previous.generation + 1 if previous is not None else 1,
        watched=(*(sig for creds in resolved.values() for sig in creds.watched), *route_files),
    )


def token_endpoint_identity(config: OAuth2Config) -> str:
    """The token endpoint as a cache-key input: the resolved URL, or the discovery source when discovered."""
    auth = config.auth
    if auth.uses_discovery:
        return f"discovery:{auth.discovery_url or auth.issuer}"
    if auth.token_host is None:  # excluded by OAuth2Config's own rules; kept for the type checker
        raise ConfigError([FieldError("auth.token_host", "is required (or configure auth.issuer)")])
    return resolve_url(auth.token_path, auth.token_host)


class RuntimeHolder:
    """Holds the current :class:`Runtime`; ``reload`` swaps it atomically or leaves it untouched."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        session: aiohttp.ClientSession,
        cache: TokenCache,
        metrics: Metrics | None = None,
    ) -> None:
        self._current = runtime
        self._session = session
        self._cache = cache
        self._metrics = metrics
        self._lock = asyncio.Lock()
        self._prefetches: set[asyncio.Task[object]] = set()

    @property
    def current(self) -> Runtime:
        """The snapshot new requests use. Read it once per request."""
        return self._current

    async def reload(self, settings: Settings) -> None:
        """Compile ``settings`` and swap it in; on a problem log every bad path, keep the old one, and raise."""
        async with self._lock:
            previous = self._current
            try:
                runtime = await compile_runtime(
                    settings, session=self._session, previous=previous, metrics=self._metrics
                )
            except ConfigError as exc:
                self.reload_failed(exc)
                raise
            self._current = runtime
            self._cache.retain([binding.key for binding in runtime.bindings.values()])
            self._count("ok")
            _log.info("config_reloaded", generation=runtime.generation, profiles=len(runtime.bindings))
            _warn_restart_only(previous.settings, settings)
            self.prefetch(runtime)

    def reload_failed(self, exc: ConfigError) -> None:
        """Record a rejected reload (also for a file that did not load): every bad path, in one log line."""
        self._count("error")
        _log.error(
            "config_reload_rejected",
            generation=self._current.generation,
            errors=[str(error) for error in exc.errors],
        )

    async def check_rotation(self) -> bool:
        """Recompile the current settings if a credential file changed; returns whether it swapped."""
        watched = self._current.watched
        changed = await asyncio.to_thread(_changed_files, watched) if watched else []
        if not changed:
            return False
        _log.info("credentials_rotated", files=[str(path) for path in changed])
        try:
            await self.reload(self._current.settings)
        except ConfigError:
            return False
        return True

    def prefetch(self, runtime: Runtime) -> None:
        """Ask for the first token of every ``prefetch`` profile in the background (failures are the cache's)."""
        for name, binding in runtime.bindings.items():
            if runtime.settings.profiles[name].prefetch and self._cache.peek(binding.key) is None:
                task: asyncio.Task[object] = asyncio.create_task(self._prefetch_one(binding))
                self._prefetches.add(task)
                task.add_done_callback(self._prefetches.discard)

    async def aclose(self) -> None:
        """Cancel background prefetches (at shutdown)."""
        tasks = list(self._prefetches)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _prefetch_one(self, binding: TokenBinding) -> object:
        try:
            return await self._cache.get(binding.key, binding.fetch, binding.policy)
        except Exception:
            return None

    def _count(self, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.config_reload(outcome)


def _sign_route_tls_files(settings: Settings) -> tuple[FileSignature, ...]:
    """Signatures of the routes' TLS files (CA bundle, client certificate and key), watched for rotation.

    A file that cannot be read is left to ``RouteTable.build``, which reports it with the route's field path.
    """
    signatures: dict[Path, FileSignature] = {}
    for route in settings.routes:
        for path in (route.tls.ca_file, route.tls.cert_file, route.tls.key_file):
            if path is not None and path not in signatures:
                with contextlib.suppress(OSError, ValueError):
                    signatures[path] = sign_file(path)[0]
    return tuple(signatures.values())


def _compile_profile(
    name: str,
    profile: ProfileSettings,
    creds: ResolvedCredentials,
    session: aiohttp.ClientSession,
    previous: Runtime | None,
    metrics: Metrics | None,
) -> tuple[ClientCredentials, TokenBinding]:
    config = validate_config(profile.grant_mapping(secret=creds.secret))
    params = profile.token_params()
    key = cache_key(
        name,
        token_endpoint=token_endpoint_identity(config),
        client_id=config.client.id,
        credential_digest=creds.digest,
        auth_method=config.options.auth_method,
        scope=profile.scope,
        audience=profile.audience,
        resource=profile.resource,
        params=profile.params,
        extra=request_shape(config),
    )
    if previous is not None and name in previous.bindings:
        old = previous.bindings[name]
        if old.key == key and previous.settings.profiles.get(name) == profile:
            return previous.clients[name], old
    client = ClientCredentials(config, session=session)
    fetch = fetcher_for(client, params)
    if metrics is not None:
        fetch = instrument_fetcher(fetch, name, metrics)
    return client, TokenBinding(key=key, fetch=fetch, policy=policy_for_profile(profile))


#: Sections read once at startup (listeners, the access policy, logging): a reload cannot apply them.
_RESTART_ONLY: Final = ("listen", "admin", "access", "log")
#: Keys inside those sections that a reload does apply (read from the current runtime on every use).
_RELOADABLE: Final[dict[str, set[str]]] = {"admin": {"readiness"}}


def _warn_restart_only(before: Settings, after: Settings) -> None:
    changed = [
        name
        for name in _RESTART_ONLY
        if getattr(before, name).model_dump(exclude=_RELOADABLE.get(name))
        != getattr(after, name).model_dump(exclude=_RELOADABLE.get(name))
    ]
    if changed:
        _log.warning("config_change_needs_restart", sections=changed)


def _changed_files(watched: tuple[FileSignature, ...]) -> list[Path]:
    return [signature.path for signature in watched if file_changed(signature)]


def _under(prefix: str, path: str) -> str:
    if not path:
        return prefix
    return path if path.startswith("profiles.") else f"{prefix}.{path}"
