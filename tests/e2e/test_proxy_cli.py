"""The proxy end to end: ``tokenrelay serve --config FILE`` as a subprocess, oidc-provider, a protected API.

Everything a user does is done for real: a config file with credentials from a ``secret_file``, an environment
variable and a private key file; the CLI started as a process; requests sent to its listener with no
credentials; a real, independent authorization server issuing (and revoking) the tokens; a resource server that
validates them against the provider's JWKS or introspection endpoint. After each test the proxy is stopped with
SIGTERM and its whole output is searched for every credential and every token it handled: none may appear.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDictProxy
from pytest_aiohttp import AiohttpServer

from tests.e2e.harness import OPAQUE_RESOURCE, RESOURCE, SHORT_LIVED_RESOURCE, OidcProvider, protected_api_config
from tests.e2e.protected_api import SEEN, Seen, create_app, fingerprint
from tests.e2e.proxy_harness import (
    Profile,
    Relay,
    RelayConfig,
    capture_tokens,
    grants_logged,
    leaks,
    relay_config,
    run_cli,
    start_relay,
    wait_for_readyz,
)
from tokenrelay.demo_support import metric_value

pytestmark = pytest.mark.e2e

#: One profile (and route ``/<name>/``) per client authentication method; endpoints discovered or spelled out.
PROFILES = (
    Profile("basic", "client_secret_basic", RESOURCE),
    Profile("post", "client_secret_post", RESOURCE, discovery=False),
    Profile("pkjwt", "private_key_jwt", RESOURCE),
    Profile("secretjwt", "client_secret_jwt", RESOURCE, discovery=False),
)
SHORT = Profile("short", "client_secret_basic", SHORT_LIVED_RESOURCE)
OPAQUE = Profile("opaque", "client_secret_post", OPAQUE_RESOURCE, discovery=False)


@dataclass(frozen=True, slots=True)
class Api:
    """The protected API for one test, and the raw tokens it received (in memory only, for leak checks)."""

    url: str
    seen: list[Seen]
    tokens: list[str]


@pytest.fixture
async def api(oidc_provider: OidcProvider, aiohttp_server: AiohttpServer) -> Api:
    config = protected_api_config(oidc_provider, (RESOURCE, SHORT_LIVED_RESOURCE, OPAQUE_RESOURCE))
    app = create_app(config)
    tokens = capture_tokens(app)
    server = await aiohttp_server(app, host="127.0.0.1")
    return Api(url=str(server.make_url("/")), seen=app[SEEN], tokens=tokens)


Start = Callable[..., Awaitable[tuple[Relay, RelayConfig]]]


@pytest.fixture
async def relay(oidc_provider: OidcProvider, api: Api, tmp_path: Path) -> AsyncIterator[Start]:
    """``await relay(profiles, **options)`` writes a config and starts ``tokenrelay serve`` with it.

    Afterwards: SIGTERM, and the proxy's whole output must hold no credential and no token it handled.
    """
    started: list[tuple[Relay, RelayConfig]] = []

    async def start(profiles: tuple[Profile, ...] = PROFILES, **options: Any) -> tuple[Relay, RelayConfig]:
        workdir = tmp_path / f"relay-{len(started)}"
        workdir.mkdir()
        config = relay_config(workdir, oidc_provider, api.url, profiles, **options)
        started.append((await start_relay(config, workdir), config))
        return started[-1]

    yield start
    for process, config in started:
        await process.stop()
        found = leaks(process.output(), config.credentials, api.tokens)
        assert not found, f"the proxy's output contains {found}"


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, Any], CIMultiDictProxy[str]]:
    async with session.get(url) as response:
        return response.status, await response.json(content_type=None), response.headers


async def metrics(session: aiohttp.ClientSession, relay: Relay) -> str:
    async with session.get(f"{relay.admin_url}/metrics") as response:
        return await response.text()


async def test_each_route_reaches_the_api_with_a_jwt_for_its_profiles_client(
    relay: Start, api: Api, session: aiohttp.ClientSession, oidc_provider: OidcProvider
) -> None:
    proxy, _ = await relay()
    assert (await wait_for_readyz(session, proxy))[0] == 200

    for profile in PROFILES:
        status, body, _ = await get(session, f"{proxy.proxy_url}/{profile.name}/items?page=2")

        assert status == 200, body
        expected = (oidc_provider.client(profile.auth_method).client_id, "jwt", RESOURCE, "/items?page=2")
        assert (body["client_id"], body["token_format"], body["aud"], body["path"]) == expected
    assert [seen.status for seen in api.seen] == [200] * len(PROFILES)


async def test_concurrent_requests_make_one_token_request_per_profile(
    relay: Start, api: Api, session: aiohttp.ClientSession, oidc_provider: OidcProvider
) -> None:
    proxy, _ = await relay(prefetch=False)  # the first requests trigger the fetch: single-flight under load
    clients = {p.name: oidc_provider.client(p.auth_method).client_id for p in PROFILES}
    grants_before = {name: grants_logged(oidc_provider, client_id) for name, client_id in clients.items()}

    urls = [f"{proxy.proxy_url}/{profile.name}/n{i}" for i in range(10) for profile in PROFILES]
    answers = await asyncio.gather(*(get(session, url) for url in urls))

    assert [status for status, _, _ in answers] == [200] * len(urls)
    exposition = await metrics(session, proxy)
    fetches = {name: metric_value(exposition, "tokenrelay_token_fetches_total", profile=name) for name in clients}
    assert fetches == dict.fromkeys(clients, 1.0)
    grants = {
        name: grants_logged(oidc_provider, client_id) - grants_before[name] for name, client_id in clients.items()
    }
    assert grants == dict.fromkeys(clients, 1)


async def test_short_lived_tokens_are_refreshed_ahead_and_requests_keep_succeeding(
    relay: Start, api: Api, session: aiohttp.ClientSession
) -> None:
    # Tokens live 3 s (``exp`` in whole seconds, so really 2-3 s); refreshing 1.5 s ahead keeps a margin.
    proxy, _ = await relay((SHORT,), refresh_before_expiry="1500ms")
    assert (await wait_for_readyz(session, proxy))[0] == 200

    statuses = []
    deadline = time.monotonic() + 4.5  # spans at least two refreshes
    while time.monotonic() < deadline:
        statuses.append((await get(session, f"{proxy.proxy_url}/short/tick"))[0])
        await asyncio.sleep(0.2)

    assert set(statuses) == {200}
    assert len({seen.token_fingerprint for seen in api.seen}) >= 3
    assert [seen.status for seen in api.seen if seen.status != 200] == []  # never sent an expired token
    assert metric_value(await metrics(session, proxy), "tokenrelay_replays_total", route="short") == 0


async def revoke_at_provider(session: aiohttp.ClientSession, provider: OidcProvider, token: str) -> int:
    """RFC 7009 revocation of one of the opaque profile's tokens, as that client (``client_secret_post``)."""
    client = provider.client(OPAQUE.auth_method)
    form = {"token": token, "token_type_hint": "access_token", "client_id": client.client_id}
    form["client_secret"] = client.secret or ""
    async with session.post(provider.revocation_endpoint, data=form) as response:
        return response.status


