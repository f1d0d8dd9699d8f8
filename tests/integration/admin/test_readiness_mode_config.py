"""``admin.readiness`` end to end: ``serve`` in-process, an IdP that answers 500, a ``prefetch`` profile.

The mode comes from the configuration and is read on every probe, so a reload (SIGHUP or the file watch) that
changes it flips ``/readyz`` without a restart. Each test first waits until the prefetch has really failed (seen
on ``/tokens``), so a 503 means "the mode says no token is not enough", not "nothing has happened yet".
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from tests.integration.admin.conftest import CLIENT_SECRET, AdminStack
from tests.integration.serving_support import ServerFactory, eventually, serving, token_endpoint
from tests.shared_fixtures import clean_environment as clean_environment  # autouse
from tokenrelay.admin import ReadinessCheck
from tokenrelay.server import Listening
from tokenrelay.settings import Settings


@pytest.fixture(name="failing_idp")
async def _failing_idp(aiohttp_server: ServerFactory) -> str:
    """A token endpoint that always answers 500 ``server_error`` (transient: retrying may help); its base URL."""

    async def token(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"error": "server_error"}, status=500)

    return await token_endpoint(aiohttp_server, token)


def relay_config(idp_url: str, readiness: str, **server: Any) -> dict[str, Any]:
    """One ``prefetch`` profile against ``idp_url``; both listeners on loopback port 0."""
    return {
        "listen": {"host": "127.0.0.1", "port": 0},
        "admin": {"host": "127.0.0.1", "port": 0, "readiness": readiness},
        "server": {"shutdown_grace": 1.0, **server},
        "profiles": {
            "billing": {
                "client": {"id": "readiness-client", "secret": "readiness-secret-value"},
                "auth": {"tokenHost": idp_url, "tokenPath": "/token"},
                "prefetch": True,
            }
        },
        "routes": [
            {
                "name": "billing",
                "match": {"path_prefix": "/billing"},
                "upstream": "http://127.0.0.1:9",
                "profile": "billing",
            }
        ],
    }


def admin_url(listening: Listening, path: str) -> str:
    assert listening.admin is not None
    host, port = listening.admin
    return f"http://{host}:{port}{path}"


async def readyz(client: aiohttp.ClientSession, listening: Listening) -> tuple[int, dict[str, Any]]:
    async with client.get(admin_url(listening, "/readyz")) as response:
        return response.status, await response.json()


async def wait_for_failed_prefetch(client: aiohttp.ClientSession, listening: Listening) -> None:
    """Until ``/tokens`` shows the prefetch failed with the IdP's error, a transient one (bounded)."""

    async def failed() -> bool:
        async with client.get(admin_url(listening, "/tokens")) as response:
            tokens = (await response.json())["tokens"]
        if tokens and tokens[0]["fetches_failed"] >= 1:
            assert tokens[0]["permanent_failure"] is False
            return True
        return False

    await eventually(failed)


async def wait_for_generation(client: aiohttp.ClientSession, listening: Listening, generation: int) -> None:
    """Until ``/readyz`` answers for the configuration of ``generation`` (bounded)."""

    async def reloaded() -> bool:
        return (await readyz(client, listening))[1].get("generation") == generation

    await eventually(reloaded)


async def test_lenient_mode_is_ready_while_the_idp_fails(failing_idp: str) -> None:
    async with serving(relay_config(failing_idp, "lenient")) as listening, aiohttp.ClientSession() as client:
        await wait_for_failed_prefetch(client, listening)
        status, body = await readyz(client, listening)
    assert status == 200
    assert body["profiles"]["billing"]["ready"] is True
    assert body["profiles"]["billing"]["reason"] == "awaiting_token"


async def test_strict_mode_is_not_ready_while_the_idp_fails(failing_idp: str) -> None:
    async with serving(relay_config(failing_idp, "strict")) as listening, aiohttp.ClientSession() as client:
        await wait_for_failed_prefetch(client, listening)
        status, body = await readyz(client, listening)
    assert status == 503
    assert body["profiles"]["billing"] == {"ready": False, "reason": "awaiting_token", "last_error": "server_error"}


def _send_sighup() -> None:
    # asyncio's add_signal_handler installs a Python-level handler; the default action would end the test run.
    assert signal.getsignal(signal.SIGHUP) not in (signal.SIG_DFL, signal.SIG_IGN, None), "no SIGHUP handler"
    os.kill(os.getpid(), signal.SIGHUP)


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP on this platform")
async def test_sighup_reload_from_lenient_to_strict_flips_readyz(failing_idp: str, tmp_path: Path) -> None:
    path = tmp_path / "relay.yaml"
    path.write_text(yaml.safe_dump(relay_config(failing_idp, "lenient")))
    async with (
        serving(relay_config(failing_idp, "lenient"), config_path=path) as listening,
        aiohttp.ClientSession() as client,
    ):
        await wait_for_failed_prefetch(client, listening)
        assert (await readyz(client, listening))[0] == 200
        path.write_text(yaml.safe_dump(relay_config(failing_idp, "strict")))
        _send_sighup()
        await wait_for_generation(client, listening, 2)
        status, body = await readyz(client, listening)
    assert status == 503
    assert body["profiles"]["billing"]["reason"] == "awaiting_token"


async def test_file_watch_reload_from_lenient_to_strict_flips_readyz(failing_idp: str, tmp_path: Path) -> None:
    watch = {"watch_config": True, "watch_interval": 0.02}
    path = tmp_path / "relay.yaml"
    path.write_text(yaml.safe_dump(relay_config(failing_idp, "lenient", **watch)))
    async with (
        serving(relay_config(failing_idp, "lenient", **watch), config_path=path) as listening,
        aiohttp.ClientSession() as client,
    ):
        await wait_for_failed_prefetch(client, listening)
        assert (await readyz(client, listening))[0] == 200
        path.write_text(yaml.safe_dump(relay_config(failing_idp, "strict", **watch)))
        await wait_for_generation(client, listening, 2)
        status, _ = await readyz(client, listening)
    assert status == 503


def _settings_with_readiness(stack: AdminStack, readiness: str) -> Settings:
    """The admin stack's settings with ``admin.readiness`` set (same profiles, so the cache keys are kept)."""
    auth = {"token_host": str(stack.idp.server.make_url("/")).rstrip("/")}
    client = {"id": "admin-tests", "secret": CLIENT_SECRET}
    return Settings(
        admin={"readiness": readiness},
        profiles={
            "api": {"client": client, "auth": auth, "scope": "read"},
            "lazy": {"client": client, "auth": auth, "scope": "write", "prefetch": False},
        },
        routes=[{"name": "api", "match": {"path_prefix": "/api"}, "upstream": "http://127.0.0.1:9", "profile": "api"}],
    )


async def test_an_explicit_mode_wins_over_the_setting(stack: AdminStack) -> None:
    """``ReadinessCheck(mode=...)`` (embedders, older tests) ignores ``admin.readiness``; without it, it follows.

    No token has been fetched: ``lenient`` (the setting) is ready, ``strict`` (pinned) is not.
    """
    await stack.holder.reload(_settings_with_readiness(stack, "lenient"))
    assert ReadinessCheck(stack.holder, stack.cache)().ready is True
    assert ReadinessCheck(stack.holder, stack.cache, mode="strict")().ready is False
