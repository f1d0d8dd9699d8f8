"""The serving shell in-process: both listeners, token injection, reloads under traffic, the graceful drain."""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from structlog.testing import capture_logs

from tests.integration.runtime.runtime_support import FakeIdp, Upstream, relay_config
from tests.integration.serving_support import serving
from tokenrelay.app import SERVICES, Services, _peer_allowed, create_proxy_app
from tokenrelay.grant.errors import ConfigError
from tokenrelay.settings import build_settings


def url(address: tuple[str, int], path: str) -> str:
    return f"http://{address[0]}:{address[1]}{path}"


async def test_request_through_the_proxy_gets_the_token(idp: FakeIdp, upstream: Upstream) -> None:
    """A request on a route reaches the upstream with ``Authorization: Bearer <token>`` injected."""
    async with (
        serving(relay_config(idp, upstream)) as listening,
        aiohttp.ClientSession() as client,
        client.get(url(listening.proxy, "/billing/invoices")) as response,
    ):
        body = await response.json()
    assert response.status == 200
    assert body == {"authorization": "Bearer tok-1", "path": "/invoices"}


async def test_admin_listener_answers_on_its_own_port(idp: FakeIdp, upstream: Upstream) -> None:
    """``/healthz`` is served by the admin listener, and is not a proxied path on the proxy listener."""
    async with serving(relay_config(idp, upstream)) as listening, aiohttp.ClientSession() as client:
        assert listening.admin is not None
        async with client.get(url(listening.admin, "/healthz")) as response:
            assert response.status == 200
        async with client.get(url(listening.proxy, "/healthz")) as response:
            assert (response.status, (await response.json())["error"]) == (404, "no_route")


async def test_upstream_pool_metrics_are_recorded_without_trace_hooks(idp: FakeIdp, upstream: Upstream) -> None:
    """The upstream session's connector counts opened and reused connections (no TraceConfig on the hot path)."""
    async with serving(relay_config(idp, upstream)) as listening, aiohttp.ClientSession() as client:
        assert listening.admin is not None
        for _ in range(3):
            async with client.get(url(listening.proxy, "/billing/invoices")) as response:
                assert response.status == 200
        async with client.get(url(listening.admin, "/metrics")) as response:
            text = await response.text()
    assert 'tokenrelay_upstream_connections_total{kind="new"} 1' in text
    assert 'tokenrelay_upstream_connections_total{kind="reused"} 2' in text


async def test_connect_reaches_the_proxy_handler(idp: FakeIdp, upstream: Upstream) -> None:
    """``CONNECT host:443`` is answered by the proxy (refused with its JSON error), not by the router's 404."""
    async with serving(relay_config(idp, upstream)) as listening:
        reader, writer = await asyncio.open_connection(*listening.proxy)
        writer.write(b"CONNECT billing.example:443 HTTP/1.1\r\nHost: billing.example:443\r\n\r\n")
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        length = next(
            int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
        )
        body = await asyncio.wait_for(reader.readexactly(length), 5)
        writer.close()
        await writer.wait_closed()
    assert head.split()[1] == b"405"
    assert json.loads(body)["error"] == "connect_not_supported"


async def test_startup_fails_on_a_config_that_does_not_compile(
    idp: FakeIdp, upstream: Upstream, tmp_path: Path
) -> None:
    """A profile whose secret cannot be read stops startup with the ConfigError; nothing is left listening."""
    config = relay_config(idp, upstream)
    config["profiles"]["billing"]["client"] = {"id": "relay-client", "secret_file": str(tmp_path / "absent")}
    with pytest.raises(ConfigError):
        async with serving(config):
            pass


async def test_admin_listener_admits_loopback_when_allow_clients_is_set(idp: FakeIdp, upstream: Upstream) -> None:
    """``allow_clients`` restricts the admin listener, but loopback peers (local probes, port-forwards) pass."""
    config = relay_config(idp, upstream, access={"allow_clients": ["10.0.0.0/8"]})
    async with serving(config) as listening, aiohttp.ClientSession() as client:
        assert listening.admin is not None
        async with client.get(url(listening.admin, "/healthz")) as response:
            assert response.status == 200


async def test_drain_lets_the_in_flight_request_finish_and_refuses_new_connections(
    idp: FakeIdp, upstream: Upstream
) -> None:
    """After stop: the listener is closed at once, the slow request in flight still completes with 200."""
    stop = asyncio.Event()
    async with serving(relay_config(idp, upstream), stop=stop) as listening, aiohttp.ClientSession() as client:
        slow = asyncio.create_task(client.get(url(listening.proxy, "/billing/slow")))
        await asyncio.wait_for(upstream.slow_started.wait(), 5)
        stop.set()
        await asyncio.sleep(0.1)
        with pytest.raises(aiohttp.ClientConnectionError):
            async with aiohttp.ClientSession() as fresh:
                await fresh.get(url(listening.proxy, "/billing/fast"))
        upstream.release.set()
        response = await asyncio.wait_for(slow, 5)
        assert response.status == 200
        response.release()


