"""Fixtures for tests that go through the real ``serve`` path: a switchable token endpoint, an echoing upstream.

Every test here names ``idp`` and ``upstream``; they are real aiohttp servers on 127.0.0.1 (see ``support.py``).
"""

from __future__ import annotations

import pytest

from tests.integration.serving_support import ServerFactory, catch_all, token_endpoint
from tests.integration.through_proxy.support import EchoUpstream, SwitchableIdp
from tests.shared_fixtures import clean_environment as clean_environment  # autouse


@pytest.fixture(name="idp")
async def _idp(aiohttp_server: ServerFactory) -> SwitchableIdp:
    idp = SwitchableIdp()
    idp.url = await token_endpoint(aiohttp_server, idp.token)
    return idp


@pytest.fixture(name="upstream")
async def _upstream(aiohttp_server: ServerFactory) -> EchoUpstream:
    upstream = EchoUpstream()
    upstream.url = await catch_all(aiohttp_server, upstream.handle)
    return upstream
