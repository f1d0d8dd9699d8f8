"""Turning a token and a lifetime into a :class:`CachedToken` schedule, on the cache's injected clocks.

Shared by the two ways a token enters the cache (fetched from the endpoint, adopted from the store) so both
get the same refresh window and jitter. Monotonic times schedule; the wall clock only labels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tokenrelay.fingerprints import fingerprint
from tokenrelay.tokens.model import CachedToken, IssuedToken, StoredToken
from tokenrelay.tokens.policy import (
    JITTER_SHARE,
    ExpiredOnArrival,
    RefreshPolicy,
    check_token,
    refresh_window,
    token_lifetime,
)

__all__ = ["Scheduler"]


@dataclass(frozen=True, slots=True)
class Scheduler:
    """The cache's clocks and random source, and the rules that place ``refresh_at`` and ``expires_at``."""

    clock: Callable[[], float]
    wall_clock: Callable[[], float]
    rand: Callable[[], float]

    def issue(self, issued: IssuedToken, policy: RefreshPolicy, started: float) -> CachedToken:
        """Schedule a fetched token. Its lifetime counts from the request's start: expiry errs early, never late.

        Raises :class:`ExpiredOnArrival` for a token that is already expired (it must not be injected even
        once) and :class:`UnusableToken` for one no header can carry.
        """
        check_token(issued.access_token)
        now = self.clock()
        lifetime = token_lifetime(issued, policy, self.wall_clock())
        expires_at = started + lifetime
        if expires_at <= now:
            raise ExpiredOnArrival
        return self.schedule(issued.access_token, lifetime, expires_at, policy, obtained_at=now)

    def adopt(self, stored: StoredToken, policy: RefreshPolicy) -> CachedToken | None:
        """Schedule a token from the shared store, or ``None`` when it is expired or already due for refresh."""
        now, wall = self.clock(), self.wall_clock()
        remaining = min(stored.wall_expires_at - wall, policy.max_lifetime)
        lifetime = min(stored.wall_expires_at - stored.wall_obtained_at, policy.max_lifetime)
        if remaining <= 0 or lifetime <= 0:
            return None
        age = max(0.0, wall - stored.wall_obtained_at)
        token = self.schedule(stored.access_token, lifetime, now + remaining, policy, obtained_at=now - age)
        return token if now < token.refresh_at else None

    def schedule(
        self, access_token: str, lifetime: float, expires_at: float, policy: RefreshPolicy, *, obtained_at: float
    ) -> CachedToken:
        """Refresh up to 10 % of the window *earlier* than ``expires_at - window``, never later."""
        window = refresh_window(lifetime, policy)
        return CachedToken(
            access_token=access_token,
            fingerprint=fingerprint(access_token),
            obtained_at=obtained_at,
            expires_at=expires_at,
            refresh_at=expires_at - window * (1.0 + JITTER_SHARE * self.rand()),
            wall_expires_at=self.wall_clock() + (expires_at - self.clock()),
        )

    def stored(self, token: CachedToken) -> StoredToken:
        """The wall-clock form of ``token`` for the shared store."""
        return StoredToken(
            access_token=token.access_token,
            fingerprint=token.fingerprint,
            wall_obtained_at=self.wall_clock() - (self.clock() - token.obtained_at),
            wall_expires_at=token.wall_expires_at,
        )
