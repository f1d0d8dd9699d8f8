"""What feeds ``Metrics``: the proxy observer calls, instrumented token fetches, and the cache status at render."""

from __future__ import annotations

import asyncio
import time

import pytest
from yarl import URL

from tests.unit.observability.prom_exposition import parse
from tokenrelay.fingerprints import fingerprint
from tokenrelay.grant.errors import TokenRequestError, TokenResponseError, TransportError
from tokenrelay.metrics import Metrics, ProxyObserver, fetch_outcome, instrument_fetcher
from tokenrelay.tokens import CacheKey, IssuedToken, RefreshPolicy, TokenCache, TokenUnavailable, cache_key
from tokenrelay.tracing import endpoint_label

TOKEN = "at-7c1f0e-super-secret-access-token"


def _key(profile: str = "default") -> CacheKey:
    return cache_key(
        profile,
        token_endpoint="http://127.0.0.1:1/oauth/token",
        client_id="client",
        credential_digest="d" * 64,
        auth_method="client_secret_basic",
        scope=None,
        audience=None,
        resource=(),
        params={},
    )


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_metrics_is_a_proxy_observer() -> None:
    """The proxy can be given a Metrics wherever it expects the ProxyObserver protocol."""
    observer: ProxyObserver = Metrics(version="1")
    observer.request_done("r", "GET", 200, 200, 0.1, 0.05, replayed=False)


def test_request_done_counts_by_route_method_and_status() -> None:
    """One answered request increments requests_total and observes both durations."""
    metrics = Metrics(version="1")
    metrics.request_done("orders", "GET", 201, 201, 0.2, 0.15, replayed=False)
    families = parse(metrics.render())
    assert families["tokenrelay_requests_total"].value(route="orders", method="GET", status="201") == 1
    assert families["tokenrelay_upstream_responses_total"].value(route="orders", status="201") == 1
    assert families["tokenrelay_request_duration_seconds"].value(
        "tokenrelay_request_duration_seconds_sum", route="orders"
    ) == pytest.approx(0.2)
    assert (
        families["tokenrelay_upstream_duration_seconds"].value(
            "tokenrelay_upstream_duration_seconds_count", route="orders"
        )
        == 1
    )


def test_unknown_methods_are_reported_as_other() -> None:
    """Arbitrary method tokens from clients cannot create unbounded series."""
    metrics = Metrics(version="1")
    for method in ("BREW", "PROPFIND", "get"):
        metrics.request_done("r", method, 405, None, 0.001, None, replayed=False)
    family = parse(metrics.render())["tokenrelay_requests_total"]
    assert {s.labels["method"] for s in family.samples} == {"OTHER"}
    assert family.value(route="r", method="OTHER", status="405") == 3


def test_a_request_without_an_upstream_answer_creates_no_upstream_series() -> None:
    """A 502/503 answered by the proxy itself is a request, not an upstream response."""
    metrics = Metrics(version="1")
    metrics.request_done("r", "GET", 503, None, 0.001, None, replayed=False)
    families = parse(metrics.render())
    assert families["tokenrelay_upstream_responses_total"].samples == []
    assert families["tokenrelay_upstream_duration_seconds"].samples == []


def test_replayed_requests_and_skipped_replays_are_counted() -> None:
    """replays_total counts replays done; replays_skipped_total says why one was not attempted."""
    metrics = Metrics(version="1")
    metrics.request_done("r", "POST", 200, 200, 0.3, 0.1, replayed=True)
    metrics.replay_skipped("r", "body_too_large")
    families = parse(metrics.render())
    assert families["tokenrelay_replays_total"].value(route="r") == 1
    assert families["tokenrelay_replays_skipped_total"].value(route="r", reason="body_too_large") == 1


def test_token_lookups_split_hits_and_misses() -> None:
    """The cache hit ratio is hit / (hit + miss) per profile."""
    metrics = Metrics(version="1")
    for hit in (True, True, False):
        metrics.token_lookup("default", hit=hit)
    family = parse(metrics.render())["tokenrelay_token_cache_lookups_total"]
    assert (family.value(profile="default", result="hit"), family.value(profile="default", result="miss")) == (2, 1)


def test_config_reloads_are_counted_by_outcome() -> None:
    """A rejected reload is visible even though the old config keeps serving."""
    metrics = Metrics(version="1")
    metrics.config_reload("ok")
    metrics.config_reload("error")
    metrics.config_reload("error")
    assert parse(metrics.render())["tokenrelay_config_reloads_total"].value(outcome="error") == 2


async def test_token_expiry_gauge_is_read_from_the_cache_at_render_time() -> None:
    """The gauge is the cache's remaining lifetime *now*: advancing the clock lowers it without any update call."""
    clock = _Clock()
    cache = TokenCache(clock=clock)
    key = _key()

    async def fetch() -> IssuedToken:
        return IssuedToken(access_token=TOKEN, expires_in=300.0)

    await cache.get(key, fetch, RefreshPolicy())
    metrics = Metrics(version="1")
    before = parse(metrics.render(cache))["tokenrelay_token_expiry_seconds"]
    clock.now += 100.0
    after = parse(metrics.render(cache))["tokenrelay_token_expiry_seconds"]
    assert before.value(profile="default", key=key.digest[:12]) == pytest.approx(300.0)
    assert after.value(profile="default", key=key.digest[:12]) == pytest.approx(200.0)
    await cache.aclose()


