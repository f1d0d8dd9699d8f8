"""The admin API over a real aiohttp server, backed by the real runtime, TokenCache and Metrics."""

from __future__ import annotations

import ipaddress

import pytest

from tests.integration.admin.conftest import (
    CLIENT_SECRET,
    ISSUED_TOKEN,
    AdminStack,
    Client,
    ClientFactory,
    settings_for,
)
from tests.unit.observability.prom_exposition import parse
from tokenrelay.admin import ProfileReadiness, Readiness, ReadinessCheck
from tokenrelay.fingerprints import fingerprint
from tokenrelay.tokens import TokenUnavailable


async def test_healthz_answers_ok_while_the_loop_runs(admin: Client) -> None:
    """Liveness says nothing about tokens: 200 {"status": "ok"}."""
    response = await admin.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_every_admin_answer_is_no_store(admin: Client) -> None:
    """Token status changes by the second: no answer, not even a 404, may be cached."""
    for path in ("/healthz", "/readyz", "/metrics", "/tokens", "/nope"):
        response = await admin.get(path)
        assert response.headers["Cache-Control"] == "no-store", path


async def test_readyz_waits_for_the_first_token_of_a_prefetch_profile(admin: Client, stack: AdminStack) -> None:
    """503 with a per-profile reason until the prefetched token is there, then 200."""
    response = await admin.get("/readyz")
    assert response.status == 503
    body = await response.json()
    assert body["status"] == "not_ready"
    assert body["profiles"]["api"] == {"ready": False, "reason": "awaiting_token", "last_error": None}
    await stack.fetch("api")
    response = await admin.get("/readyz")
    assert response.status == 200
    assert (await response.json())["profiles"]["api"]["reason"] == "token_valid"


async def test_readyz_ignores_profiles_fetched_on_demand(admin: Client, stack: AdminStack) -> None:
    """A profile without ``prefetch`` has no token until first use, and that is not a reason to be unready."""
    await stack.fetch("api")
    body = await (await admin.get("/readyz")).json()
    assert body["profiles"]["lazy"] == {"ready": True, "reason": "on_demand", "last_error": None}


async def test_readyz_fails_when_the_idp_rejects_the_client(admin: Client, stack: AdminStack) -> None:
    """invalid_client is permanent: 503 naming the profile and the error code, even for an on-demand profile."""
    stack.idp.mode = "invalid_client"
    for profile in ("api", "lazy"):
        with pytest.raises(TokenUnavailable):
            await stack.fetch(profile)
    response = await admin.get("/readyz")
    assert response.status == 503
    profiles = (await response.json())["profiles"]
    assert profiles["api"] == {"ready": False, "reason": "permanent_failure", "last_error": "invalid_client"}
    assert profiles["lazy"]["reason"] == "permanent_failure"


async def test_readyz_stays_ready_through_a_transient_outage_after_startup(admin: Client, stack: AdminStack) -> None:
    """Default mode: once a profile had a token, losing it to an IdP outage does not flap readiness."""
    await stack.fetch("api")
    stack.idp.mode = "down"
    stack.clock.now += 10_000.0  # the token has expired; the next fetch fails transiently
    with pytest.raises(TokenUnavailable):
        await stack.fetch("api")
    response = await admin.get("/readyz")
    assert response.status == 200
    assert (await response.json())["profiles"]["api"]["reason"] == "token_unavailable"


async def test_a_reload_that_changes_the_key_does_not_undo_startup(admin: Client, stack: AdminStack) -> None:
    """After startup, a reload giving the profile a new cache key while the IdP is down keeps the pod ready."""
    await stack.fetch("api")
    assert (await admin.get("/readyz")).status == 200
    stack.idp.mode = "down"
    await stack.holder.reload(settings_for(stack.idp, api_scope="read write"))
    with pytest.raises(TokenUnavailable):
        await stack.fetch("api")
    response = await admin.get("/readyz")
    assert response.status == 200
    assert (await response.json())["profiles"]["api"]["reason"] == "token_unavailable"


async def test_strict_readiness_requires_a_valid_token_now(stack: AdminStack, aiohttp_client: ClientFactory) -> None:
    """``strict`` mode turns the same outage into 503."""
    check = ReadinessCheck(stack.holder, stack.cache, mode="strict")
    admin = await aiohttp_client(stack.admin_app(readiness=check))
    await stack.fetch("api")
    assert (await admin.get("/readyz")).status == 200
    stack.clock.now += 10_000.0
    response = await admin.get("/readyz")
    assert response.status == 503
    assert (await response.json())["profiles"]["api"]["reason"] == "token_unavailable"


