"""status(), retain(), aclose(), the fetch observer, and what reaches logs (never a token)."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from tests.unit.tokens.tokencache_support import (
    POLICY,
    FakeClock,
    ScriptedFetcher,
    make_cache,
    make_key,
    tokens,
)
from tokenrelay.grant.errors import TokenRequestError
from tokenrelay.tokens import CacheKey, TokenUnavailable


async def test_status_reports_the_key_without_the_token() -> None:
    clock = FakeClock()
    cache, key = make_cache(clock), make_key()
    token = await cache.get(key, ScriptedFetcher(tokens(1, 600.0)), POLICY)
    cache.peek(key)
    clock.advance(100.0)
    [status] = cache.status()
    assert status.key == key
    assert status.profile == "billing"
    assert status.fingerprint == token.fingerprint
    assert (status.expires_in, status.age) == (500.0, 100.0)
    assert status.valid
    assert not status.refreshing
    assert not status.permanent_failure
    assert (status.fetches_ok, status.fetches_failed, status.hits, status.misses) == (1, 0, 1, 1)
    assert status.next_retry_in is None
    assert status.last_error is None
    assert status.wall_expires_at == token.wall_expires_at
    assert "secret-access-token" not in repr(status)


async def test_status_of_a_key_without_token_and_a_fetch_in_flight() -> None:
    cache, key = make_cache(FakeClock()), make_key()
    fetch = ScriptedFetcher(tokens(1), gate=asyncio.Event())
    waiter = asyncio.create_task(cache.get(key, fetch, POLICY))
    await fetch.started.wait()
    [status] = cache.status()
    assert status.refreshing
    assert status.fingerprint is None
    assert not status.valid
    assert fetch.gate is not None
    fetch.gate.set()
    await waiter


async def test_retain_forgets_other_keys() -> None:
    cache = make_cache(FakeClock())
    keep, drop = make_key("keep"), make_key("drop")
    await cache.get(keep, ScriptedFetcher(tokens(1)), POLICY)
    await cache.get(drop, ScriptedFetcher(tokens(1)), POLICY)
    cache.retain([keep])
    assert [status.key for status in cache.status()] == [keep]
    assert cache.peek(drop) is None


async def test_retain_lets_a_fetch_in_flight_finish_for_its_waiters() -> None:
    cache, key = make_cache(FakeClock()), make_key()
    fetch = ScriptedFetcher(tokens(1), gate=asyncio.Event())
    waiter = asyncio.create_task(cache.get(key, fetch, POLICY))
    await fetch.started.wait()
    cache.retain([])
    assert fetch.gate is not None
    fetch.gate.set()
    assert (await waiter).access_token == "secret-access-token-1"


async def test_aclose_cancels_fetches_and_waiters_get_token_unavailable() -> None:
    cache, key = make_cache(FakeClock()), make_key()
    fetch = ScriptedFetcher(tokens(1), gate=asyncio.Event())
    waiter = asyncio.create_task(cache.get(key, fetch, POLICY))
    await fetch.started.wait()
    await cache.aclose()
    with pytest.raises(TokenUnavailable) as caught:
        await waiter
    assert caught.value.reason == "closed"
    with pytest.raises(TokenUnavailable):
        await cache.get(make_key("other"), ScriptedFetcher(tokens(1)), POLICY)


async def test_after_aclose_a_valid_token_is_still_served_without_refresh() -> None:
    clock = FakeClock()
    cache, key, fetch = make_cache(clock), make_key(), ScriptedFetcher(tokens(2))
    token = await cache.get(key, fetch, POLICY)
    await cache.aclose()
    clock.now = token.refresh_at
    assert await cache.get(key, fetch, POLICY) is token
    assert fetch.calls == 1


async def test_on_fetch_observer_sees_outcomes() -> None:
    seen: list[tuple[CacheKey, str]] = []
    cache = make_cache(FakeClock(), on_fetch=lambda key, outcome, _duration: seen.append((key, outcome)))
    key = make_key()
    failing = TokenRequestError("nope", status=400, payload={"error": "invalid_scope"})
    with pytest.raises(TokenUnavailable):
        await cache.get(key, ScriptedFetcher([failing]), POLICY)
    await cache.get(make_key("ok"), ScriptedFetcher(tokens(1)), POLICY)
    assert seen == [(key, "invalid_scope"), (make_key("ok"), "ok")]


async def test_logs_carry_fingerprints_and_codes_never_tokens_or_secrets() -> None:
    clock = FakeClock()
    cache, key = make_cache(clock), make_key()
    leaky = TokenRequestError(
        "rejected client_secret=hunter2", status=401, payload={"error": "invalid_client", "secret": "hunter2"}
    )
    with capture_logs() as logs:
        token = await cache.get(key, ScriptedFetcher(tokens(1)), POLICY)
        await cache.invalidate(key, token)
        with pytest.raises(TokenUnavailable) as caught:
            await cache.get(key, ScriptedFetcher([leaky]), POLICY)
    events = [entry["event"] for entry in logs]
    assert events == ["token.fetched", "token.invalidated", "token.fetch_failed"]
    fetched, _, failed = logs
    assert fetched["fingerprint"] == token.fingerprint
    assert fetched["refresh"] is False
    assert fetched["expires_in"] == 3600.0
    assert "duration" in fetched
    assert (failed["error"], failed["status"], failed["backoff"]) == ("invalid_client", 401, POLICY.permanent_backoff)
    text = repr(logs) + str(caught.value) + repr(caught.value)
    assert "secret-access-token" not in text
    assert "hunter2" not in text


def test_token_unavailable_message() -> None:
    exc = TokenUnavailable(
        make_key(), retry_after=-3.0, reason="idp_error", error="invalid_client", status=401, permanent=True
    )
    assert exc.retry_after == 0.0
    assert str(exc) == (
        f"token for {make_key()} permanent failure: idp_error, error=invalid_client, status=401; retry in 0.0 s"
    )


async def test_fresh_reads_log_nothing() -> None:
    cache, key, fetch = make_cache(FakeClock()), make_key(), ScriptedFetcher(tokens(1))
    token = await cache.get(key, fetch, POLICY)
    with capture_logs() as logs:
        for _ in range(10):
            assert cache.peek(key) is token
            assert await cache.get(key, fetch, POLICY) is token
    assert logs == []
    assert cache.status()[0].hits == 20


async def test_status_of_a_key_in_backoff() -> None:
    clock = FakeClock()
    cache, key = make_cache(clock, rand=1.0), make_key()
    with pytest.raises(TokenUnavailable):
        await cache.get(key, ScriptedFetcher([TokenRequestError("down", status=503, payload="")]), POLICY)
    clock.advance(0.25)
    [status] = cache.status()
    assert status.next_retry_in == pytest.approx(0.75)
    assert status.last_error == "http_503"
    assert not status.permanent_failure
    assert not status.valid


async def test_a_broken_fetch_observer_does_not_break_delivery() -> None:
    def broken(_key: CacheKey, _outcome: str, _duration: float) -> None:
        raise RuntimeError("metrics bug")

    cache = make_cache(FakeClock(), on_fetch=broken)
    with capture_logs() as logs:
        token = await cache.get(make_key(), ScriptedFetcher(tokens(1)), POLICY)
    assert token.access_token == "secret-access-token-1"
    assert "token.observer_failed" in [entry["event"] for entry in logs]
