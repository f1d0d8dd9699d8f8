"""Loopback fakes for the runtime and CLI tests: a counting token endpoint, an echoing upstream, a config builder.

The ``idp`` and ``upstream`` fixtures serving them are defined here once; the runtime and CLI conftests import them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from tests.integration.serving_support import ServerFactory, catch_all, token_endpoint


@dataclass
class FakeIdp:
    """A token endpoint that issues ``tok-1``, ``tok-2`` ... and records each request's form."""

    issued: int = 0
    forms: list[dict[str, str]] = field(default_factory=list)
    url: str = ""
    #: Answer every request with 401 ``invalid_client``.
    reject: bool = False

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.forms.append({key: str(value) for key, value in form.items()})
        if self.reject:
            return web.json_response({"error": "invalid_client", "error_description": "unknown client"}, status=401)
        self.issued += 1
        body = {"access_token": f"tok-{self.issued}", "token_type": "Bearer", "expires_in": 300}
        return web.json_response(body, headers={"Cache-Control": "no-store"})


@dataclass
class Upstream:
    """An upstream that echoes the Authorization header; ``/slow`` waits until ``release`` is set."""

    url: str = ""
    release: asyncio.Event = field(default_factory=asyncio.Event)
    slow_started: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        if request.path.endswith("/slow"):
            self.slow_started.set()
            await self.release.wait()
        return web.json_response({"authorization": request.headers.get("Authorization"), "path": request.path})


def relay_config(idp: FakeIdp, upstream: Upstream, **sections: Any) -> dict[str, Any]:
    """A config with one profile (``billing``) and one route (``/billing`` -> upstream), on loopback port 0."""
    config: dict[str, Any] = {
        "listen": {"host": "127.0.0.1", "port": 0},
        "admin": {"host": "127.0.0.1", "port": 0},
        "server": {"shutdown_grace": 5.0},
        "profiles": {
            "billing": {
                "client": {"id": "relay-client", "secret": "relay-secret-value"},
                "auth": {"tokenHost": idp.url, "tokenPath": "/token"},
                "scope": ["invoices.read"],
                "prefetch": False,
            }
        },
        "routes": [
            {
                "name": "billing",
                "match": {"path_prefix": "/billing"},
                "upstream": upstream.url,
                "strip_prefix": True,
                "profile": "billing",
            }
        ],
    }
    config.update(sections)
    return config


@pytest.fixture(name="idp")
async def fake_idp(aiohttp_server: ServerFactory) -> FakeIdp:
    idp = FakeIdp()
    idp.url = await token_endpoint(aiohttp_server, idp.token)
    return idp


@pytest.fixture(name="upstream")
async def echo_upstream(aiohttp_server: ServerFactory) -> Upstream:
    upstream = Upstream()
    upstream.url = await catch_all(aiohttp_server, upstream.handle)
    return upstream
