"""``tokenrelay serve`` as a subprocess: a request through, SIGHUP reloads, and the SIGTERM drain."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.integration.cli.cli_support import free_port, spawn_serve, wait_until_healthy
from tests.integration.runtime.runtime_support import FakeIdp, Upstream, relay_config

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


@dataclass
class Served:
    process: asyncio.subprocess.Process
    config_path: Path
    config: dict[str, Any]
    port: int
    admin_port: int

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def rewrite(self, text: str | None = None) -> None:
        self.config_path.write_text(text if text is not None else yaml.safe_dump(self.config))

    async def generation(self) -> int:
        async with (
            aiohttp.ClientSession() as client,
            client.get(f"http://127.0.0.1:{self.admin_port}/tokens") as response,
        ):
            body = await response.json()
        return int(body["generation"])


@asynccontextmanager
async def serving(
    tmp_path: Path, env: dict[str, str], config: dict[str, Any], *, grace: float = 5.0
) -> AsyncIterator[Served]:
    """Start ``python -m tokenrelay serve`` on free ports; SIGTERM and reap it at the end."""
    port, admin_port = free_port(), free_port()
    config = {**config, "server": {"shutdown_grace": grace}}
    process, path = await spawn_serve(
        tmp_path,
        config,
        env,
        *("--port", str(port), "--admin-port", str(admin_port), "--log-format", "json"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    served = Served(process, path, config, port, admin_port)
    try:
        await wait_until_healthy(admin_port, process)
        yield served
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), grace + 10)
            except TimeoutError:
                process.kill()
                await process.wait()


async def read_body(request: asyncio.Task[aiohttp.ClientResponse]) -> bytes:
    response = await request
    return await response.read()


async def wait_for_generation(served: Served, generation: int) -> None:
    for _ in range(200):
        if await served.generation() == generation:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"generation {generation} never appeared")


async def test_serve_injects_the_token(
    tmp_path: Path, cli_env: dict[str, str], idp: FakeIdp, upstream: Upstream
) -> None:
    """End to end: a request through the subprocess reaches the upstream with the token from the IdP."""
    async with (
        serving(tmp_path, cli_env, relay_config(idp, upstream)) as served,
        aiohttp.ClientSession() as client,
        client.get(served.url("/billing/invoices?page=2")) as response,
    ):
        body = await response.json()
    assert response.status == 200
    assert body == {"authorization": "Bearer tok-1", "path": "/invoices"}


async def test_sighup_with_a_bad_file_keeps_serving_the_old_routes(
    tmp_path: Path, cli_env: dict[str, str], idp: FakeIdp, upstream: Upstream
) -> None:
    """A broken file on SIGHUP is rejected (logged with its paths); the old routes keep working."""
    async with serving(tmp_path, cli_env, relay_config(idp, upstream)) as served, aiohttp.ClientSession() as client:
        served.rewrite("routes:\n  - {name: broken, match: {path_prefix: nope}}\n")
        served.process.send_signal(signal.SIGHUP)
        await asyncio.sleep(0.5)
        async with client.get(served.url("/billing/x")) as response:
            assert response.status == 200
        assert await served.generation() == 1
        served.process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(served.process.communicate(), 15)
    log = stderr.decode()
    assert "config_reload_rejected" in log
    assert "routes.0.match" in log


async def test_sighup_with_a_good_file_swaps_the_routes(
    tmp_path: Path, cli_env: dict[str, str], idp: FakeIdp, upstream: Upstream
) -> None:
    """A valid file on SIGHUP is swapped in: the new prefix routes, the old one is gone."""
    async with serving(tmp_path, cli_env, relay_config(idp, upstream)) as served, aiohttp.ClientSession() as client:
        served.config["routes"][0]["match"] = {"path_prefix": "/invoices"}
        served.rewrite()
        served.process.send_signal(signal.SIGHUP)
        await wait_for_generation(served, 2)
        async with client.get(served.url("/invoices/7")) as response:
            assert (await response.json())["path"] == "/7"
        async with client.get(served.url("/billing/7")) as response:
            assert response.status == 404


async def test_sigterm_drains_the_in_flight_request_and_exits_0(
    tmp_path: Path, cli_env: dict[str, str], idp: FakeIdp, upstream: Upstream
) -> None:
    """SIGTERM: new connections are refused at once, the slow request in flight completes, exit 0 in time."""
    grace = 5.0
    async with serving(tmp_path, cli_env, relay_config(idp, upstream), grace=grace) as served:
        async with aiohttp.ClientSession() as client:
            slow = asyncio.create_task(client.get(served.url("/billing/slow")))
            await asyncio.wait_for(upstream.slow_started.wait(), 10)
            started = asyncio.get_running_loop().time()
            served.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.3)
            with pytest.raises(aiohttp.ClientConnectionError):
                async with aiohttp.ClientSession() as fresh:
                    await fresh.get(served.url("/billing/fast"))
            upstream.release.set()
            async with await asyncio.wait_for(slow, 10) as response:
                assert response.status == 200
                assert (await response.json())["authorization"] == "Bearer tok-1"
        assert await asyncio.wait_for(served.process.wait(), grace + 5) == 0
        assert asyncio.get_running_loop().time() - started < grace


async def test_sigterm_cuts_a_request_that_outlives_the_grace(
    tmp_path: Path, cli_env: dict[str, str], idp: FakeIdp, upstream: Upstream
) -> None:
    """A request still running when the grace period ends is cancelled; the process still exits 0."""
    async with serving(tmp_path, cli_env, relay_config(idp, upstream), grace=0.5) as served:
        async with aiohttp.ClientSession() as client:
            slow = asyncio.create_task(client.get(served.url("/billing/slow")))
            await asyncio.wait_for(upstream.slow_started.wait(), 10)
            served.process.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(served.process.communicate(), 10)
            assert served.process.returncode == 0
            with pytest.raises(aiohttp.ClientError):
                await asyncio.wait_for(read_body(slow), 5)
        upstream.release.set()
    cut = [line for line in stderr.decode().splitlines() if "shutdown_cancelling" in line]
    assert len(cut) == 1
    assert '"in_flight": 1' in cut[0]
