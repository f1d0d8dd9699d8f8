"""Readiness is exact per profile: two profiles with identical token inputs share a digest, not a cache entry."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.integration.admin.conftest import CLIENT_SECRET, FakeIdP, running
from tokenrelay.admin import ReadinessCheck
from tokenrelay.metrics import Metrics
from tokenrelay.runtime import RuntimeHolder
from tokenrelay.settings import Settings
from tokenrelay.tokens import TokenCache


def twin_settings(idp: FakeIdP) -> Settings:
    """``first`` and ``second``: the same client, endpoint and scope, both prefetched."""
    same = {
        "client": {"id": "admin-tests", "secret": CLIENT_SECRET},
        "auth": {"token_host": str(idp.server.make_url("/")).rstrip("/")},
        "scope": "read",
    }
    return Settings(profiles={"first": same, "second": same})


@pytest.fixture(name="holder")
async def _holder(idp: FakeIdP) -> AsyncIterator[tuple[RuntimeHolder, TokenCache]]:
    cache = TokenCache()
    async with running(twin_settings(idp), cache, Metrics(version="0.0.0-test")) as holder:
        yield holder, cache


async def test_twin_profiles_share_a_digest_but_not_readiness(holder: tuple[RuntimeHolder, TokenCache]) -> None:
    """Only ``first`` has fetched: it is ready, ``second`` still awaits its own token."""
    runtime, cache = holder[0].current, holder[1]
    first, second = runtime.bindings["first"], runtime.bindings["second"]
    assert first.key.digest == second.key.digest
    await cache.get(first.key, first.fetch, first.policy)
    verdict = ReadinessCheck(holder[0], cache)()
    assert (verdict.profiles["first"].ready, verdict.profiles["first"].reason) == (True, "token_valid")
    assert (verdict.profiles["second"].ready, verdict.profiles["second"].reason) == (False, "awaiting_token")
    assert not verdict.ready
