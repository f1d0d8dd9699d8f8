"""Compiling settings into a Runtime, and RuntimeHolder's atomic swap, cache retention and rotation handling."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from tests.integration.runtime.runtime_support import FakeIdp, Upstream, relay_config
from tokenrelay.grant.errors import ConfigError
from tokenrelay.metrics import Metrics
from tokenrelay.runtime import Runtime, RuntimeHolder, compile_runtime
from tokenrelay.settings import Settings, build_settings
from tokenrelay.tokens import TokenCache


@pytest.fixture(name="session")
async def _session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture(name="cache")
async def _cache() -> AsyncIterator[TokenCache]:
    cache = TokenCache()
    yield cache
    await cache.aclose()


def settings_with(idp: FakeIdp, upstream: Upstream, **profile_changes: Any) -> Settings:
    config = relay_config(idp, upstream)
    config["profiles"]["billing"].update(profile_changes)
    return build_settings(config)


async def cached(cache: TokenCache, runtime: Runtime, profile: str = "billing") -> str:
    binding = runtime.bindings[profile]
    return (await cache.get(binding.key, binding.fetch, binding.policy)).access_token


async def test_compile_builds_a_binding_per_profile_and_the_routes(
    idp: FakeIdp, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    """The route table matches the configured prefix and carries the profile's binding."""
    runtime = await compile_runtime(settings_with(idp, upstream), session=session, previous=None)
    match = runtime.routes.match(None, "/billing/invoices")
    assert match is not None
    assert match.route.binding is runtime.bindings["billing"]
    assert runtime.generation == 1
    assert set(runtime.clients) == {"billing"}


