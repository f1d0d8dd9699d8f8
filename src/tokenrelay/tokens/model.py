"""The token cache's values: what a fetch returns, what the cache holds, what it reports, how it fails.

Everything here is an immutable value. Access tokens are ``repr=False`` fields, and the one exception type
(:class:`TokenUnavailable`) describes a failure by its cause and OAuth ``error`` code only, so none of these
objects can leak a credential into a log line, an error page or the admin API.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from tokenrelay.tokens.keys import CacheKey

__all__ = ["CachedToken", "Fetcher", "IssuedToken", "KeyStatus", "StoredToken", "TokenUnavailable"]


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """What one fetch from the token endpoint returns.

    ``expires_in`` is the endpoint's word, in seconds from now; ``None`` when it said nothing (then the cache
    reads the JWT ``exp`` claim or falls back to the policy's default lifetime).
    """

    access_token: str = field(repr=False)
    expires_in: float | None = None


#: Fetches one new token. Raises the grant core's ``OAuth2Error`` subclasses on failure.
Fetcher = Callable[[], Awaitable[IssuedToken]]


@dataclass(frozen=True, slots=True)
class CachedToken:
    """A token held by the cache, with its schedule on the monotonic clock.

    ``expires_at`` is always finite: the cache never keeps a token forever. ``refresh_at`` is the (jittered)
    point from which a request triggers a background refresh; ``wall_expires_at`` exists only for display and
    for shared stores, because monotonic clocks mean nothing outside this process.
    """

    access_token: str = field(repr=False)
    fingerprint: str
    obtained_at: float
    expires_at: float
    refresh_at: float
    wall_expires_at: float


@dataclass(frozen=True, slots=True)
class StoredToken:
    """A token as a shared (L2) store keeps it: wall-clock times only, since it may cross processes."""

    access_token: str = field(repr=False)
    fingerprint: str
    wall_obtained_at: float
    wall_expires_at: float


@dataclass(frozen=True, slots=True)
class KeyStatus:
    """One cache key's state for the admin API, metrics and readiness. Never carries the token itself.

    Durations are seconds relative to the moment :meth:`TokenCache.status` was called; ``None`` when not
    applicable (no token, no retry pending).
    """

    key: CacheKey
    fingerprint: str | None
    expires_in: float | None
    age: float | None
    refreshing: bool
    last_error: str | None
    fetches_ok: int
    fetches_failed: int
    hits: int
    misses: int
    permanent_failure: bool
    next_retry_in: float | None
    wall_expires_at: float | None = None

    @property
    def profile(self) -> str:
        """The profile this key belongs to (a convenience for metrics labels)."""
        return self.key.profile

    @property
    def valid(self) -> bool:
        """Whether a token that may still be injected is cached."""
        return self.expires_in is not None and self.expires_in > 0


class TokenUnavailable(Exception):  # the contract's name (interfaces.md)
    """No valid token can be had right now; ``retry_after`` says when trying again makes sense.

    ``reason`` is the cause (``idp_error``, ``idp_unreachable``, ``timeout``, ``invalid_response``,
    ``expired_on_arrival``, ``config``, ``internal``, ``closed``), ``error`` the endpoint's RFC 6749
    ``error`` code when it sent one, and ``permanent`` is true when retrying cannot help until the
    configuration changes (``invalid_client``, ``unauthorized_client``). The message never contains a token,
    a secret or the endpoint's free text.
    """

    def __init__(
        self,
        key: CacheKey,
        *,
        retry_after: float,
        reason: str,
        error: str | None = None,
        permanent: bool = False,
        status: int | None = None,
    ) -> None:
        self.key = key
        self.retry_after = max(0.0, retry_after)
        self.reason = reason
        self.error = error
        self.permanent = permanent
        self.status = status
        detail = f", error={error}" if error else ""
        detail += f", status={status}" if status is not None else ""
        kind = "permanent failure" if permanent else "unavailable"
        super().__init__(f"token for {key} {kind}: {reason}{detail}; retry in {self.retry_after:.1f} s")
