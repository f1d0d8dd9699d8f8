"""The real output of ``tokenrelay serve`` (a subprocess, debug level, JSON) never holds a secret or a token.

``capture_logs`` skips the renderer and the redaction backstop, so the other log tests cannot see what actually
reaches stdout/stderr. Here the whole process output is captured while the flow touches every place a credential
could leak: the token request (Basic auth), a token fetch, an upstream 401 and the replay, an endpoint that echoes
the client secret in its ``error_description``, an inbound ``Authorization`` and a secret in the query string.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.integration.cli.cli_support import free_port, spawn_serve, wait_until_healthy

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
CLIENT_ID = "relay-client"
CLIENT_SECRET = "cs-" + secrets.token_hex(16)
INBOUND_SECRET = "inbound-" + secrets.token_hex(16)
QUERY_SECRET = "query-" + secrets.token_hex(16)


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:8]


@dataclass
class LeakyIdp:
    """Issues distinctive opaque tokens; once ``reject`` is set it refuses the client and echoes the secret."""

    url: str = ""
    tokens: list[str] = field(default_factory=list)
    reject: bool = False

    async def token(self, request: web.Request) -> web.Response:
        await request.read()
        if self.reject:
            description = f"client secret {CLIENT_SECRET} is not valid"  # a careless IdP: must not be logged
            return web.json_response({"error": "invalid_client", "error_description": description}, status=401)
        self.tokens.append("at-" + secrets.token_hex(20))
        return web.json_response({"access_token": self.tokens[-1], "token_type": "Bearer", "expires_in": 300})


@dataclass
class PickyUpstream:
    """Rejects the first token it sees with 401 (forcing a refresh and a replay); later ones only if ``reject_all``."""

    first: str | None = None
    reject_all: bool = False

    async def handle(self, request: web.Request) -> web.Response:
        authorization = request.headers.get("Authorization", "")
        if self.first is None:
            self.first = authorization
        if authorization == self.first or self.reject_all:
            return web.json_response({"error": "invalid_token", "seen": authorization}, status=401)
        return web.json_response({"ok": True})


@pytest.fixture(name="idp")
async def _idp(aiohttp_server: ServerFactory) -> LeakyIdp:
    idp = LeakyIdp()
    app = web.Application()
    app.router.add_post("/token", idp.token)
    idp.url = str((await aiohttp_server(app)).make_url("")).rstrip("/")
    return idp


async def test_serve_output_at_debug_level_holds_no_secret_and_no_token(
    tmp_path: Path, cli_env: dict[str, str], idp: LeakyIdp, aiohttp_server: ServerFactory
) -> None:
    upstream = PickyUpstream()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", upstream.handle)
    upstream_url = str((await aiohttp_server(app)).make_url("")).rstrip("/")
    port, admin_port = free_port(), free_port()
    config = {
        "listen": {"host": "127.0.0.1", "port": port},
        "admin": {"host": "127.0.0.1", "port": admin_port},
        "log": {"level": "debug", "format": "json"},
        "profiles": {
            "billing": {
                "client": {"id": CLIENT_ID, "secret": CLIENT_SECRET},
                "auth": {"tokenHost": idp.url, "tokenPath": "/token"},
                "prefetch": False,
            }
        },
        "routes": [{"name": "billing", "match": {"path_prefix": "/billing"}, "upstream": upstream_url,
                    "strip_prefix": True, "profile": "billing"}],
    }  # fmt: skip
    process, _ = await spawn_serve(
        tmp_path, config, cli_env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    output = asyncio.gather(process.stdout.read(), process.stderr.read())  # type: ignore[union-attr]
    try:
        await wait_until_healthy(admin_port, process)
        headers = {"Authorization": f"Bearer {INBOUND_SECRET}"}
        async with aiohttp.ClientSession() as client:
            async with client.get(f"http://127.0.0.1:{port}/billing/a?api_key={QUERY_SECRET}", headers=headers) as r:
                assert r.status == 200  # the first token was rejected, the replay with the second one passed
            idp.reject, upstream.reject_all = True, True
            async with client.get(f"http://127.0.0.1:{port}/billing/b", headers=headers) as r:
                assert r.status == 503  # second token rejected, the endpoint refuses the client
            async with client.get(f"http://127.0.0.1:{admin_port}/tokens") as r:
                assert r.status == 200
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 15)
    stdout, stderr = await asyncio.wait_for(output, 5)
    text = (stdout + stderr).decode()

    assert len(idp.tokens) == 2
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    for credential in (CLIENT_SECRET, basic, INBOUND_SECRET, QUERY_SECRET, *idp.tokens):
        assert credential not in text
    # The output is the real JSON renderer's, and it did talk about each token, the allowed way.
    events = [json.loads(line)["event"] for line in text.splitlines() if line.startswith("{")]
    assert {"token.fetched", "token_rejected", "token.fetch_failed", "request"} <= set(events)
    assert all(fingerprint(token) in text for token in idp.tokens)
    assert "invalid_client" in text
