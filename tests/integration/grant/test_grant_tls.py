"""TLS and mutual TLS to the token endpoint against a local HTTPS server with a generated CA."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.integration.grant.tls_pki import Pki, make_pki
from tokenrelay import ClientCredentials
from tokenrelay.errors import TransportError

AiohttpServer = Callable[..., Awaitable[TestServer]]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA, a server certificate for 127.0.0.1, a client certificate, and an unrelated CA."""
    return make_pki(tmp_path_factory.mktemp("pki"))


async def _https_endpoint(
    aiohttp_server: AiohttpServer, pki: Pki, *, require_client_cert: bool
) -> tuple[str, list[str]]:
    subjects: list[str] = []

    async def token(request: web.Request) -> web.Response:
        transport = request.transport
        peer = transport.get_extra_info("peercert") if transport is not None else None
        subjects.append(str(peer["subject"]) if peer else "")
        return web.json_response({"access_token": "at", "expires_in": 60})

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    if require_client_cert:
        context.load_verify_locations(pki.ca)
        context.verify_mode = ssl.CERT_REQUIRED
    app = web.Application()
    app.router.add_post("/oauth/token", token)
    server = await aiohttp_server(app, ssl=context)
    return str(server.make_url("")).rstrip("/"), subjects


def _config(base: str, **http: object) -> dict[str, object]:
    return {"client": {"id": "client-id", "secret": "s"}, "auth": {"token_host": base}, "http": http}


async def test_https_endpoint_is_trusted_through_ca_file(aiohttp_server: AiohttpServer, pki: Pki) -> None:
    base, _ = await _https_endpoint(aiohttp_server, pki, require_client_cert=False)
    assert base.startswith("https://")
    async with ClientCredentials(_config(base, ca_file=str(pki.ca))) as client:
        assert (await client.get_token()).access_token == "at"


async def test_untrusted_server_certificate_is_a_transport_error(aiohttp_server: AiohttpServer, pki: Pki) -> None:
    base, _ = await _https_endpoint(aiohttp_server, pki, require_client_cert=False)
    async with ClientCredentials(_config(base, ca_file=str(pki.other_ca))) as client:
        with pytest.raises(TransportError, match="TLS"):
            await client.get_token()


async def test_verify_false_accepts_an_untrusted_certificate(aiohttp_server: AiohttpServer, pki: Pki) -> None:
    base, _ = await _https_endpoint(aiohttp_server, pki, require_client_cert=False)
    async with ClientCredentials(_config(base, verify=False)) as client:
        assert (await client.get_token()).access_token == "at"


async def test_mtls_presents_the_client_certificate(aiohttp_server: AiohttpServer, pki: Pki) -> None:
    base, subjects = await _https_endpoint(aiohttp_server, pki, require_client_cert=True)
    http = {"ca_file": str(pki.ca), "cert_file": str(pki.client_cert), "key_file": str(pki.client_key)}
    async with ClientCredentials(_config(base, **http)) as client:
        await client.get_token()
    assert "client-id" in subjects[0]


async def test_mtls_without_a_client_certificate_fails(aiohttp_server: AiohttpServer, pki: Pki) -> None:
    base, _ = await _https_endpoint(aiohttp_server, pki, require_client_cert=True)
    async with ClientCredentials(_config(base, ca_file=str(pki.ca))) as client:
        with pytest.raises(TransportError):
            await client.get_token()


async def test_per_call_tls_options_are_used(aiohttp_server: AiohttpServer, pki: Pki) -> None:
    base, _ = await _https_endpoint(aiohttp_server, pki, require_client_cert=False)
    async with ClientCredentials(_config(base)) as client:
        token = await client.get_token(http_options={"ca_file": str(pki.ca)})
    assert token.access_token == "at"


async def test_unreadable_ca_file_is_a_transport_error(tmp_path: Path) -> None:
    config = _config("https://127.0.0.1:1", ca_file=str(tmp_path / "missing.pem"))
    async with ClientCredentials(config) as client:
        with pytest.raises(TransportError, match="TLS files"):
            await client.get_token()
