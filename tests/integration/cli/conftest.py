"""Fixtures for the CLI tests: the command as a subprocess, a counting token endpoint and an echoing upstream."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.integration.runtime.runtime_support import FakeIdp, Upstream

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


@pytest.fixture(name="cli_env")
def _cli_env() -> dict[str, str]:
    """The subprocess environment: ours without any ``TOKENRELAY_*`` variable, plus unbuffered output."""
    env = {name: value for name, value in os.environ.items() if not name.upper().startswith("TOKENRELAY_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


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
