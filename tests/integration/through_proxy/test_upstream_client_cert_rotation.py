"""A route's mTLS client certificate, rotated on disk, is used for new upstream connections without a restart.

The upstream trusts exactly one client certificate (the first one). While it is on disk, requests pass; once the
file is replaced by an untrusted certificate, the periodic rotation check recompiles the route table with the new
file, new upstream connections present it, and the upstream refuses the handshake (502). Before the fix the first
certificate stayed in use until a restart.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from tests.integration.proxy.self_signed import make_cert
from tests.integration.serving_support import eventually, serving
from tests.integration.through_proxy.support import url


@pytest.fixture
async def mtls_upstream(tmp_path: Path) -> AsyncIterator[tuple[str, Path, Path]]:
    """An https upstream on 127.0.0.1 that requires the client certificate in ``trusted.crt``."""
    server_cert, server_key = make_cert(tmp_path, "server")
    trusted_cert, _ = make_cert(tmp_path, "trusted")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(server_cert, server_key)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(trusted_cert)

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        return web.json_response({"ok": True})

    runner = web.ServerRunner(web.Server(handle))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    try:
        yield f"https://127.0.0.1:{runner.addresses[0][1]}", server_cert, tmp_path
    finally:
        await runner.cleanup()


async def test_rotated_route_client_certificate_is_used_for_new_connections(
    mtls_upstream: tuple[str, Path, Path],
) -> None:
    upstream, server_cert, directory = mtls_upstream
    client_dir = directory / "client"
    client_dir.mkdir()
    cert_file, key_file = client_dir / "tls.crt", client_dir / "tls.key"
    cert_file.write_bytes((directory / "trusted.crt").read_bytes())
    key_file.write_bytes((directory / "trusted.key").read_bytes())
    config = {
        "listen": {"host": "127.0.0.1", "port": 0},
        "admin": {"host": "127.0.0.1", "port": 0},
        "log": {"access_log": False},
        "server": {"shutdown_grace": 2.0, "secret_check_interval": 0.05},
        "routes": [
            {
                "name": "mtls",
                "match": {"path_prefix": "/mtls/"},
                "upstream": upstream + "/",
                "strip_prefix": True,
                "profile": None,
                "tls": {"ca_file": str(server_cert), "cert_file": str(cert_file), "key_file": str(key_file)},
            }
        ],
    }
    async with serving(config) as listening, aiohttp.ClientSession() as client:
        async with client.get(url(listening.proxy, "/mtls/x")) as response:
            assert response.status == 200
        untrusted_cert, untrusted_key = make_cert(directory, "untrusted")
        key_file.write_bytes(untrusted_key.read_bytes())
        cert_file.write_bytes(untrusted_cert.read_bytes())

        async def refused_with_the_new_certificate() -> bool:
            async with aiohttp.ClientSession() as fresh, fresh.get(url(listening.proxy, "/mtls/y")) as answer:
                return answer.status == 502

        await eventually(refused_with_the_new_certificate, limit=5, interval=0.05)
