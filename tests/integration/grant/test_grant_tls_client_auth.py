"""RFC 8705 §2 client authentication against a real HTTPS token endpoint that requires a client certificate.

The endpoint behaves as an authorization server does for the two methods: the TLS handshake must present a
certificate (``ssl.CERT_REQUIRED``), the client is identified by ``client_id`` in the body, and the certificate
must match the registration — by subject for ``tls_client_auth`` (§2.1), by SHA-256 thumbprint for
``self_signed_tls_client_auth`` (§2.2). Anything else is ``invalid_client``.
"""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography import x509
from cryptography.x509.oid import NameOID

from tests.integration.grant.tls_pki import CLIENT_COMMON_NAME, Pki, cert_thumbprint, make_pki, self_signed_client
from tokenrelay import ClientCredentials
from tokenrelay.errors import ConfigError, TokenRequestError

AiohttpServer = Callable[..., Awaitable[TestServer]]
SECRET = "configured-but-never-sent"


@dataclass(frozen=True)
class SelfSigned:
    cert: Path
    key: Path


@dataclass
class Seen:
    """What the endpoint received, one entry per request."""

    bodies: list[dict[str, str]] = field(default_factory=list)
    authorization: list[str | None] = field(default_factory=list)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> SelfSigned:
    cert, key = self_signed_client(tmp_path_factory.mktemp("self-signed"), "self-signed-client")
    return SelfSigned(cert, key)


def _peer(request: web.Request) -> tuple[str, str]:
    """The presented certificate as ``(subject common name, hex SHA-256 of its DER)``; empty if none."""
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport is not None else None
    if ssl_object is None or not (der := ssl_object.getpeercert(binary_form=True)):
        return "", ""
    subject = x509.load_der_x509_certificate(der).subject
    names = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return (str(names[0].value) if names else ""), hashlib.sha256(der).hexdigest()


async def _mtls_endpoint(
    aiohttp_server: AiohttpServer, pki: Pki, *, trust: Path, subject: str | None = None, thumbprint: str | None = None
) -> tuple[str, Seen]:
    """An HTTPS token endpoint that requires a client certificate issued by (or equal to) ``trust`` and
    accepts ``client-id`` only with the registered ``subject`` or ``thumbprint``."""
    seen = Seen()

    async def token(request: web.Request) -> web.Response:
        body = {key: str(value) for key, value in (await request.post()).items()}
        seen.bodies.append(body)
        seen.authorization.append(request.headers.get("Authorization"))
        common_name, sha256 = _peer(request)
        registered = (subject is None or common_name == subject) and (thumbprint is None or sha256 == thumbprint)
        if body.get("client_id") != CLIENT_COMMON_NAME or "client_secret" in body or not registered:
            return web.json_response({"error": "invalid_client"}, status=401)
        return web.json_response({"access_token": "at", "token_type": "Bearer", "expires_in": 60})

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    context.load_verify_locations(trust)
    context.verify_mode = ssl.CERT_REQUIRED
    app = web.Application()
    app.router.add_post("/oauth/token", token)
    server = await aiohttp_server(app, ssl=context)
    return str(server.make_url("")).rstrip("/"), seen


def _config(base: str, method: str, pki: Pki, **http: object) -> dict[str, object]:
    return {
        "client": {"id": CLIENT_COMMON_NAME, "secret": SECRET},
        "auth": {"token_host": base},
        "options": {"authorization_method": method},
        "http": {"ca_file": str(pki.ca), **http},
    }


async def test_tls_client_auth_gets_a_token_with_a_ca_issued_certificate(
    aiohttp_server: AiohttpServer, pki: Pki
) -> None:
    base, seen = await _mtls_endpoint(aiohttp_server, pki, trust=pki.ca, subject=CLIENT_COMMON_NAME)
    config = _config(base, "tls_client_auth", pki, cert_file=str(pki.client_cert), key_file=str(pki.client_key))
    async with ClientCredentials(config) as client:
        assert (await client.get_token()).access_token == "at"
    assert seen.bodies == [{"grant_type": "client_credentials", "client_id": CLIENT_COMMON_NAME}]
    assert seen.authorization == [None]


