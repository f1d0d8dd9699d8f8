"""Fixtures for the runtime tests: a clean environment, a counting token endpoint, an echoing upstream."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.integration.runtime.runtime_support import FakeIdp, Upstream

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``TOKENRELAY_*`` variable from the outside changes what these tests load."""
    for name in list(os.environ):
        if name.upper().startswith("TOKENRELAY_"):
            monkeypatch.delenv(name)


@pytest.fixture(name="idp")
async def _idp(aiohttp_server: ServerFactory) -> FakeIdp:
    idp = FakeIdp()
    app = web.Application()
    app.router.add_post("/token", idp.token)
    server = await aiohttp_server(app)
    idp.url = str(server.make_url("")).rstrip("/")
    return idp


@pytest.fixture(name="upstream")
async def _upstream(aiohttp_server: ServerFactory) -> Upstream:
    upstream = Upstream()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", upstream.handle)
    server = await aiohttp_server(app)
    upstream.url = str(server.make_url("")).rstrip("/")
    return upstream
