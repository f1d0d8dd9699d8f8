"""Helpers for the token cache's unit tests: a hand-driven clock and scripted fetchers."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from tokenrelay.tokens import CacheKey, IssuedToken, RefreshPolicy, TokenCache

WALL_EPOCH = 1_800_000_000.0


@dataclass
class FakeClock:
    """Monotonic and wall clocks moved by the test; the wall clock is the monotonic one plus an epoch."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def wall(self) -> float:
        return WALL_EPOCH + self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class ScriptedFetcher:
    """Returns (or raises) the scripted outcomes in order, the last one forever; counts calls.

    With ``gate`` set, every call waits for the event first (an endpoint that hangs until released).
    """

    outcomes: Sequence[IssuedToken | BaseException]
    gate: asyncio.Event | None = None
    calls: int = 0
    started: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self) -> IssuedToken:
        index = min(self.calls, len(self.outcomes) - 1)
        self.calls += 1
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        outcome = self.outcomes[index]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def issued(n: int = 1, expires_in: float | None = 3600.0) -> IssuedToken:
    return IssuedToken(access_token=f"secret-access-token-{n}", expires_in=expires_in)


def tokens(count: int, expires_in: float | None = 3600.0) -> list[IssuedToken | BaseException]:
    return [issued(n, expires_in) for n in range(1, count + 1)]


def make_key(profile: str = "billing", digest: str = "ab" * 32) -> CacheKey:
    return CacheKey(profile=profile, digest=digest)


def make_cache(clock: FakeClock, *, rand: float = 0.0, **kwargs: object) -> TokenCache:
    return TokenCache(clock=clock, wall_clock=clock.wall, rand=lambda: rand, **kwargs)  # type: ignore[arg-type]


def jwt_with(claims: object) -> str:
    """An unsigned JWS-shaped string with ``claims`` as its payload (signature irrelevant to the cache)."""

    def segment(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")

    return ".".join([segment(b'{"alg":"none"}'), segment(json.dumps(claims).encode()), segment(b"sig")])


POLICY = RefreshPolicy(fetch_timeout=5.0)
