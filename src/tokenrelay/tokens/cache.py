"""The token cache: single-flight fetches, refresh-ahead, shared backoff, compare-and-invalidate.

One :class:`TokenCache` serves every route of the proxy from one event loop. Per cache key it keeps at most
one token and at most one fetch task:

* **Fresh reads take no lock**: a dict lookup and one comparison with ``refresh_at`` (:meth:`peek`, and the
  first step of :meth:`get`). Nothing is logged or allocated on that path.
* **Single-flight**: a miss starts one task per key; every concurrent caller awaits it through
  ``asyncio.shield``, so a caller cancelled by its client never cancels the fetch for the others.
* **Refresh ahead**: inside the refresh window a request gets the current token at once and starts (at most)
  one background refresh. No request ever waits for a refresh while a valid token exists.
* **Failures** never touch a valid token; they set a per-key backoff (shared by every caller) during which
  no fetch is started and, without a valid token, :meth:`get` raises :class:`TokenUnavailable` at once. A
  token is never returned past its expiry.
* **compare-and-invalidate**: :meth:`invalidate` drops a token only if it is still the one a request used,
  so a burst of 401s for one token causes one new fetch, not one per 401.

All scheduling uses the injectable monotonic ``clock`` (a wall-clock jump never causes a refresh storm);
``wall_clock`` is used only for ``wall_expires_at``, JWT ``exp`` and the shared store. The one real-time bound
is ``policy.fetch_timeout``, enforced by the event loop around each fetch.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

import structlog

from tokenrelay.tokens.keys import CacheKey
from tokenrelay.tokens.model import CachedToken, Fetcher, KeyStatus, TokenUnavailable
from tokenrelay.tokens.policy import Failure, RefreshPolicy, backoff_delay, classify
from tokenrelay.tokens.schedule import Scheduler
from tokenrelay.tokens.shared import SharedTokens
from tokenrelay.tokens.store import MemoryTokenStore, TokenStore

__all__ = ["FetchObserver", "TokenCache"]

_log = structlog.get_logger("tokenrelay.tokens")

#: Called after every fetch from the token endpoint with the key, ``"ok"`` or the failure code, and seconds.
FetchObserver = Callable[[CacheKey, str, float], None]


@dataclass(frozen=True, slots=True)
class _Failed:
    """What a failed fetch task hands its waiters: each builds its own exception from it."""

    failure: Failure
    retry_at: float


_Outcome = CachedToken | _Failed


class _Entry:
    """The mutable state of one key. Only the event loop's thread touches it, so it needs no lock."""

    __slots__ = (
        "failure",
        "failures",
        "fetches_failed",
        "fetches_ok",
        "hits",
        "misses",
        "retired",
        "retry_at",
        "task",
        "token",
    )

    def __init__(self) -> None:
        self.token: CachedToken | None = None
        self.task: asyncio.Task[_Outcome] | None = None
        self.failures = 0
        self.failure: Failure | None = None
        self.retry_at = -math.inf
        self.retired: str | None = None
        self.fetches_ok = 0
        self.fetches_failed = 0
        self.hits = 0
        self.misses = 0