async def test_revoked_token_gets_upstream_401_then_one_refresh_and_the_client_still_gets_200(
    relay: Start, api: Api, session: aiohttp.ClientSession, oidc_provider: OidcProvider
) -> None:
    proxy, _ = await relay((OPAQUE,))
    assert (await wait_for_readyz(session, proxy))[0] == 200
    assert (await get(session, f"{proxy.proxy_url}/opaque/before"))[0] == 200
    assert await revoke_at_provider(session, oidc_provider, api.tokens[-1]) == 200

    status, body, _ = await get(session, f"{proxy.proxy_url}/opaque/after")

    assert (status, body["token_format"]) == (200, "opaque")
    assert [(s.path, s.status) for s in api.seen] == [("/before", 200), ("/after", 401), ("/after", 200)]
    assert api.seen[1].error_description == "the access token is not active (revoked or expired)"
    assert api.seen[0].token_fingerprint == api.seen[1].token_fingerprint != api.seen[2].token_fingerprint
    exposition = await metrics(session, proxy)
    assert metric_value(exposition, "tokenrelay_replays_total", route="opaque") == 1
    assert metric_value(exposition, "tokenrelay_token_fetches_total", profile="opaque", outcome="ok") == 2


async def test_token_command_prints_a_token_the_api_accepts(
    tmp_path: Path, api: Api, session: aiohttp.ClientSession, oidc_provider: OidcProvider
) -> None:
    config = relay_config(tmp_path, oidc_provider, api.url, PROFILES)

    done = await run_cli("token", "pkjwt", "--config", str(config.path), env=config.env)

    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert done.stdout == f"{token}\n"
    async with session.get(api.url + "check", headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 200
        assert (await response.json())["client_id"] == oidc_provider.client("private_key_jwt").client_id
    assert leaks(done.stderr, config.credentials, [token]) == []


async def test_check_config_exits_0_and_prints_no_secret(tmp_path: Path, api: Api, oidc_provider: OidcProvider) -> None:
    config = relay_config(tmp_path, oidc_provider, api.url, PROFILES)

    done = await run_cli("check-config", str(config.path), env=config.env)

    assert done.returncode == 0, done.stderr
    assert "secretjwt" in done.stdout
    assert "***" in done.stdout  # the inline secret, redacted
    assert leaks(done.stdout + done.stderr, config.credentials, []) == []


async def test_wrong_secret_makes_readyz_503_naming_the_profile(relay: Start, session: aiohttp.ClientSession) -> None:
    proxy, _ = await relay((PROFILES[0],), wrong_secret=True)

    status, body = await wait_for_readyz(
        session, proxy, until=lambda _, body: body["profiles"]["basic"]["reason"] == "permanent_failure"
    )

    assert status == 503
    assert body["profiles"]["basic"] == {"ready": False, "reason": "permanent_failure", "last_error": "invalid_client"}


async def test_wrong_secret_answers_503_token_unavailable_with_retry_after(
    relay: Start, api: Api, session: aiohttp.ClientSession
) -> None:
    proxy, _ = await relay((PROFILES[0],), wrong_secret=True)
    await wait_for_readyz(session, proxy, until=lambda _, body: body["profiles"]["basic"]["reason"] != "awaiting_token")

    status, body, headers = await get(session, f"{proxy.proxy_url}/basic/items")

    assert (status, body["error"]) == (503, "token_unavailable")
    assert int(headers["Retry-After"]) > 0
    assert api.seen == []  # nothing reached the upstream without a token


async def test_sigterm_stops_the_proxy_with_exit_status_0(relay: Start, session: aiohttp.ClientSession) -> None:
    proxy, _ = await relay((PROFILES[0],))
    assert (await wait_for_readyz(session, proxy))[0] == 200

    assert await proxy.stop(signal.SIGTERM) == 0
    assert [e["event"] for e in proxy.events() if e["event"] in ("signal_received", "stopped")] == [
        "signal_received",
        "stopped",
    ]


async def test_proxy_output_at_debug_level_contains_no_secret_and_no_token(
    relay: Start, api: Api, session: aiohttp.ClientSession
) -> None:
    proxy, config = await relay((*PROFILES, OPAQUE), log_level="debug")
    assert (await wait_for_readyz(session, proxy))[0] == 200

    for profile in (*PROFILES, OPAQUE):
        assert (await get(session, f"{proxy.proxy_url}/{profile.name}/x"))[0] == 200
    await proxy.stop()

    assert len(api.tokens) == len(PROFILES) + 1
    assert leaks(proxy.output(), config.credentials, api.tokens) == []
    # It did talk about every token, the allowed way: by fingerprint (so the check above searched real output).
    assert all(fingerprint(token) in proxy.output() for token in api.tokens)