async def test_lenient_readiness_fails_only_on_permanent_failures(stack: AdminStack) -> None:
    """``lenient`` is ready before any token exists, and not once the IdP rejects the client."""
    check = ReadinessCheck(stack.holder, stack.cache, mode="lenient")
    assert check().ready
    stack.idp.mode = "invalid_client"
    with pytest.raises(TokenUnavailable):
        await stack.fetch("api")
    verdict = check()
    assert not verdict.ready
    assert verdict.profiles["api"].reason == "permanent_failure"


async def test_a_custom_readiness_callable_is_used(stack: AdminStack, aiohttp_client: ClientFactory) -> None:
    """The app serves whatever verdict the given callable returns, with its generation and reasons."""
    verdict = Readiness(ready=False, generation=7, profiles={"x": ProfileReadiness(False, "draining")}, reason="stop")
    admin = await aiohttp_client(stack.admin_app(readiness=lambda: verdict))
    response = await admin.get("/readyz")
    assert response.status == 503
    assert await response.json() == {
        "status": "not_ready",
        "generation": 7,
        "profiles": {"x": {"ready": False, "reason": "draining", "last_error": None}},
        "reason": "stop",
    }


async def test_metrics_are_served_in_the_text_format_with_live_token_gauges(admin: Client, stack: AdminStack) -> None:
    """/metrics has the 0.0.4 Content-Type, parses, and includes the fetch counter and expiry of the real cache."""
    await stack.fetch("api")
    response = await admin.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    families = parse(await response.text())
    key = stack.holder.current.bindings["api"].key.digest[:12]
    assert families["tokenrelay_token_fetches_total"].value(profile="api", outcome="ok") == 1
    assert families["tokenrelay_token_expiry_seconds"].value(profile="api", key=key) == pytest.approx(300, abs=1)


async def test_tokens_describes_each_key_without_the_token(admin: Client, stack: AdminStack) -> None:
    """/tokens shows profile, short key, fingerprint, timings and counters; never the token or the secret."""
    await stack.fetch("api")
    response = await admin.get("/tokens")
    text = await response.text()
    assert ISSUED_TOKEN not in text
    assert CLIENT_SECRET not in text
    body = await response.json()
    assert body["generation"] == stack.holder.current.generation
    (entry,) = body["tokens"]
    assert entry["profile"] == "api"
    assert entry["key"] == stack.holder.current.bindings["api"].key.digest[:12]
    assert entry["fingerprint"] == fingerprint(ISSUED_TOKEN)
    assert entry["expires_in"] == pytest.approx(300, abs=1)
    assert (entry["age"], entry["refreshing"]) == (0.0, False)
    assert (entry["fetches_ok"], entry["fetches_failed"], entry["misses"]) == (1, 0, 1)
    assert (entry["last_error"], entry["permanent_failure"], entry["next_retry_in"]) == (None, False, None)


async def test_tokens_reports_failures_with_their_retry_time(admin: Client, stack: AdminStack) -> None:
    """A failing key shows its last error code and when the next attempt is due."""
    stack.idp.mode = "down"
    with pytest.raises(TokenUnavailable):
        await stack.fetch("api")
    (entry,) = (await (await admin.get("/tokens")).json())["tokens"]
    assert entry["fingerprint"] is None
    assert entry["fetches_failed"] == 1
    assert entry["last_error"] is not None
    assert entry["next_retry_in"] > 0


async def test_allow_clients_refuses_peers_outside_the_networks(
    stack: AdminStack, aiohttp_client: ClientFactory
) -> None:
    """With allow_clients set, a loopback peer outside them gets 403 (still no-store)."""
    app = stack.admin_app(allow_clients=[ipaddress.ip_network("10.0.0.0/8")])
    response = await (await aiohttp_client(app)).get("/tokens")
    assert response.status == 403
    assert (await response.json())["error"] == "forbidden"
    assert response.headers["Cache-Control"] == "no-store"


async def test_allow_clients_admits_peers_inside_the_networks(stack: AdminStack, aiohttp_client: ClientFactory) -> None:
    """127.0.0.1 is admitted by 127.0.0.0/8."""
    app = stack.admin_app(allow_clients=[ipaddress.ip_network("127.0.0.0/8")])
    assert (await (await aiohttp_client(app)).get("/healthz")).status == 200