class TokenCache:
    """Tokens by :class:`CacheKey`, fetched on demand through the caller's :data:`Fetcher`."""

    def __init__(
        self,
        store: TokenStore | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
        on_fetch: FetchObserver | None = None,
    ) -> None:
        self._entries: dict[CacheKey, _Entry] = {}
        self._tasks: set[asyncio.Task[_Outcome]] = set()
        self._clock = clock
        self._rand = rand
        self._scheduler = Scheduler(clock=clock, wall_clock=wall_clock, rand=rand)
        self._shared = SharedTokens(
            store if store is not None else MemoryTokenStore(wall_clock=wall_clock), self._scheduler
        )
        self._on_fetch = on_fetch
        self._closed = False

    # -- the request path ------------------------------------------------------------------------------------

    def peek(self, key: CacheKey) -> CachedToken | None:
        """The cached token when it is fresh (before its refresh point), else ``None``. Sync, lock-free."""
        entry = self._entries.get(key)
        if entry is not None:
            token = entry.token
            if token is not None and self._clock() < token.refresh_at:
                entry.hits += 1
                return token
        return None

    async def get(self, key: CacheKey, fetch: Fetcher, policy: RefreshPolicy) -> CachedToken:
        """A valid token for ``key``; raises :class:`TokenUnavailable` when none can be had now."""
        token = self.peek(key)
        if token is not None:
            return token
        return await self._get_slow(key, fetch, policy)

    async def _get_slow(self, key: CacheKey, fetch: Fetcher, policy: RefreshPolicy) -> CachedToken:
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry()
        now = self._clock()
        token = entry.token
        if token is not None:
            if now < token.expires_at:
                entry.hits += 1
                if entry.task is None and now >= entry.retry_at and not self._closed:
                    self._start(key, entry, fetch, policy, refresh=True)
                return token
            entry.token = None  # expired: never handed out (nor adopted from the store) again
            entry.retired = token.fingerprint
        entry.misses += 1
        task = entry.task
        if task is None:
            if now < entry.retry_at:
                raise self._unavailable(key, entry.failure, entry.retry_at)
            task = self._start(key, entry, fetch, policy, refresh=False)
        return await self._join(key, task)

    def _start(
        self, key: CacheKey, entry: _Entry, fetch: Fetcher, policy: RefreshPolicy, *, refresh: bool
    ) -> asyncio.Task[_Outcome]:
        if self._closed:
            raise TokenUnavailable(key, retry_after=policy.backoff_initial, reason="closed")
        task = asyncio.get_running_loop().create_task(
            self._run_fetch(key, entry, fetch, policy, refresh), name=f"tokenrelay-fetch-{key}"
        )
        entry.task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _join(self, key: CacheKey, task: asyncio.Task[_Outcome]) -> CachedToken:
        """Wait for the key's fetch without owning it: our cancellation must not cancel it for the others."""
        try:
            outcome = await asyncio.shield(task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and (current is None or not current.cancelling()):
                raise TokenUnavailable(key, retry_after=1.0, reason="closed") from None
            raise
        if isinstance(outcome, _Failed):
            raise self._unavailable(key, outcome.failure, outcome.retry_at)
        return outcome

    def _unavailable(self, key: CacheKey, failure: Failure | None, retry_at: float) -> TokenUnavailable:
        failure = failure or Failure(reason="backoff")
        return TokenUnavailable(
            key,
            retry_after=retry_at - self._clock(),
            reason=failure.reason,
            error=failure.error,
            permanent=failure.permanent,
            status=failure.status,
        )

    # -- the fetch task --------------------------------------------------------------------------------------

    async def _run_fetch(
        self, key: CacheKey, entry: _Entry, fetch: Fetcher, policy: RefreshPolicy, refresh: bool
    ) -> _Outcome:
        """The one task per key: get a token (store, then endpoint), record the outcome, never raise."""
        started = self._clock()
        try:
            async with asyncio.timeout(policy.fetch_timeout):
                token, fetched = await self._obtain(key, entry, fetch, policy, started)
        except Exception as exc:  # every failure becomes a backoff; none may escape the task
            return self._record_failure(key, entry, classify(exc), policy, started, refresh)
        finally:
            entry.task = None
        self._record_success(key, entry, token, started, refresh=refresh, fetched=fetched)
        return token

    async def _obtain(
        self, key: CacheKey, entry: _Entry, fetch: Fetcher, policy: RefreshPolicy, started: float
    ) -> tuple[CachedToken, bool]:
        """A token from the shared store when a usable one is there, else from the endpoint (``True``)."""
        skip = (entry.token.fingerprint if entry.token else None, entry.retired)
        shared = await self._shared.adopt(key, policy, skip=skip)
        if shared is not None:
            return shared, False
        async with self._shared.lock(key, policy.fetch_timeout) as owner:
            if not owner:
                shared = await self._shared.await_peer(key, policy, skip=skip)
                if shared is not None:
                    return shared, False
            token = self._scheduler.issue(await fetch(), policy, started)
            await self._shared.save(key, token)
        return token, True

    def _record_success(
        self, key: CacheKey, entry: _Entry, token: CachedToken, started: float, *, refresh: bool, fetched: bool
    ) -> None:
        entry.token = token
        entry.failures = 0
        entry.failure = None
        entry.retry_at = -math.inf
        now = self._clock()
        duration = now - started
        expires_in = round(token.expires_at - now, 3)
        if not fetched:
            _log.debug("token.loaded", key=str(key), fingerprint=token.fingerprint, expires_in=expires_in)
            return
        entry.fetches_ok += 1
        _log.info(
            "token.fetched",
            key=str(key),
            fingerprint=token.fingerprint,
            expires_in=expires_in,
            duration=round(duration, 6),
            refresh=refresh,
        )
        self._notify(key, "ok", duration)

    def _record_failure(
        self, key: CacheKey, entry: _Entry, failure: Failure, policy: RefreshPolicy, started: float, refresh: bool
    ) -> _Failed:
        """Back off; a valid token stays untouched and is retried (at the latest) halfway to its expiry."""
        now = self._clock()
        entry.failures += 1
        entry.fetches_failed += 1
        entry.failure = failure
        delay = backoff_delay(policy, entry.failures, failure, self._rand)
        token = entry.token
        if token is not None and now < token.expires_at and not failure.permanent and failure.retry_after is None:
            delay = min(delay, max((token.expires_at - now) / 2, policy.backoff_initial / 10))
        entry.retry_at = now + delay
        _log.warning(
            "token.fetch_failed",
            key=str(key),
            error=failure.code,
            reason=failure.reason,
            status=failure.status,
            backoff=round(delay, 3),
            permanent=failure.permanent,
            refresh=refresh,
        )
        self._notify(key, failure.code, now - started)
        return _Failed(failure, entry.retry_at)

    def _notify(self, key: CacheKey, outcome: str, duration: float) -> None:
        """Tell the fetch observer; a broken observer (metrics) must not break token delivery."""
        if self._on_fetch is None:
            return
        try:
            self._on_fetch(key, outcome, duration)
        except Exception as exc:
            _log.warning("token.observer_failed", key=str(key), error=type(exc).__name__)

    # -- invalidation, reload, shutdown, status --------------------------------------------------------------

    async def invalidate(self, key: CacheKey, used: CachedToken) -> bool:
        """Drop the cached token only if it is still ``used``; return whether it was dropped.

        The comparison and the drop happen before the first ``await``, so of many concurrent callers holding
        the same rejected token exactly one drops it, and none drops the new token another has fetched since.
        """
        entry = self._entries.get(key)
        current = entry.token if entry is not None else None
        if entry is None or current is None or not _same_token(current, used):
            return False
        entry.token = None
        entry.retired = used.fingerprint
        _log.info("token.invalidated", key=str(key), fingerprint=used.fingerprint)
        await self._shared.delete(key, used.fingerprint)
        return True

    def retain(self, keys: Collection[CacheKey]) -> None:
        """Forget every key not in ``keys`` (after a reload). Fetches in flight finish for their waiters."""
        keep = set(keys)
        for key in [key for key in self._entries if key not in keep]:
            del self._entries[key]

    async def aclose(self) -> None:
        """Cancel background refreshes and fetches; later calls to :meth:`get` that need a fetch fail."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def status(self) -> list[KeyStatus]:
        """A snapshot per key for the admin API, metrics and readiness (no tokens in it)."""
        now = self._clock()
        return [_status(key, entry, now) for key, entry in self._entries.items()]


def _same_token(current: CachedToken, used: CachedToken) -> bool:
    return current is used or (current.fingerprint == used.fingerprint and current.obtained_at == used.obtained_at)


def _status(key: CacheKey, entry: _Entry, now: float) -> KeyStatus:
    token, failure = entry.token, entry.failure
    return KeyStatus(
        key=key,
        fingerprint=token.fingerprint if token else None,
        expires_in=token.expires_at - now if token else None,
        age=now - token.obtained_at if token else None,
        refreshing=entry.task is not None,
        last_error=failure.code if failure else None,
        fetches_ok=entry.fetches_ok,
        fetches_failed=entry.fetches_failed,
        hits=entry.hits,
        misses=entry.misses,
        permanent_failure=failure is not None and failure.permanent,
        next_retry_in=entry.retry_at - now if entry.retry_at > now else None,
        wall_expires_at=token.wall_expires_at if token else None,
    )
