"""RFC 8414 / OIDC discovery: metadata URLs, document validation, and the single-flight TTL cache."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from tokenrelay.grant.discovery import MetadataCache, ServerMetadata, metadata_urls, parse_metadata
from tokenrelay.grant.errors import ConfigError, TokenResponseError

ISSUER = "https://as.example/tenant1"
TOKEN = "https://as.example/tenant1/oauth2/token"


def document(**fields: object) -> dict[str, object]:
    return {"issuer": ISSUER, "token_endpoint": TOKEN, **fields}


def metadata(token_endpoint: str = TOKEN) -> ServerMetadata:
    return ServerMetadata(ISSUER, token_endpoint, None, None, ("client_secret_basic",))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- metadata_urls ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("issuer", ["https://as.example", "https://as.example/"])
def test_metadata_urls_for_an_issuer_without_a_path(issuer: str) -> None:
    assert metadata_urls(issuer) == [
        "https://as.example/.well-known/oauth-authorization-server",
        "https://as.example/.well-known/openid-configuration",
    ]


@pytest.mark.parametrize("issuer", ["https://as.example/tenant1", "https://as.example/tenant1/"])
def test_metadata_urls_insert_the_rfc8414_suffix_before_the_path(issuer: str) -> None:
    assert metadata_urls(issuer) == [
        "https://as.example/.well-known/oauth-authorization-server/tenant1",
        "https://as.example/tenant1/.well-known/openid-configuration",
    ]


def test_metadata_urls_keep_the_port_and_a_deep_path() -> None:
    assert metadata_urls("https://as.example:8443/realms/prod/") == [
        "https://as.example:8443/.well-known/oauth-authorization-server/realms/prod",
        "https://as.example:8443/realms/prod/.well-known/openid-configuration",
    ]


@pytest.mark.parametrize(
    "issuer", ["http://127.0.0.1:8080/realms/dev", "http://localhost:9000", "http://[::1]:9000", "http://127.9.9.9"]
)
def test_metadata_urls_accept_plain_http_on_loopback(issuer: str) -> None:
    assert metadata_urls(issuer)[1] == issuer.rstrip("/") + "/.well-known/openid-configuration"


@pytest.mark.parametrize(
    ("issuer", "reason"),
    [
        ("http://as.example", "https is required"),
        ("http://10.0.0.1", "https is required"),
        ("http://localhost.evil.example", "https is required"),
        ("https://as.example?tenant=1", "query"),
        ("https://as.example/?", "query"),
        ("https://as.example/#frag", "fragment"),
        ("https://as.example/#", "fragment"),
        ("as.example/tenant1", "not an absolute URL"),
        ("", "not an absolute URL"),
        ("https:///no-host", "not an absolute URL"),
        ("ftp://as.example", "unsupported scheme"),
        ("https://user:pw@as.example", "credentials"),
        ("https://as.example:99999", "not a valid URL"),
        ("https://[::1", "not a valid URL"),
    ],
)
def test_metadata_urls_reject_an_invalid_issuer(issuer: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        metadata_urls(issuer)


def test_metadata_urls_error_masks_credentials_in_the_issuer() -> None:
    with pytest.raises(ConfigError, match="credentials") as info:
        metadata_urls("https://client:hunter2@as.example/tenant1")

    assert "hunter2" not in str(info.value)
    assert "'https://***@as.example/tenant1'" in str(info.value)


# --- parse_metadata -----------------------------------------------------------------------------------------


def test_parse_metadata_keeps_the_fields_the_grant_uses() -> None:
    doc = document(
        revocation_endpoint="https://as.example/tenant1/oauth2/revoke",
        jwks_uri="https://as.example/tenant1/jwks",
        token_endpoint_auth_methods_supported=["private_key_jwt", "client_secret_post"],
        response_types_supported=["code"],
    )

    parsed = parse_metadata(doc, expected_issuer=ISSUER)

    assert parsed == ServerMetadata(
        issuer=ISSUER,
        token_endpoint=TOKEN,
        revocation_endpoint="https://as.example/tenant1/oauth2/revoke",
        jwks_uri="https://as.example/tenant1/jwks",
        token_endpoint_auth_methods_supported=("private_key_jwt", "client_secret_post"),
    )


def test_parse_metadata_defaults_optional_fields() -> None:
    parsed = parse_metadata(document(), expected_issuer=ISSUER)

    assert (parsed.revocation_endpoint, parsed.jwks_uri) == (None, None)
    assert parsed.token_endpoint_auth_methods_supported == ("client_secret_basic",)  # RFC 8414 §2 default


def test_parse_metadata_treats_null_optional_endpoints_as_absent() -> None:
    parsed = parse_metadata(document(revocation_endpoint=None, jwks_uri=None), expected_issuer=ISSUER)

    assert (parsed.revocation_endpoint, parsed.jwks_uri) == (None, None)


def test_parse_metadata_keeps_the_rfc8705_mtls_aliases_of_the_endpoints_it_calls() -> None:
    aliases = {
        "token_endpoint": "https://mtls.as.example/tenant1/oauth2/token",
        "revocation_endpoint": "https://mtls.as.example/tenant1/oauth2/revoke",
        "userinfo_endpoint": "https://mtls.as.example/userinfo",
    }
    parsed = parse_metadata(document(mtls_endpoint_aliases=aliases), expected_issuer=ISSUER)

    assert parsed.token_endpoint == TOKEN  # the plain endpoint stays what it is
    assert parsed.mtls_token_endpoint == "https://mtls.as.example/tenant1/oauth2/token"
    assert parsed.mtls_revocation_endpoint == "https://mtls.as.example/tenant1/oauth2/revoke"


def test_parse_metadata_without_mtls_aliases_has_none() -> None:
    parsed = parse_metadata(document(mtls_endpoint_aliases={"token_endpoint": None}), expected_issuer=ISSUER)

    assert (parsed.mtls_token_endpoint, parsed.mtls_revocation_endpoint) == (None, None)


def test_parse_metadata_without_an_expected_issuer_accepts_the_documents_issuer() -> None:
    assert parse_metadata(document(issuer="https://other.example"), expected_issuer=None).issuer == (
        "https://other.example"
    )


@pytest.mark.parametrize("doc", [None, [], ["issuer"], "issuer", 42])
def test_parse_metadata_rejects_a_non_object(doc: object) -> None:
    with pytest.raises(TokenResponseError, match="not a JSON object") as info:
        parse_metadata(doc, expected_issuer=ISSUER)

    assert info.value.status is None
    assert info.value.payload == doc


def test_parse_metadata_rejects_a_different_issuer_as_a_mix_up_defence() -> None:
    doc = document(issuer="https://evil.example/tenant1")

    with pytest.raises(TokenResponseError, match=r"'issuer' 'https://evil\.example/tenant1' does not match") as info:
        parse_metadata(doc, expected_issuer=ISSUER)

    assert info.value.status is None
    assert info.value.payload == doc


def test_parse_metadata_issuer_must_be_identical_not_merely_equivalent() -> None:
    with pytest.raises(TokenResponseError, match="differ only in a trailing '/'"):
        parse_metadata(document(issuer=ISSUER + "/"), expected_issuer=ISSUER)


def test_parse_metadata_unrelated_issuers_get_no_trailing_slash_hint() -> None:
    with pytest.raises(TokenResponseError) as info:
        parse_metadata(document(issuer="https://b.example"), expected_issuer=ISSUER)

    assert "trailing" not in str(info.value)


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"issuer": None}, "metadata has no 'issuer'"),
        ({"issuer": 7}, "'issuer' is not a string"),
        ({"issuer": "http://as.example"}, "'issuer' 'http://as.example' is not acceptable: https is required"),
        ({"issuer": "https://as.example?x=1"}, "'issuer' .* is invalid: it must not contain a query"),
        ({"token_endpoint": None}, "metadata has no 'token_endpoint'"),
        ({"token_endpoint": ["https://as.example/t"]}, "'token_endpoint' is not a string"),
        ({"token_endpoint": "/oauth2/token"}, "'token_endpoint' .* not an absolute URL"),
        ({"token_endpoint": "http://as.example/token"}, "'token_endpoint' .* https is required"),
        ({"token_endpoint": "https://as.example/token#x"}, "'token_endpoint' .* fragment"),
        ({"token_endpoint": "https://u:p@as.example/token"}, "'token_endpoint' .* credentials"),
        ({"token_endpoint": "javascript:alert(1)"}, "'token_endpoint' .* not an absolute URL"),
        ({"revocation_endpoint": "http://as.example/revoke"}, "'revocation_endpoint' .* https is required"),
        ({"revocation_endpoint": 1}, "'revocation_endpoint' is not a string"),
        ({"jwks_uri": "file:///etc/jwks.json"}, "'jwks_uri' .* not an absolute URL"),
        ({"jwks_uri": "ws://as.example/jwks"}, "'jwks_uri' .* unsupported scheme 'ws'"),
        ({"token_endpoint_auth_methods_supported": "private_key_jwt"}, "not a list of strings"),
        ({"token_endpoint_auth_methods_supported": ["private_key_jwt", None]}, "not a list of strings"),
        ({"mtls_endpoint_aliases": ["https://as.example/t"]}, "'mtls_endpoint_aliases' is not a JSON object"),
        (
            {"mtls_endpoint_aliases": {"token_endpoint": "http://as.example/t"}},
            "'mtls_endpoint_aliases.token_endpoint' .* https is required",
        ),
        ({"mtls_endpoint_aliases": {"revocation_endpoint": 3}}, "'mtls_endpoint_aliases.revocation_endpoint' is not"),
    ],
)
def test_parse_metadata_rejects_an_invalid_field_and_names_it(fields: dict[str, Any], match: str) -> None:
    doc = {k: v for k, v in document(**fields).items() if v is not None}
    expected_issuer = doc.get("issuer") if isinstance(doc.get("issuer"), str) else ISSUER

    with pytest.raises(TokenResponseError, match=match) as info:
        parse_metadata(doc, expected_issuer=expected_issuer)  # type: ignore[arg-type]

    assert info.value.status is None
    assert info.value.payload == doc


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://127.0.0.1:8080/token",
        "http://127.0.0.53/token",
        "http://localhost/token",
        "http://LOCALHOST:1/token",
        "http://[::1]:8080/token",
    ],
)
def test_parse_metadata_accepts_plain_http_endpoints_on_loopback(endpoint: str) -> None:
    parsed = parse_metadata(document(token_endpoint=endpoint, jwks_uri=endpoint), expected_issuer=ISSUER)

    assert parsed.token_endpoint == endpoint


def test_parse_metadata_bounds_the_quoted_value() -> None:
    huge = "http://as.example/" + "a" * 10_000

    with pytest.raises(TokenResponseError) as info:
        parse_metadata(document(token_endpoint=huge), expected_issuer=ISSUER)

    assert len(str(info.value)) < 400


# --- MetadataCache ------------------------------------------------------------------------------------------


class CountingFetch:
    """A fetch that counts calls, can be held open until released, and can fail."""

    def __init__(self, *, fail: bool = False) -> None:
        self.calls = 0
        self.fail = fail
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self) -> ServerMetadata:
        self.calls += 1
        await self.release.wait()
        if self.fail:
            raise TokenResponseError(f"fetch {self.calls} failed", status=None)
        return metadata(f"https://as.example/token/{self.calls}")


async def test_cache_serves_a_fresh_entry_without_fetching_again() -> None:
    cache, fetch = MetadataCache(), CountingFetch()

    first = await cache.get(ISSUER, fetch)
    second = await cache.get(ISSUER, fetch)

    assert first is second
    assert fetch.calls == 1


async def test_cache_runs_one_fetch_for_100_concurrent_callers_of_a_cold_key() -> None:
    cache, fetch = MetadataCache(), CountingFetch()
    fetch.release.clear()

    callers = [asyncio.create_task(cache.get(ISSUER, fetch)) for _ in range(100)]
    await asyncio.sleep(0)
    fetch.release.set()
    results = await asyncio.wait_for(asyncio.gather(*callers), timeout=5)

    assert fetch.calls == 1
    assert all(result is results[0] for result in results)


async def test_cache_refetches_after_the_ttl() -> None:
    clock = FakeClock()
    cache, fetch = MetadataCache(ttl=60, clock=clock), CountingFetch()
    first = await cache.get(ISSUER, fetch)

    clock.now += 59.9
    assert await cache.get(ISSUER, fetch) is first
    clock.now += 0.1
    refreshed = await cache.get(ISSUER, fetch)

    assert fetch.calls == 2
    assert refreshed.token_endpoint == "https://as.example/token/2"


async def test_cache_with_zero_ttl_fetches_every_time() -> None:
    cache, fetch = MetadataCache(ttl=0, clock=FakeClock()), CountingFetch()

    await cache.get(ISSUER, fetch)
    await cache.get(ISSUER, fetch)

    assert fetch.calls == 2


async def test_cache_keeps_keys_apart() -> None:
    cache, fetch = MetadataCache(), CountingFetch()

    a = await cache.get("https://a.example", fetch)
    b = await cache.get("https://b.example", fetch)

    assert a != b
    assert fetch.calls == 2


async def test_cache_does_not_cache_a_failure() -> None:
    cache, fetch = MetadataCache(), CountingFetch(fail=True)
    with pytest.raises(TokenResponseError, match="fetch 1 failed"):
        await cache.get(ISSUER, fetch)

    fetch.fail = False
    recovered = await cache.get(ISSUER, fetch)

    assert fetch.calls == 2
    assert recovered.token_endpoint == "https://as.example/token/2"


async def test_cache_gives_every_waiter_the_failure_of_the_shared_fetch() -> None:
    cache, fetch = MetadataCache(), CountingFetch(fail=True)
    fetch.release.clear()

    callers = [asyncio.create_task(cache.get(ISSUER, fetch)) for _ in range(10)]
    await asyncio.sleep(0)
    fetch.release.set()
    outcomes = await asyncio.wait_for(asyncio.gather(*callers, return_exceptions=True), timeout=5)

    assert fetch.calls == 1
    assert all(isinstance(o, TokenResponseError) and str(o) == "fetch 1 failed" for o in outcomes)


async def test_cache_caller_arriving_after_a_failure_starts_a_new_fetch() -> None:
    cache, fetch = MetadataCache(), CountingFetch(fail=True)
    first = asyncio.create_task(cache.get(ISSUER, fetch))
    with pytest.raises(TokenResponseError):
        await first

    fetch.fail = False
    await cache.get(ISSUER, fetch)

    assert fetch.calls == 2


async def test_cache_a_cancelled_caller_does_not_cancel_the_fetch_for_the_others() -> None:
    cache, fetch = MetadataCache(), CountingFetch()
    fetch.release.clear()
    quitter = asyncio.create_task(cache.get(ISSUER, fetch))
    stayer = asyncio.create_task(cache.get(ISSUER, fetch))
    await asyncio.sleep(0)

    quitter.cancel()
    fetch.release.set()

    assert (await asyncio.wait_for(stayer, timeout=5)).token_endpoint == "https://as.example/token/1"
    assert quitter.cancelled()
    assert fetch.calls == 1


async def abandon_a_held_fetch(cache: MetadataCache, fetch: CountingFetch) -> None:
    """Start a fetch through ``cache``, cancel its only caller, then let the fetch finish on its own."""
    fetch.release.clear()
    quitter = asyncio.create_task(cache.get(ISSUER, fetch))
    await asyncio.sleep(0)
    quitter.cancel()
    fetch.release.set()
    for _ in range(5):
        await asyncio.sleep(0)


async def test_cache_a_fetch_whose_callers_all_left_still_fills_the_cache() -> None:
    cache, fetch = MetadataCache(), CountingFetch()
    await abandon_a_held_fetch(cache, fetch)

    await cache.get(ISSUER, fetch)

    assert fetch.calls == 1


async def test_cache_an_abandoned_failed_fetch_is_not_reported_as_unretrieved() -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    cache, fetch = MetadataCache(), CountingFetch(fail=True)
    await abandon_a_held_fetch(cache, fetch)

    gc.collect()

    assert reported == []
    loop.set_exception_handler(None)


async def test_cache_invalidate_forces_the_next_get_to_fetch() -> None:
    cache, fetch = MetadataCache(), CountingFetch()
    await cache.get(ISSUER, fetch)

    cache.invalidate(ISSUER)
    cache.invalidate("https://never-cached.example")
    refreshed = await cache.get(ISSUER, fetch)

    assert fetch.calls == 2
    assert refreshed.token_endpoint == "https://as.example/token/2"


@pytest.mark.parametrize("ttl", [-1.0, float("nan"), float("inf")])
def test_cache_rejects_an_unusable_ttl(ttl: float) -> None:
    with pytest.raises(ConfigError, match="ttl"):
        MetadataCache(ttl=ttl)
