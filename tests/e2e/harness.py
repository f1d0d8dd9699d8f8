"""The end-to-end harness: a real, independent authorization server (node-oidc-provider) as a subprocess.

``conftest.py`` turns this into fixtures; tests that need a provider of their own (other clients, another
TTL, a restart) use :func:`start_oidc_provider` directly. Everything here is synchronous: starting a
subprocess and reading one line needs no event loop, and session-scoped fixtures stay loop-independent.

* :func:`make_clients` generates fresh credentials: one client per client authentication method
  (``client_secret_basic``, ``client_secret_post``, ``client_secret_jwt``, ``private_key_jwt`` with an RSA key
  made here), and the protected API's own client for introspection. Nothing secret is committed, printed
  or kept in a ``repr``.
* :func:`start_oidc_provider` writes the provider's JSON config, runs ``node idp/server.mjs --port 0``,
  waits for its ready line, reads its discovery document and yields an :class:`OidcProvider`; on exit it
  sends SIGTERM, then SIGKILL after 5 s.
* :func:`make_mtls_clients` adds RFC 8705 clients (``tls_client_auth`` by subject DN, ``self_signed_tls_client_auth``
  by a registered certificate) and a throw-away PKI; ``start_oidc_provider(..., mtls=pki)`` then also serves the
  provider on an HTTPS listener that asks for client certificates, published as ``mtls_endpoint_aliases``.
* Without ``node`` or ``idp/node_modules`` the caller is skipped with a loud reason, except under ``CI``,
  where it fails: CI must run the suite (``scripts/test`` runs ``npm ci`` first). See ``docs/e2e.md``.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.e2e.protected_api import ProtectedApiConfig, Seen
from tests.integration.grant.tls_pki import CLIENT_COMMON_NAME, Pki, make_pki, self_signed_client

IDP_DIR = Path(__file__).resolve().parent / "idp"
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0

SCOPE = "api:read api:write"
RESOURCE = "urn:tokenrelay:e2e:api"
SHORT_LIVED_RESOURCE = "urn:tokenrelay:e2e:api-short-lived"
OPAQUE_RESOURCE = "urn:tokenrelay:e2e:api-opaque"
TOKEN_TTL = 60
#: Tokens for SHORT_LIVED_RESOURCE expire this many seconds after issue (expiry tests wait that long).
SHORT_TTL = 3
#: The three methods issue 3 asks for, plus ``client_secret_jwt`` (RFC 7523 with the shared secret).
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "client_secret_jwt")
#: tokenrelay's ``options.authorization_method`` for each RFC 7591 client authentication method.
AUTHORIZATION_METHOD = {
    "client_secret_basic": "header",
    "client_secret_post": "body",
    "private_key_jwt": "private_key_jwt",
    "client_secret_jwt": "client_secret_jwt",
    "tls_client_auth": "tls_client_auth",
    "self_signed_tls_client_auth": "self_signed_tls_client_auth",
}
#: The RFC 8705 §2 methods, served by a provider started with ``mtls=`` (see :func:`make_mtls_clients`).
MTLS_AUTH_METHODS = ("tls_client_auth", "self_signed_tls_client_auth")


@dataclass(frozen=True, slots=True)
class E2EClient:
    """One client registered at the provider. Secrets and keys are hidden from ``repr``."""

    client_id: str
    auth_method: str
    scope: str
    secret: str | None = field(default=None, repr=False)
    private_key_pem: str | None = field(default=None, repr=False)
    key_id: str | None = None
    public_jwk: Mapping[str, Any] | None = field(default=None, repr=False)
    #: RFC 8705: the TLS client certificate and key this client presents (PEM files).
    cert_file: Path | None = None
    key_file: Path | None = field(default=None, repr=False)
    #: ``tls_client_auth``: the registered ``tls_client_auth_subject_dn`` (RFC 4514, e.g. ``CN=client-id``).
    subject_dn: str | None = None
    #: ``self_signed_tls_client_auth``: the registered certificate, as a JWK with ``x5c`` (RFC 8705 §2.2).
    certificate_jwk: Mapping[str, Any] | None = field(default=None, repr=False)

    def metadata(self) -> dict[str, Any]:
        """The RFC 7591 client metadata the provider registers for this client."""
        data: dict[str, Any] = {
            "client_id": self.client_id,
            "token_endpoint_auth_method": self.auth_method,
        }
        if self.scope:
            data["scope"] = self.scope
        if self.secret is not None:
            data["client_secret"] = self.secret
        if self.public_jwk is not None:
            data["jwks"] = {"keys": [dict(self.public_jwk)]}
            data["token_endpoint_auth_signing_alg"] = "RS256"
        if self.subject_dn is not None:
            data["tls_client_auth_subject_dn"] = self.subject_dn
        if self.certificate_jwk is not None:
            data["jwks"] = {"keys": [dict(self.certificate_jwk)]}
        return data


@dataclass(frozen=True, slots=True)
class OidcProvider:
    """A running provider: its discovered endpoints, resources and clients."""

    issuer: str
    token_endpoint: str
    jwks_uri: str
    revocation_endpoint: str
    introspection_endpoint: str
    clients: Mapping[str, E2EClient]
    api_client: E2EClient
    version: str
    pid: int
    log_path: Path
    resource: str = RESOURCE
    short_lived_resource: str = SHORT_LIVED_RESOURCE
    opaque_resource: str = OPAQUE_RESOURCE
    scope: str = SCOPE
    #: With ``mtls=``: the HTTPS listener's base URL, the metadata's ``mtls_endpoint_aliases`` and the CA file
    #: that issued the listener's certificate (what a client must trust).
    mtls_url: str | None = None
    mtls_endpoint_aliases: Mapping[str, str] = field(default_factory=dict)
    mtls_ca_file: Path | None = None

    def client(self, auth_method: str) -> E2EClient:
        """The client that authenticates with ``auth_method`` (an RFC 7591 name)."""
        return self.clients[auth_method]

    def grant_config(self, auth_method: str, *, discovery: bool = True) -> dict[str, Any]:
        """A ``tokenrelay.ClientCredentials`` config for that client.

        With ``discovery`` the endpoints come from the issuer's metadata; without it, from
        ``token_host`` + paths, so both ways of configuring tokenrelay meet a real server.
        """
        client = self.clients[auth_method]
        section: dict[str, Any] = {"id": client.client_id}
        if client.secret is not None:
            section["secret"] = client.secret
        if client.private_key_pem is not None:
            section["private_key"] = client.private_key_pem
            section["key_id"] = client.key_id
        if discovery:
            auth: dict[str, Any] = {"issuer": self.issuer}
        else:
            auth = {
                "token_host": self.issuer,
                "token_path": urlsplit(self.token_endpoint).path,
                "revoke_path": urlsplit(self.revocation_endpoint).path,
            }
        config: dict[str, Any] = {
            "client": section,
            "auth": auth,
            "options": {"authorization_method": AUTHORIZATION_METHOD[auth_method]},
        }
        if client.cert_file is not None:
            http: dict[str, Any] = {"cert_file": str(client.cert_file), "key_file": str(client.key_file)}
            if self.mtls_ca_file is not None:
                http["ca_file"] = str(self.mtls_ca_file)
            config["http"] = http
        return config


@dataclass(frozen=True, slots=True)
class ProtectedApi:
    """A running protected API: its base URL (ends with ``/``), its config and the requests it answered."""

    url: str
    config: ProtectedApiConfig
    seen: list[Seen]


def protected_api_config(provider: OidcProvider, resources: tuple[str, ...]) -> ProtectedApiConfig:
    """A protected API that trusts ``provider`` and accepts tokens for ``resources``."""
    return ProtectedApiConfig(
        issuer=provider.issuer,
        jwks_uri=provider.jwks_uri,
        introspection_endpoint=provider.introspection_endpoint,
        resources=resources,
        client_id=provider.api_client.client_id,
        client_secret=provider.api_client.secret or "",
    )


async def verify_with_jwks(session: aiohttp.ClientSession, provider: OidcProvider, token: str) -> dict[str, Any]:
    """Verify an RFC 9068 access token against the provider's JWKS, independently of tokenrelay and of the
    protected API."""
    async with session.get(provider.jwks_uri) as response:
        jwks = jwt.PyJWKSet.from_dict(await response.json())
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt"
    key = next(k for k in jwks.keys if k.key_id == header["kid"])
    claims: dict[str, Any] = jwt.decode(
        token, key, algorithms=["RS256"], audience=provider.resource, issuer=provider.issuer
    )
    return claims


def _secret() -> str:
    # Characters that client_secret_basic must form-encode (RFC 6749 §2.3.1) and _post must percent-encode.
    return secrets.token_urlsafe(24) + ":+/% &=~"


def rsa_client(client_id: str) -> E2EClient:
    """A ``private_key_jwt`` client with a fresh RSA key (also a stranger's key, for negative tests)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    key_id = f"{client_id}-{secrets.token_hex(4)}"
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk.update({"kid": key_id, "alg": "RS256", "use": "sig"})
    return E2EClient(client_id, "private_key_jwt", SCOPE, private_key_pem=pem, key_id=key_id, public_jwk=jwk)


def make_clients() -> tuple[dict[str, E2EClient], E2EClient]:
    """Fresh credentials: one client per method of :data:`AUTH_METHODS`, and the protected API's own client."""
    clients = {
        "client_secret_basic": E2EClient("e2e-basic", "client_secret_basic", SCOPE, secret=_secret()),
        "client_secret_post": E2EClient("e2e-post", "client_secret_post", SCOPE, secret=_secret()),
        "client_secret_jwt": E2EClient("e2e-secret-jwt", "client_secret_jwt", SCOPE, secret=_secret()),
        "private_key_jwt": rsa_client("e2e-private-key-jwt"),
    }
    api_client = E2EClient("e2e-protected-api", "client_secret_basic", "", secret=secrets.token_urlsafe(32))
    return clients, api_client


def certificate_jwk(cert_file: Path) -> dict[str, Any]:
    """The public JWK of an EC certificate with the certificate itself in ``x5c``: what oidc-provider matches a
    ``self_signed_tls_client_auth`` client's certificate against (the ``x5t#S256`` of ``x5c[0]``)."""
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    public_key = cert.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey), "tls_pki makes P-256 certificates"
    jwk: dict[str, Any] = jwt.algorithms.ECAlgorithm.to_jwk(public_key, as_dict=True)
    jwk["x5c"] = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]
    return jwk