@asynccontextmanager
async def proxy_app(config: dict[str, Any], config_path: Path | None = None) -> AsyncIterator[tuple[str, Services]]:
    """The proxy app alone on port 0; yields its base URL and its services (holder, reloader ...)."""
    runner = web.AppRunner(create_proxy_app(build_settings(config), config_path=config_path), shutdown_timeout=5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", runner.app[SERVICES]
    finally:
        await runner.cleanup()


async def test_in_flight_request_finishes_on_the_runtime_it_started_with(
    idp: FakeIdp, upstream: Upstream, tmp_path: Path
) -> None:
    """A reload that removes the route does not break a request already being forwarded on it."""
    config = relay_config(idp, upstream)
    async with proxy_app(config) as (base, services), aiohttp.ClientSession() as client:
        slow = asyncio.create_task(client.get(f"{base}/billing/slow"))
        await asyncio.wait_for(upstream.slow_started.wait(), 5)
        config["routes"][0]["match"] = {"path_prefix": "/elsewhere"}
        await services.holder.reload(build_settings(config))
        async with client.get(f"{base}/billing/other") as response:
            assert response.status == 404  # new requests see the new routes
        upstream.release.set()
        async with await asyncio.wait_for(slow, 5) as response:
            assert response.status == 200
            assert (await response.json())["authorization"] == "Bearer tok-1"


async def test_reload_from_a_bad_file_keeps_the_old_routes(idp: FakeIdp, upstream: Upstream, tmp_path: Path) -> None:
    """A file that does not validate is rejected (logged with its paths); requests keep being served."""
    path = tmp_path / "relay.yaml"
    path.write_text(yaml.safe_dump(relay_config(idp, upstream)))
    async with proxy_app(relay_config(idp, upstream), config_path=path) as (base, services):
        path.write_text("routes:\n  - {name: broken, match: {path_prefix: nope}}\n")
        with capture_logs() as logs:
            assert not await services.reloader.reload_from_file()
        async with aiohttp.ClientSession() as client, client.get(f"{base}/billing/x") as response:
            assert response.status == 200
    assert services.holder.current.generation == 1
    rejected = [entry for entry in logs if entry["event"] == "config_reload_rejected"]
    assert len(rejected) == 1
    assert any(error.startswith("routes.0.match") for error in rejected[0]["errors"])
    assert any(error.startswith("routes.0.upstream") for error in rejected[0]["errors"])


async def test_reload_from_a_good_file_swaps_the_routes(idp: FakeIdp, upstream: Upstream, tmp_path: Path) -> None:
    """A valid file is compiled and swapped: the new prefix routes, the old one no longer does."""
    config = relay_config(idp, upstream)
    path = tmp_path / "relay.yaml"
    path.write_text(yaml.safe_dump(config))
    async with proxy_app(config, config_path=path) as (base, services), aiohttp.ClientSession() as client:
        config["routes"][0]["match"] = {"path_prefix": "/invoices"}
        path.write_text(yaml.safe_dump(config))
        assert await services.reloader.reload_from_file()
        async with client.get(f"{base}/invoices/1") as response:
            assert (await response.json())["path"] == "/1"
        async with client.get(f"{base}/billing/1") as response:
            assert response.status == 404
    assert services.holder.current.generation == 2


async def test_config_file_watch_reloads_on_change(idp: FakeIdp, upstream: Upstream, tmp_path: Path) -> None:
    """With ``server.watch_config`` the file is polled and a change is applied without a signal."""
    config = relay_config(idp, upstream, server={"watch_config": True, "watch_interval": 0.02})
    path = tmp_path / "relay.yaml"
    path.write_text(yaml.safe_dump(config))
    async with proxy_app(config, config_path=path) as (_, services):
        services.reloader.start()
        config["routes"][0]["match"] = {"path_prefix": "/watched"}
        path.write_text(yaml.safe_dump(config))
        for _ in range(250):
            if services.holder.current.generation == 2:
                break
            await asyncio.sleep(0.02)
        assert services.holder.current.routes.match(None, "/watched/x") is not None


async def test_periodic_check_picks_up_a_rotated_secret_file(idp: FakeIdp, upstream: Upstream, tmp_path: Path) -> None:
    """The credential watch recompiles when ``secret_file`` changes: the next request uses a new token."""
    secret_file = tmp_path / "client-secret"
    secret_file.write_text("first-secret")
    config = relay_config(idp, upstream, server={"secret_check_interval": 0.02})
    config["profiles"]["billing"]["client"] = {"id": "relay-client", "secret_file": str(secret_file)}
    async with proxy_app(config) as (base, services), aiohttp.ClientSession() as client:
        services.reloader.start()
        async with client.get(f"{base}/billing/x") as response:
            assert (await response.json())["authorization"] == "Bearer tok-1"
        secret_file.write_text("second-secret")
        for _ in range(250):
            if services.holder.current.generation == 2:
                break
            await asyncio.sleep(0.02)
        async with client.get(f"{base}/billing/x") as response:
            assert (await response.json())["authorization"] == "Bearer tok-2"


@pytest.mark.parametrize(
    ("peer", "allowed"),
    [
        ("10.1.2.3", True),
        ("192.168.1.1", False),
        ("127.0.0.1", True),
        ("::1", True),
        ("::ffff:10.0.0.1", True),
        ("::ffff:192.168.1.1", False),
        ("::1%lo", True),
        ("fe80::1%eth0", False),
        (None, False),
        ("not-an-ip", False),
    ],
)
def test_admin_peer_filter(peer: str | None, allowed: bool) -> None:
    """The admin listener admits loopback and ``allow_clients`` peers (IPv4-mapped IPv6 unwrapped), nothing else."""
    assert _peer_allowed(peer, (ipaddress.ip_network("10.0.0.0/8"),)) is allowed
