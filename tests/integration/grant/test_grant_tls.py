"""TLS and mutual TLS to the token endpoint against a local HTTPS server with a generated CA."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tokenrelay import ClientCredentials
from tokenrelay.errors import TransportError

AiohttpServer = Callable[..., Awaitable[TestServer]]


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return path


def _write_cert(path: Path, cert: x509.Certificate) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _make_ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _issue(
    ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, common_name: str, *, server: bool
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if server:
        san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        builder = builder.add_extension(san, critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA, a server certificate for 127.0.0.1, a client certificate, and an unrelated CA."""
    root = tmp_path_factory.mktemp("pki")
    ca_key, ca_cert = _make_ca("tokenrelay test CA")
    server_key, server_cert = _issue(ca_key, ca_cert, "127.0.0.1", server=True)
    client_key, client_cert = _issue(ca_key, ca_cert, "client-id", server=False)
    _, other_cert = _make_ca("some other CA")
    return Pki(
        ca=_write_cert(root / "ca.pem", ca_cert),
        server_cert=_write_cert(root / "server.pem", server_cert),
        server_key=_write_key(root / "server-key.pem", server_key),
        client_cert=_write_cert(root / "client.pem", client_cert),
        client_key=_write_key(root / "client-key.pem", client_key),
        other_ca=_write_cert(root / "other-ca.pem", other_cert),
    )


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