def make_mtls_clients(root: Path) -> tuple[dict[str, E2EClient], Pki]:
    """A fresh PKI under ``root`` (a CA, a server certificate for 127.0.0.1, a CA-issued client certificate)
    and one client per method of :data:`MTLS_AUTH_METHODS`: ``tls_client_auth`` registered with the CA-issued
    certificate's subject DN, ``self_signed_tls_client_auth`` with a self-signed certificate made here."""
    root.mkdir(parents=True, exist_ok=True)
    pki = make_pki(root)
    self_signed_cert, self_signed_key = self_signed_client(root, "e2e-self-signed-client")
    clients = {
        "tls_client_auth": E2EClient(
            "e2e-tls-client-auth",
            "tls_client_auth",
            SCOPE,
            cert_file=pki.client_cert,
            key_file=pki.client_key,
            subject_dn=f"CN={CLIENT_COMMON_NAME}",
        ),
        "self_signed_tls_client_auth": E2EClient(
            "e2e-self-signed-tls-client-auth",
            "self_signed_tls_client_auth",
            SCOPE,
            cert_file=self_signed_cert,
            key_file=self_signed_key,
            certificate_jwk=certificate_jwk(self_signed_cert),
        ),
    }
    return clients, pki


def provider_config(
    clients: Mapping[str, E2EClient], api_client: E2EClient, *, short_ttl: int = SHORT_TTL, mtls: Pki | None = None
) -> dict[str, Any]:
    """The JSON document ``server.mjs --config`` reads; with ``mtls``, its ``"mtls"`` section (HTTPS listener)."""
    api = {**api_client.metadata(), "grant_types": []}
    config: dict[str, Any] = {
        "resources": [
            {"identifier": RESOURCE, "scope": SCOPE, "format": "jwt", "ttl": TOKEN_TTL},
            {"identifier": SHORT_LIVED_RESOURCE, "scope": SCOPE, "format": "jwt", "ttl": short_ttl},
            {"identifier": OPAQUE_RESOURCE, "scope": SCOPE, "format": "opaque", "ttl": TOKEN_TTL},
        ],
        "default_resource": RESOURCE,
        "scopes": SCOPE.split(),
        "introspection_clients": [api_client.client_id],
        "clients": [c.metadata() for c in clients.values()] + [api],
    }
    if mtls is not None:
        config["mtls"] = {
            "cert_file": str(mtls.server_cert),
            "key_file": str(mtls.server_key),
            "client_ca_file": str(mtls.ca),
        }
    return config


