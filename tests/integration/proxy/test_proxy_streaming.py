"""Bounded memory: large bodies stream through the proxy both ways without being held in memory.

``tracemalloc`` measures the peak of Python allocations in the whole process (client, proxy and upstream run in
the same event loop), so the bound covers the proxy's buffers plus the test's own small ones. A proxy that
buffered a body would exceed it many times over.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from tests.integration.proxy.proxy_helpers import MakeProxy, Upstream

MiB = 1024 * 1024
CHUNK = b"\xab" * (64 * 1024)
PEAK_LIMIT = 8 * MiB

SIZES = [pytest.param(64 * MiB, id="64MiB"), pytest.param(256 * MiB, id="256MiB", marks=pytest.mark.slow)]


async def _chunks(total: int) -> AsyncIterator[bytes]:
    for _ in range(total // len(CHUNK)):
        yield CHUNK


@pytest.mark.parametrize("total", SIZES)
async def test_upload_streams_with_bounded_memory(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession, total: int
) -> None:
    received = 0

    async def respond(request: web.BaseRequest) -> web.StreamResponse:
        nonlocal received
        async for chunk in request.content.iter_any():
            received += len(chunk)
        return web.Response(text="stored")

    upstream.respond = respond
    proxy = await make_proxy()  # replay enabled: the first 1 MiB is buffered, the rest streams
    tracemalloc.start()
    try:
        async with session.post(proxy.make_url("/upload"), data=_chunks(total)) as response:
            assert response.status == 200
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received == total
    assert peak < PEAK_LIMIT, f"peak {peak / MiB:.1f} MiB"


@pytest.mark.parametrize("total", SIZES)
async def test_download_streams_with_bounded_memory(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession, total: int
) -> None:
    async def respond(request: web.BaseRequest) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": str(total)})
        await response.prepare(request)
        async for chunk in _chunks(total):
            await response.write(chunk)
        await response.write_eof()
        return response

    upstream.respond = respond
    proxy = await make_proxy()
    received = 0
    tracemalloc.start()
    try:
        async with session.get(proxy.make_url("/download")) as response:
            assert response.headers["Content-Length"] == str(total)
            async for chunk in response.content.iter_any():
                received += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received == total
    assert peak < PEAK_LIMIT, f"peak {peak / MiB:.1f} MiB"
