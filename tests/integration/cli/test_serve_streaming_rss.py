"""256 MiB each way through ``tokenrelay serve`` (a subprocess) without raising its resident memory.

The in-process streaming tests bound Python allocations with ``tracemalloc``; this one measures what the issue
asks for: the proxy process's RSS. The client and the upstream live in the test process, so only the proxy's
buffers count. ``VmHWM`` (the peak RSS) is read from ``/proc`` after a warm-up exchange and again after the big
one: a proxy that held a body, or let an unbounded queue build between a fast and a slow side, would grow it by
hundreds of MiB.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.integration.cli.cli_support import free_port, spawn_serve, wait_until_healthy
from tests.integration.runtime.runtime_support import FakeIdp

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/<pid>/status"),
]

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
MiB = 1024 * 1024
TOTAL = 256 * MiB
WARM_UP = 4 * MiB
CHUNK = b"\x5a" * (256 * 1024)
#: "A few MiB": the growth of the proxy's peak RSS allowed for moving 256 MiB.
RSS_GROWTH_LIMIT = 8 * MiB


def peak_rss(pid: int) -> int:
    """``VmHWM`` of the process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


async def chunks(total: int) -> AsyncIterator[bytes]:
    for _ in range(total // len(CHUNK)):
        yield CHUNK


class BulkUpstream:
    """``POST /sink`` counts what it reads; ``GET /source/<n>`` sends ``n`` bytes, chunked."""

    def __init__(self) -> None:
        self.received = 0

    async def sink(self, request: web.Request) -> web.Response:
        async for chunk in request.content.iter_chunked(256 * 1024):
            self.received += len(chunk)
        return web.json_response({"received": self.received})

    async def source(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        async for chunk in chunks(int(request.match_info["size"])):
            await response.write(chunk)
        await response.write_eof()
        return response


async def run_proxy(
    tmp_path: Path, env: dict[str, str], idp_url: str, upstream_url: str
) -> tuple[asyncio.subprocess.Process, int]:
    port, admin_port = free_port(), free_port()
    config = {
        "listen": {"host": "127.0.0.1", "port": port},
        "admin": {"host": "127.0.0.1", "port": admin_port},
        "log": {"level": "warning"},
        "profiles": {"bulk": {"client": {"id": "relay-client", "secret": "relay-secret-value"},
                              "auth": {"tokenHost": idp_url, "tokenPath": "/token"}, "prefetch": False}},
        "routes": [{"name": "bulk", "match": {"path_prefix": "/bulk"}, "upstream": upstream_url,
                    "strip_prefix": True, "profile": "bulk", "timeouts": {"total": None}}],
    }  # fmt: skip
    process, _ = await spawn_serve(
        tmp_path, config, env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    await wait_until_healthy(admin_port, process)
    return process, port


@pytest.fixture(name="bulk")
async def _bulk(
    tmp_path: Path, cli_env: dict[str, str], aiohttp_server: ServerFactory
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str, BulkUpstream]]:
    idp, upstream = FakeIdp(), BulkUpstream()
    idp_app, up_app = web.Application(), web.Application(client_max_size=TOTAL * 2)
    idp_app.router.add_post("/token", idp.token)
    up_app.router.add_post("/sink", upstream.sink)
    up_app.router.add_get("/source/{size}", upstream.source)
    idp.url = str((await aiohttp_server(idp_app)).make_url("")).rstrip("/")
    upstream_url = str((await aiohttp_server(up_app)).make_url("")).rstrip("/")
    process, port = await run_proxy(tmp_path, cli_env, idp.url, upstream_url)
    try:
        yield process, f"http://127.0.0.1:{port}/bulk", upstream
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 15)
        except TimeoutError:
            process.kill()
            await process.wait()


async def upload(client: aiohttp.ClientSession, base: str, total: int) -> None:
    async with client.post(f"{base}/sink", data=chunks(total)) as response:
        assert response.status == 200


async def download(client: aiohttp.ClientSession, base: str, total: int) -> int:
    received = 0
    async with client.get(f"{base}/source/{total}") as response:
        assert response.status == 200
        async for chunk in response.content.iter_any():
            received += len(chunk)
    return received


async def test_256_mib_upload_through_serve_keeps_its_rss_flat(
    bulk: tuple[asyncio.subprocess.Process, str, BulkUpstream],
) -> None:
    process, base, upstream = bulk
    async with aiohttp.ClientSession() as client:
        await upload(client, base, WARM_UP)
        before = peak_rss(process.pid)
        upstream.received = 0
        await asyncio.wait_for(upload(client, base, TOTAL), 100)
    grown = peak_rss(process.pid) - before
    assert upstream.received == TOTAL
    assert grown < RSS_GROWTH_LIMIT, f"peak RSS grew by {grown / MiB:.1f} MiB"


async def test_256_mib_download_through_serve_keeps_its_rss_flat(
    bulk: tuple[asyncio.subprocess.Process, str, BulkUpstream],
) -> None:
    process, base, _ = bulk
    async with aiohttp.ClientSession() as client:
        assert await download(client, base, WARM_UP) == WARM_UP
        before = peak_rss(process.pid)
        received = await asyncio.wait_for(download(client, base, TOTAL), 100)
    grown = peak_rss(process.pid) - before
    assert received == TOTAL
    assert grown < RSS_GROWTH_LIMIT, f"peak RSS grew by {grown / MiB:.1f} MiB"