def require_node() -> str:
    """The ``node`` executable, or a loud skip (a failure under ``CI``) saying what is missing."""
    node = shutil.which("node")
    problem = None
    if node is None:
        problem = "`node` is not on PATH (Node.js >= 20.18 is needed)"
    elif not (IDP_DIR / "node_modules" / "oidc-provider" / "package.json").is_file():
        problem = "tests/e2e/idp/node_modules is missing: run `npm ci` in tests/e2e/idp (scripts/test does)"
    if problem is not None:
        message = f"END-TO-END SUITE NOT RUN: {problem}"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    assert node is not None
    return node


def _tail(path: Path, limit: int = 2000) -> str:
    with contextlib.suppress(OSError):
        return path.read_text(errors="replace")[-limit:]
    return ""


def _wait_ready(process: subprocess.Popen[bytes], stdout_path: Path, log_path: Path) -> dict[str, Any]:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        line, newline, _ = stdout_path.read_text(errors="replace").partition("\n")
        if newline:
            ready: dict[str, Any] = json.loads(line)
            return ready
        if process.poll() is not None:
            raise RuntimeError(f"oidc-provider exited with {process.returncode}: {_tail(log_path)}")
        time.sleep(0.05)
    raise RuntimeError(f"oidc-provider not ready after {READY_TIMEOUT} s: {_tail(log_path)}")