async def test_self_signed_tls_client_auth_is_matched_by_thumbprint(
    aiohttp_server: AiohttpServer, pki: Pki, self_signed: SelfSigned
) -> None:
    thumbprint = cert_thumbprint(self_signed.cert)
    base, seen = await _mtls_endpoint(aiohttp_server, pki, trust=self_signed.cert, thumbprint=thumbprint)
    config = _config(
        base, "self_signed_tls_client_auth", pki, cert_file=str(self_signed.cert), key_file=str(self_signed.key)
    )
    async with ClientCredentials(config) as client:
        assert (await client.get_token()).access_token == "at"
    assert seen.bodies == [{"grant_type": "client_credentials", "client_id": CLIENT_COMMON_NAME}]
    assert seen.authorization == [None]


async def test_a_certificate_that_does_not_match_the_registration_is_invalid_client(
    aiohttp_server: AiohttpServer, pki: Pki
) -> None:
    base, seen = await _mtls_endpoint(aiohttp_server, pki, trust=pki.ca, subject="another-client")
    config = _config(base, "tls_client_auth", pki, cert_file=str(pki.client_cert), key_file=str(pki.client_key))
    async with ClientCredentials(config) as client:
        with pytest.raises(TokenRequestError) as caught:
            await client.get_token()
    assert (caught.value.status, caught.value.error) == (401, "invalid_client")
    assert len(seen.bodies) == 1


async def test_without_a_client_certificate_it_is_a_config_error_before_any_request(
    aiohttp_server: AiohttpServer, pki: Pki
) -> None:
    base, seen = await _mtls_endpoint(aiohttp_server, pki, trust=pki.ca, subject=CLIENT_COMMON_NAME)
    with pytest.raises(ConfigError) as caught:
        ClientCredentials(_config(base, "tls_client_auth", pki))
    assert caught.value.paths == ("http.cert_file",)
    assert SECRET not in str(caught.value)
    assert seen.bodies == []


async def _metadata_server(aiohttp_server: AiohttpServer, mtls_base: str) -> tuple[str, list[str]]:
    """A plain-http (loopback) issuer whose metadata sends certificate-authenticated clients to ``mtls_base``
    (RFC 8705 §5 ``mtls_endpoint_aliases``); its own token endpoint only records who called it."""
    plain_calls: list[str] = []
    base = ""

    async def metadata(_: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": base,
                "token_endpoint": f"{base}/token",
                "mtls_endpoint_aliases": {"token_endpoint": f"{mtls_base}/oauth/token"},
            }
        )

    async def plain_token(request: web.Request) -> web.Response:
        plain_calls.append(str((await request.post()).get("client_id")))
        return web.json_response({"access_token": "plain", "token_type": "Bearer", "expires_in": 60})

    app = web.Application()
    app.router.add_get("/.well-known/oauth-authorization-server", metadata)
    app.router.add_post("/token", plain_token)
    server = await aiohttp_server(app)
    base = str(server.make_url("")).rstrip("/")
    return base, plain_calls


async def test_with_discovery_tls_client_auth_uses_the_servers_mtls_alias(
    aiohttp_server: AiohttpServer, pki: Pki
) -> None:
    mtls_base, seen = await _mtls_endpoint(aiohttp_server, pki, trust=pki.ca, subject=CLIENT_COMMON_NAME)
    issuer, plain_calls = await _metadata_server(aiohttp_server, mtls_base)
    config = _config(issuer, "tls_client_auth", pki, cert_file=str(pki.client_cert), key_file=str(pki.client_key))
    config["auth"] = {"issuer": issuer}
    async with ClientCredentials(config) as client:
        assert (await client.get_token()).access_token == "at"
    assert len(seen.bodies) == 1
    assert plain_calls == []


async def test_with_discovery_other_methods_keep_the_plain_token_endpoint(
    aiohttp_server: AiohttpServer, pki: Pki
) -> None:
    mtls_base, seen = await _mtls_endpoint(aiohttp_server, pki, trust=pki.ca, subject=CLIENT_COMMON_NAME)
    issuer, plain_calls = await _metadata_server(aiohttp_server, mtls_base)
    config = _config(issuer, "client_secret_post", pki)
    config["auth"] = {"issuer": issuer}
    async with ClientCredentials(config) as client:
        assert (await client.get_token()).access_token == "plain"
    assert plain_calls == [CLIENT_COMMON_NAME]
    assert seen.bodies == []