async def test_binding_fetches_through_the_grant_core(
    idp: FakeIdp, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    """The binding's fetcher sends the profile's client id and scope to the token endpoint."""
    runtime = await compile_runtime(settings_with(idp, upstream), session=session, previous=None)
    issued = await runtime.bindings["billing"].fetch()
    assert issued.access_token == "tok-1"
    assert idp.forms[0]["grant_type"] == "client_credentials"
    assert idp.forms[0]["scope"] == "invoices.read"


async def test_unchanged_profile_keeps_its_key_and_client(
    idp: FakeIdp, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    """Recompiling the same profile gives the same cache key and reuses the client (discovery cache kept)."""
    first = await compile_runtime(settings_with(idp, upstream), session=session, previous=None)
    second = await compile_runtime(settings_with(idp, upstream), session=session, previous=first)
    assert second.generation == 2
    assert second.bindings["billing"].key == first.bindings["billing"].key
    assert second.clients["billing"] is first.clients["billing"]


async def test_changed_token_params_give_a_new_key(
    idp: FakeIdp, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    """Another scope is another token: the key changes."""
    first = await compile_runtime(settings_with(idp, upstream), session=session, previous=None)
    second = await compile_runtime(
        settings_with(idp, upstream, scope=["invoices.write"]), session=session, previous=first
    )
    assert second.bindings["billing"].key != first.bindings["billing"].key


async def test_a_changed_request_shape_gives_a_new_key(
    idp: FakeIdp, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    """A setting that changes the token request (here the client id's parameter name) is another token."""
    first = await compile_runtime(settings_with(idp, upstream), session=session, previous=None)
    client = {"id": "relay-client", "secret": "relay-secret-value", "idParamName": "app_id"}
    second = await compile_runtime(settings_with(idp, upstream, client=client), session=session, previous=first)
    assert second.bindings["billing"].key != first.bindings["billing"].key


async def test_a_changed_transport_setting_keeps_the_key(
    idp: FakeIdp, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    """A timeout only changes how the request travels, not the token: the key (and so the token) is kept."""
    first = await compile_runtime(settings_with(idp, upstream), session=session, previous=None)
    second = await compile_runtime(settings_with(idp, upstream, http={"timeout": 7}), session=session, previous=first)
    assert second.bindings["billing"].key == first.bindings["billing"].key
    assert second.clients["billing"] is not first.clients["billing"]


async def test_compile_error_lists_every_profile_problem(
    idp: FakeIdp, upstream: Upstream, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """A secret that cannot be read at compile time is reported under its profile path."""
    config = relay_config(idp, upstream)
    config["profiles"]["billing"]["client"] = {"id": "relay-client", "secret_file": str(tmp_path / "absent")}
    with pytest.raises(ConfigError) as caught:
        await compile_runtime(build_settings(config), session=session, previous=None)
    assert caught.value.paths == ("profiles.billing.client.secret_file",)


async def test_reload_swaps_and_keeps_tokens_whose_key_is_unchanged(
    idp: FakeIdp, upstream: Upstream, session: aiohttp.ClientSession, cache: TokenCache
) -> None:
    """A reload that only changes a route keeps the profile's token: no new token request."""
    runtime = await compile_runtime(settings_with(idp, upstream), session=session, previous=None)
    holder = RuntimeHolder(runtime, session=session, cache=cache)
    assert await cached(cache, runtime) == "tok-1"
    config = relay_config(idp, upstream)
    config["routes"][0]["match"] = {"path_prefix": "/invoices"}
    await holder.reload(build_settings(config))
    assert holder.current.generation == 2
    assert holder.current.routes.match(None, "/invoices/1") is not None
    assert holder.current.routes.match(None, "/billing/1") is None
    assert await cached(cache, holder.current) == "tok-1"
    assert idp.issued == 1


async def test_reload_with_a_new_key_drops_the_old_token(
    idp: FakeIdp, upstream: Upstream, session: aiohttp.ClientSession, cache: TokenCache
) -> None:
    """A reload that changes the token params drops the old token and fetches a new one."""
    runtime = await compile_runtime(settings_with(idp, upstream), session=session, previous=None)
    holder = RuntimeHolder(runtime, session=session, cache=cache)
    await cached(cache, runtime)
    await holder.reload(settings_with(idp, upstream, scope=["invoices.write"]))
    assert cache.peek(runtime.bindings["billing"].key) is None
    assert await cached(cache, holder.current) == "tok-2"


async def test_rejected_reload_keeps_the_old_runtime(
    idp: FakeIdp, upstream: Upstream, session: aiohttp.ClientSession, cache: TokenCache, tmp_path: Path
) -> None:
    """A config that does not compile raises, is counted, and leaves the serving runtime untouched."""
    metrics = Metrics("test")
    runtime = await compile_runtime(settings_with(idp, upstream), session=session, previous=None)
    holder = RuntimeHolder(runtime, session=session, cache=cache, metrics=metrics)
    bad = settings_with(idp, upstream, client={"id": "relay-client", "secret_file": str(tmp_path / "absent")})
    with pytest.raises(ConfigError):
        await holder.reload(bad)
    assert holder.current is runtime
    assert 'tokenrelay_config_reloads_total{outcome="error"} 1' in metrics.render()


async def test_rotated_secret_file_gives_a_new_key_and_drops_the_old_token(
    idp: FakeIdp, upstream: Upstream, session: aiohttp.ClientSession, cache: TokenCache, tmp_path: Path
) -> None:
    """Rewriting ``secret_file`` makes ``check_rotation`` recompile: new digest, new key, old token gone."""
    secret_file = tmp_path / "client-secret"
    secret_file.write_text("first-secret")
    settings = settings_with(idp, upstream, client={"id": "relay-client", "secret_file": str(secret_file)})
    runtime = await compile_runtime(settings, session=session, previous=None)
    holder = RuntimeHolder(runtime, session=session, cache=cache)
    await cached(cache, runtime)
    assert not await holder.check_rotation()
    secret_file.write_text("second-secret")
    assert await holder.check_rotation()
    assert holder.current.bindings["billing"].key != runtime.bindings["billing"].key
    assert cache.peek(runtime.bindings["billing"].key) is None
    assert await cached(cache, holder.current) == "tok-2"
    assert idp.forms[-1].get("client_secret") is None  # Basic auth: the secret is not in the form


async def test_prefetch_gets_the_first_token_in_the_background(
    idp: FakeIdp, upstream: Upstream, session: aiohttp.ClientSession, cache: TokenCache
) -> None:
    """Profiles with ``prefetch`` get their token without any request; the others do not."""
    config = relay_config(idp, upstream)
    config["profiles"]["billing"]["prefetch"] = True
    config["profiles"]["lazy"] = {**config["profiles"]["billing"], "prefetch": False, "scope": ["other"]}
    runtime = await compile_runtime(build_settings(config), session=session, previous=None)
    holder = RuntimeHolder(runtime, session=session, cache=cache)
    holder.prefetch(runtime)
    for _ in range(200):
        if cache.peek(runtime.bindings["billing"].key) is not None:
            break
        await asyncio.sleep(0.01)
    assert cache.peek(runtime.bindings["billing"].key) is not None
    assert cache.peek(runtime.bindings["lazy"].key) is None
    assert idp.issued == 1
    await holder.aclose()


async def restart_warnings(
    idp: FakeIdp,
    upstream: Upstream,
    session: aiohttp.ClientSession,
    cache: TokenCache,
    *reloads: dict[str, Any],
) -> list[object]:
    """Reload a holder with ``relay_config(**sections)`` for each of ``reloads`` in turn; return the sections
    each ``config_change_needs_restart`` warning named."""
    runtime = await compile_runtime(settings_with(idp, upstream), session=session, previous=None)
    holder = RuntimeHolder(runtime, session=session, cache=cache)
    with capture_logs() as logs:
        for sections in reloads:
            await holder.reload(build_settings(relay_config(idp, upstream, **sections)))
    await holder.aclose()
    return [entry["sections"] for entry in logs if entry["event"] == "config_change_needs_restart"]


async def test_reload_warns_when_a_restart_only_section_changed(
    idp: FakeIdp, upstream: Upstream, session: aiohttp.ClientSession, cache: TokenCache
) -> None:
    """Listeners and the access policy are read at startup: a reload that changes them says a restart is needed."""
    listen = {"host": "127.0.0.1", "port": 1234}
    assert await restart_warnings(idp, upstream, session, cache, {"listen": listen}) == [["listen"]]


async def test_reload_of_the_readiness_mode_alone_needs_no_restart(
    idp: FakeIdp, upstream: Upstream, session: aiohttp.ClientSession, cache: TokenCache
) -> None:
    """``admin.readiness`` is read on every ``/readyz``: changing it is no restart-only change of ``admin``."""
    strict = {"host": "127.0.0.1", "port": 0, "readiness": "strict"}
    warnings = await restart_warnings(
        idp, upstream, session, cache, {"admin": strict}, {"admin": strict | {"port": 1234}}
    )
    assert warnings == [["admin"]]  # only the port change