def stop_process(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM, then SIGKILL after STOP_TIMEOUT seconds; returns the exit status."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def log_offset(provider: OidcProvider) -> int:
    """The current size of the provider's log: pass it to :func:`provider_events` to see only later events."""
    return provider.log_path.stat().st_size


def provider_events(provider: OidcProvider, since: int = 0) -> list[dict[str, Any]]:
    """The provider's JSON events (``grant.success``, ``grant.error``, ...) logged after byte offset ``since``.

    Node writes them synchronously before answering, so a test sees the events of the requests it made.
    oidc-provider's own notices (plain text) are skipped.
    """
    with provider.log_path.open("rb") as log:
        log.seek(since)
        lines = log.read().decode(errors="replace").splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def discover(issuer: str) -> dict[str, Any]:
    """The provider's OpenID Connect discovery document (stdlib HTTP: the fixture is synchronous)."""
    url = urlsplit(issuer)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=10)
    try:
        connection.request("GET", "/.well-known/openid-configuration")
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    if response.status != 200:
        raise RuntimeError(f"discovery answered {response.status}")
    document: dict[str, Any] = json.loads(body)
    return document


@contextlib.contextmanager
def start_oidc_provider(
    workdir: Path,
    clients: Mapping[str, E2EClient],
    api_client: E2EClient,
    *,
    short_ttl: int = SHORT_TTL,
    mtls: Pki | None = None,
) -> Iterator[tuple[subprocess.Popen[bytes], OidcProvider]]:
    """Start ``server.mjs`` with these clients, wait for its ready line, stop it on exit.

    With ``mtls`` (a PKI from :func:`make_mtls_clients`) the provider also listens on HTTPS with that PKI's
    server certificate and client CA, and the :class:`OidcProvider` carries ``mtls_url``,
    ``mtls_endpoint_aliases`` and ``mtls_ca_file``.
    """
    node = require_node()
    config_path = workdir / "idp-config.json"
    config_path.touch(mode=0o600)
    config_path.write_text(json.dumps(provider_config(clients, api_client, short_ttl=short_ttl, mtls=mtls)))
    stdout_path, log_path = workdir / "idp.stdout", workdir / "idp.log"
    command = [node, str(IDP_DIR / "server.mjs"), "--port", "0", "--config", str(config_path)]
    command += ["--parent-pid", str(os.getpid())]
    with stdout_path.open("wb") as out, log_path.open("wb") as err:
        process = subprocess.Popen(
            command,
            cwd=IDP_DIR,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
    try:
        ready = _wait_ready(process, stdout_path, log_path)
        metadata = discover(ready["issuer"])
        provider = OidcProvider(
            issuer=metadata["issuer"],
            token_endpoint=metadata["token_endpoint"],
            jwks_uri=metadata["jwks_uri"],
            revocation_endpoint=metadata["revocation_endpoint"],
            introspection_endpoint=metadata["introspection_endpoint"],
            clients=dict(clients),
            api_client=api_client,
            version=ready["oidc_provider"],
            pid=ready["pid"],
            log_path=log_path,
            mtls_url=ready.get("mtls_url"),
            mtls_endpoint_aliases=dict(metadata.get("mtls_endpoint_aliases", {})),
            mtls_ca_file=mtls.ca if mtls is not None else None,
        )
        yield process, provider
    finally:
        stop_process(process)
