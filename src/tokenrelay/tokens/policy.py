"""When to refresh and how long to back off: pure functions of a policy, a lifetime and a failure.

Kept free of state and I/O so that the schedule can be tested exactly with an injected random source.

* Lifetime: ``expires_in``; else the JWT's ``exp``; else ``default_lifetime``. Capped at ``max_lifetime``:
  the cache never keeps a token forever (Dapr and x/oauth2 do when ``expires_in`` is missing).
* Refresh window: ``refresh_before`` or min(60 s, lifetime / 4), always capped at lifetime / 2 so a
  short-lived token is not refreshed continuously; refresh starts up to 10 % of the window *earlier*
  (jitter), so keys and replicas that got their tokens together do not refresh in lockstep.
* Backoff: exponential with full jitter between ``backoff_initial`` and ``backoff_max`` (Envoy retries at a
  fixed interval); ``permanent_backoff`` after ``invalid_client`` / ``unauthorized_client``; never shorter than
  the endpoint's ``Retry-After`` (seconds form).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from tokenrelay.grant.errors import (
    ConfigError,
    OAuth2Error,
    TokenRequestError,
    TokenResponseError,
    TransportError,
)
from tokenrelay.tokens.jwt_expiry import jwt_expiry

if TYPE_CHECKING:
    from tokenrelay.tokens.model import IssuedToken

__all__ = [
    "MAX_RETRY_AFTER",
    "PERMANENT_ERRORS",
    "ExpiredOnArrival",
    "Failure",
    "ProfilePolicySettings",
    "RefreshPolicy",
    "UnusableToken",
    "backoff_delay",
    "check_token",
    "classify",
    "policy_for_profile",
    "refresh_window",
    "token_lifetime",
]

#: RFC 6749 §5.2 codes after which retrying cannot help until the credentials change.
PERMANENT_ERRORS = frozenset({"invalid_client", "unauthorized_client"})
#: An endpoint's ``Retry-After`` is honoured up to this many seconds (a typo there must not stall us for days).
MAX_RETRY_AFTER = 3600.0
#: Share of the refresh window by which refresh may start earlier (never later).
JITTER_SHARE = 0.1


@dataclass(frozen=True, slots=True)
class RefreshPolicy:
    """How one cache key is refreshed and how its failures are retried. All durations in seconds."""

    refresh_before: float | None = None
    default_lifetime: float = 300.0
    fetch_timeout: float = 10.0
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    permanent_backoff: float = 300.0
    max_lifetime: float = 86400.0

    def __post_init__(self) -> None:
        positive = {
            "default_lifetime": self.default_lifetime,
            "fetch_timeout": self.fetch_timeout,
            "max_lifetime": self.max_lifetime,
        }
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"RefreshPolicy.{name} must be > 0 (got {value!r})")
        others = {
            "refresh_before": 0.0 if self.refresh_before is None else self.refresh_before,
            "backoff_initial": self.backoff_initial,
            "backoff_max": self.backoff_max,
            "permanent_backoff": self.permanent_backoff,
        }
        for name, value in others.items():
            if not value >= 0:
                raise ValueError(f"RefreshPolicy.{name} must be >= 0 (got {value!r})")


class ProfilePolicySettings(Protocol):
    """What :func:`policy_for_profile` reads of a profile (``tokenrelay.settings.ProfileSettings`` has it).

    A protocol rather than the settings class, so that the cache does not depend on the configuration schema
    above it.
    """

    @property
    def refresh_before_expiry(self) -> float | None: ...

    @property
    def default_expires_in(self) -> float: ...


def policy_for_profile(profile: ProfilePolicySettings, **overrides: float) -> RefreshPolicy:
    """The policy a profile's settings ask for (``refresh_before_expiry``, ``default_expires_in``)."""
    return RefreshPolicy(
        refresh_before=profile.refresh_before_expiry,
        default_lifetime=profile.default_expires_in,
        **overrides,
    )


class ExpiredOnArrival(Exception):  # names the situation, raised and classified internally
    """The endpoint issued a token that is already expired: it must not be injected, even once."""


