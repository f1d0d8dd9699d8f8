"""Fixtures for tests that go through the real ``serve`` path: a switchable token endpoint, an echoing upstream.

Every test here names ``idp`` and ``upstream``; they are real aiohttp servers on 127.0.0.1 (see ``support.py``).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.integration.through_proxy.support import EchoUpstream, SwitchableIdp

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``TOKENRELAY_*`` variable from the outside changes what these tests load."""
    for name in list(os.environ):
        if name.upper().startswith("TOKENRELAY_"):
            monkeypatch.delenv(name)


@pytest.fixture(name="idp")
async def _idp(aiohttp_server: ServerFactory) -> SwitchableIdp:
    idp = SwitchableIdp()
    app = web.Application()
    app.router.add_post("/token", idp.token)
    idp.url = str((await aiohttp_server(app)).make_url("")).rstrip("/")
    return idp


@pytest.fixture(name="upstream")
async def _upstream(aiohttp_server: ServerFactory) -> EchoUpstream:
    upstream = EchoUpstream()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", upstream.handle)
    upstream.url = str((await aiohttp_server(app)).make_url("")).rstrip("/")
    return upstream