async def test_rendered_metrics_never_contain_the_token_or_its_fingerprint() -> None:
    """Metrics identify keys by a short digest of the request inputs; nothing derived from the token appears."""
    cache = TokenCache()

    async def fetch() -> IssuedToken:
        return IssuedToken(access_token=TOKEN, expires_in=300.0)

    await cache.get(_key(), fetch, RefreshPolicy())
    text = Metrics(version="1").render(cache)
    assert TOKEN not in text
    assert fingerprint(TOKEN) not in text
    await cache.aclose()


async def test_permanent_failure_gauge_flags_a_rejected_client() -> None:
    """invalid_client sets tokenrelay_token_permanent_failure to 1 and leaves no expiry sample for the key."""
    cache = TokenCache()
    key = _key("broken")

    async def fetch() -> IssuedToken:
        raise TokenRequestError("rejected", status=401, payload={"error": "invalid_client"})

    with pytest.raises(TokenUnavailable):
        await cache.get(key, fetch, RefreshPolicy())
    families = parse(Metrics(version="1").render(cache.status()))
    assert families["tokenrelay_token_permanent_failure"].value(profile="broken", key=key.digest[:12]) == 1
    assert families["tokenrelay_token_expiry_seconds"].samples == []
    await cache.aclose()


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (None, "ok"),
        (TokenRequestError("x", status=401, payload={"error": "invalid_client"}), "invalid_client"),
        (TokenRequestError("x", status=400, payload={"error": "invalid_scope"}), "invalid_scope"),
        (TokenRequestError("x", status=400, payload={"error": "made_up_by_the_idp"}), "http_4xx"),
        (TokenRequestError("x", status=503, payload="Service Unavailable"), "http_5xx"),
        (TokenResponseError("x", status=200, payload="<html>"), "invalid_response"),
        (TransportError("refused"), "transport"),
        (TransportError("slow", timeout=True), "timeout"),
        (TimeoutError(), "timeout"),
        (RuntimeError("bug"), "internal_error"),
    ],
)
def test_fetch_outcomes_are_a_closed_vocabulary(error: BaseException | None, outcome: str) -> None:
    """RFC 6749 §5.2 codes are kept; anything the IdP invents is folded into its status class."""
    assert fetch_outcome(error) == outcome


async def test_instrumented_fetcher_counts_success_and_times_it() -> None:
    """The wrapper returns the fetcher's result unchanged and records ok with the elapsed time."""
    clock, metrics = _Clock(), Metrics(version="1")
    issued = IssuedToken(access_token=TOKEN, expires_in=60.0)

    async def fetch() -> IssuedToken:
        clock.now += 0.25
        return issued

    assert await instrument_fetcher(fetch, "default", metrics, clock=clock)() is issued
    families = parse(metrics.render())
    assert families["tokenrelay_token_fetches_total"].value(profile="default", outcome="ok") == 1
    assert families["tokenrelay_token_fetch_duration_seconds"].value(
        "tokenrelay_token_fetch_duration_seconds_sum", profile="default"
    ) == pytest.approx(0.25)


async def test_instrumented_fetcher_counts_the_error_code_and_reraises() -> None:
    """The cache still sees the original exception (it decides on backoff from it)."""
    metrics = Metrics(version="1")
    error = TokenRequestError("x", status=401, payload={"error": "invalid_client"})

    async def fetch() -> IssuedToken:
        raise error

    with pytest.raises(TokenRequestError) as raised:
        await instrument_fetcher(fetch, "default", metrics)()
    assert raised.value is error
    assert metrics.token_fetches.value(("default", "invalid_client")) == 1


async def test_instrumented_fetcher_counts_cancellation_and_propagates_it() -> None:
    """A fetch cut off by the cache's fetch_timeout shows up as ``cancelled``; the cancellation is not swallowed."""
    metrics = Metrics(version="1")
    started = asyncio.Event()

    async def fetch() -> IssuedToken:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    instrumented = instrument_fetcher(fetch, "default", metrics)

    async def run() -> IssuedToken:
        return await instrumented()

    task = asyncio.create_task(run())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert metrics.token_fetches.value(("default", "cancelled")) == 1


def test_recording_a_request_is_cheap() -> None:
    """20,000 requests recorded well within a second (about a microsecond each): fit for the hot path."""
    metrics = Metrics(version="1")
    start = time.perf_counter()
    for i in range(20_000):
        metrics.request_done("orders", "GET", 200, 200, 0.001 * (i % 50), 0.0005, replayed=False)
    assert time.perf_counter() - start < 1.0
    assert metrics.requests.value(("orders", "GET", "200")) == 20_000


@pytest.mark.parametrize(
    ("url", "label"),
    [
        ("https://user:pw@idp.example/oauth/token?client_secret=x", "idp.example"),
        ("http://idp.example:80/token", "idp.example"),
        ("http://127.0.0.1:8443/token", "127.0.0.1:8443"),
    ],
)
def test_idp_host_label_never_carries_userinfo_path_or_query(url: str, label: str) -> None:
    """Only host (and a non-default port) become a label: bounded, and free of credentials in URLs."""
    assert endpoint_label(URL(url)) == label