class UnusableToken(Exception):  # names the situation, raised and classified internally
    """The endpoint issued an empty token or one with characters no header may carry (CR, LF, non-ASCII)."""


def check_token(access_token: str) -> None:
    """Refuse tokens that would inject nothing or could split or corrupt the upstream request's headers."""
    if not access_token or not all(" " <= char <= "~" for char in access_token):
        raise UnusableToken


def token_lifetime(issued: IssuedToken, policy: RefreshPolicy, wall_now: float) -> float:
    """Seconds the token is valid for, counted from the request: expires_in, else JWT exp, else default."""
    lifetime: float | None = None
    if issued.expires_in is not None and not math.isnan(issued.expires_in):
        lifetime = issued.expires_in
    else:
        exp = jwt_expiry(issued.access_token)
        if exp is not None:
            lifetime = exp - wall_now
    if lifetime is None:
        lifetime = policy.default_lifetime
    return min(lifetime, policy.max_lifetime)


def refresh_window(lifetime: float, policy: RefreshPolicy) -> float:
    """How long before expiry a refresh starts (before jitter): never more than half the lifetime."""
    window = policy.refresh_before if policy.refresh_before is not None else min(60.0, lifetime / 4)
    return max(0.0, min(window, lifetime / 2))


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed fetch, reduced to what may be shown: cause, RFC 6749 code, HTTP status, no free text."""

    reason: str
    error: str | None = None
    status: int | None = None
    permanent: bool = False
    retry_after: float | None = None

    @property
    def code(self) -> str:
        """A short label for status pages and metrics: the OAuth error code, else ``http_<status>``, else reason."""
        if self.error:
            return self.error
        if self.status is not None:
            return f"http_{self.status}"
        return self.reason


def classify(exc: BaseException) -> Failure:
    """Map whatever a fetch raised to a :class:`Failure`. The exception's message is deliberately not kept."""
    if isinstance(exc, TokenRequestError | TokenResponseError):
        reason = "idp_error" if isinstance(exc, TokenRequestError) else "invalid_response"
        return Failure(
            reason=reason,
            error=exc.error,
            status=exc.status,
            permanent=exc.error in PERMANENT_ERRORS,
            retry_after=parse_retry_after(exc.retry_after),
        )
    if isinstance(exc, TransportError):
        return Failure(reason="timeout" if exc.timeout else "idp_unreachable")
    if isinstance(exc, TimeoutError):
        return Failure(reason="timeout")
    if isinstance(exc, ExpiredOnArrival):
        return Failure(reason="expired_on_arrival")
    if isinstance(exc, UnusableToken):
        return Failure(reason="invalid_response")
    if isinstance(exc, ConfigError):
        return Failure(reason="config", permanent=True)
    if isinstance(exc, OAuth2Error):
        return Failure(reason="idp_error")
    return Failure(reason="internal")


def parse_retry_after(value: str | None) -> float | None:
    """The delta-seconds form of ``Retry-After`` (RFC 9110 §10.2.3); the HTTP-date form is ignored."""
    if value is None or not value.strip().isdigit():
        return None
    return min(float(value.strip()), MAX_RETRY_AFTER)


def backoff_delay(policy: RefreshPolicy, failures: int, failure: Failure, rand: Callable[[], float]) -> float:
    """Seconds to wait before the next fetch after ``failures`` consecutive failures (``failures >= 1``).

    Full jitter (a uniform pick below the exponential cap) spreads many keys and replicas across the whole
    interval; a floor of a tenth of ``backoff_initial`` keeps a lucky draw from turning into a hot loop.
    """
    if failure.permanent:
        delay = policy.permanent_backoff
    else:
        cap = min(policy.backoff_max, policy.backoff_initial * 2.0 ** min(failures - 1, 60))
        delay = max(cap * rand(), min(cap, policy.backoff_initial / 10))
    if failure.retry_after is not None:
        delay = max(delay, failure.retry_after)
    return delay
