"""``serve`` in-process for the integration tests, and the loopback servers its configurations point at.

The admin, runtime and through-the-proxy tests all drive the real ``tokenrelay.server.serve`` (both listeners,
the real cache, the real grant core); this is the one way they start and stop it.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from tokenrelay.server import Listening, serve
from tokenrelay.settings import build_settings

#: pytest-aiohttp's ``aiohttp_server`` fixture.
ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: How long ``serve`` may take to drain and return once stopped.
_STOP_TIMEOUT = 15.0


@asynccontextmanager
async def serving(
    config: dict[str, Any], config_path: Path | None = None, *, stop: asyncio.Event | None = None, **serve_options: Any
) -> AsyncIterator[Listening]:
    """Run ``serve`` in a task until the block ends; yields the bound addresses.

    A startup failure is raised at the ``async with``, not hidden in the task. ``serve_options`` go to ``serve``
    as they are (``flags``, ``freeze_heap``). Pass ``stop`` to begin the graceful drain inside the block, as
    SIGTERM does; on the way out it is set in any case and ``serve`` must have returned within 15 s.
    """
    if stop is None:
        stop = asyncio.Event()
    ready: asyncio.Future[Listening] = asyncio.get_running_loop().create_future()
    settings = build_settings(config)
    task = asyncio.create_task(
        serve(settings, config_path=config_path, stop=stop, on_ready=ready.set_result, **serve_options)
    )
    waiting: set[asyncio.Future[Any]] = {task, ready}
    done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()  # startup failed: raise it here
    try:
        yield ready.result()
    finally:
        stop.set()
        await asyncio.wait_for(task, _STOP_TIMEOUT)


async def base_url(aiohttp_server: ServerFactory, app: web.Application) -> str:
    """Serve ``app`` on 127.0.0.1; its base URL without the trailing slash (what config URLs are built on)."""
    return str((await aiohttp_server(app)).make_url("")).rstrip("/")


async def token_endpoint(aiohttp_server: ServerFactory, handler: Handler) -> str:
    """``handler`` as ``POST /token`` on 127.0.0.1; the base URL, for ``auth.tokenHost``."""
    app = web.Application()
    app.router.add_post("/token", handler)
    return await base_url(aiohttp_server, app)


async def catch_all(aiohttp_server: ServerFactory, handler: Handler) -> str:
    """``handler`` for every method and path on 127.0.0.1; the base URL, for a route's ``upstream``."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    return await base_url(aiohttp_server, app)


async def eventually(check: Callable[[], Awaitable[bool]], *, limit: float = 5.0, interval: float = 0.02) -> None:
    """Poll ``check`` (state outside this process's events: metrics, HTTP answers) until true, within ``limit``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    for attempt in itertools.count():
        if await check():
            return
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {limit} s ({attempt + 1} checks)")
        await asyncio.sleep(interval)
