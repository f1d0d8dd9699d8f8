"""RFC 7523 client assertions verified by a local token endpoint, and endpoints found through discovery."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tokenrelay import ClientCredentials
from tokenrelay.errors import ConfigError, OAuth2Error, TokenRequestError, TokenResponseError
from tokenrelay.grant.assertion import CLIENT_ASSERTION_TYPE
from tokenrelay.grant.discovery import MetadataCache

AiohttpServer = Callable[[web.Application], Awaitable[TestServer]]
HMAC_SECRET = "a-client-secret-that-is-at-least-32-bytes-long"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _config(method: str, auth: dict[str, str], **client: str) -> dict[str, Any]:
    """A config for ``client-id`` authenticating with ``method``; ``client`` adds its key or secret (snake_case)."""
    return {"client": {"id": "client-id", **client}, "auth": auth, "options": {"authorization_method": method}}


class AuthServer:
    """A token endpoint that verifies the client assertion, plus optional discovery documents."""

    def __init__(self, verify_key: Any, algorithms: list[str], metadata_paths: tuple[str, ...] = ()) -> None:
        self.verify_key = verify_key
        self.algorithms = algorithms
        self.metadata_paths = metadata_paths
        self.hits: list[str] = []
        self.claims: list[dict[str, Any]] = []
        self.forms: list[dict[str, str]] = []
        self.base = ""

    async def token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.forms.append({k: str(v) for k, v in form.items()})
        if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
            return web.json_response({"error": "invalid_client"}, status=401)
        claims = jwt.decode(
            str(form["client_assertion"]),
            self.verify_key,
            algorithms=self.algorithms,
            audience=f"{self.base}/oauth/token",
            issuer="client-id",
            options={"require": ["exp", "iat", "jti", "sub", "iss", "aud"]},
        )
        self.claims.append(claims)
        return web.json_response({"access_token": f"at-{len(self.claims)}", "expires_in": 60})

    async def metadata(self, request: web.Request) -> web.Response:
        self.hits.append(request.path)
        if request.path not in self.metadata_paths:
            return web.json_response({"error": "not here"}, status=404)
        return web.json_response(
            {
                "issuer": self.base,
                "token_endpoint": f"{self.base}/oauth/token",
                "revocation_endpoint": f"{self.base}/oauth/revoke",
            }
        )

    async def revoke(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def serve(self, aiohttp_server: AiohttpServer) -> str:
        app = web.Application()
        app.router.add_post("/oauth/token", self.token)
        app.router.add_post("/oauth/revoke", self.revoke)
        app.router.add_get("/.well-known/{name}", self.metadata)
        server = await aiohttp_server(app)
        self.base = str(server.make_url("")).rstrip("/")
        return self.base


async def _issuer_with_rsa_key(
    aiohttp_server: AiohttpServer, rsa_key: rsa.RSAPrivateKey, metadata_path: str
) -> tuple[AuthServer, dict[str, Any]]:
    """An issuer (``server.base``) publishing metadata at ``metadata_path`` only, and a ``private_key_jwt``
    config that discovers it."""
    server = AuthServer(rsa_key.public_key(), ["RS256"], (metadata_path,))
    base = await server.serve(aiohttp_server)
    return server, _config("private_key_jwt", {"issuer": base}, private_key=_pem(rsa_key))


async def test_private_key_jwt_assertion_verifies_with_the_public_key(
    aiohttp_server: AiohttpServer, rsa_key: rsa.RSAPrivateKey
) -> None:
    server = AuthServer(rsa_key.public_key(), ["RS256"])
    base = await server.serve(aiohttp_server)
    config = _config("private_key_jwt", {"token_host": base}, private_key=_pem(rsa_key), key_id="k1")
    async with ClientCredentials(config) as client:
        await client.get_token({"scope": "read"})
        await client.get_token({"scope": "read"})
    first, second = server.claims
    assert first["sub"] == "client-id"
    assert first["exp"] - first["iat"] == 60
    assert first["jti"] != second["jti"]
    assert server.forms[0]["client_id"] == "client-id"
    assert "client_secret" not in server.forms[0]


async def test_private_key_file_is_loaded(
    aiohttp_server: AiohttpServer, rsa_key: rsa.RSAPrivateKey, tmp_path: Any
) -> None:
    server = AuthServer(rsa_key.public_key(), ["PS256"])
    base = await server.serve(aiohttp_server)
    key_file = tmp_path / "key.pem"
    key_file.write_text(_pem(rsa_key))
    config = {
        "client": {"id": "client-id", "privateKeyFile": str(key_file), "assertionAlg": "PS256"},
        "auth": {"tokenHost": base},
        "options": {"authorizationMethod": "private_key_jwt"},
    }
    async with ClientCredentials(config) as client:
        assert (await client.get_token()).access_token == "at-1"


async def test_client_secret_jwt_signs_with_the_secret(aiohttp_server: AiohttpServer) -> None:
    server = AuthServer(HMAC_SECRET, ["HS256"])
    base = await server.serve(aiohttp_server)
    config = _config("client_secret_jwt", {"token_host": base}, secret=HMAC_SECRET)
    async with ClientCredentials(config) as client:
        await client.get_token()
    assert server.claims[0]["iss"] == "client-id"


def test_invalid_private_key_is_a_config_error() -> None:
    config = _config("private_key_jwt", {"token_host": "http://127.0.0.1:1"}, private_key="not a key")
    with pytest.raises(ConfigError):
        ClientCredentials(config)


async def test_discovery_finds_the_token_endpoint_once(
    aiohttp_server: AiohttpServer, rsa_key: rsa.RSAPrivateKey
) -> None:
    server, config = await _issuer_with_rsa_key(aiohttp_server, rsa_key, "/.well-known/oauth-authorization-server")
    base = server.base
    async with ClientCredentials(config) as client:
        with pytest.raises(OAuth2Error, match="resolve_token_endpoint"):
            _ = client.token_endpoint
        await client.get_token()
        await client.get_token()
        assert client.token_endpoint == f"{base}/oauth/token"
        assert await client.resolve_token_endpoint() == f"{base}/oauth/token"
        assert await client.create_token({"access_token": "x"}).revoke("access_token") is None
    assert server.hits == ["/.well-known/oauth-authorization-server"]
    assert server.claims[0]["aud"] == f"{base}/oauth/token"


async def test_discovery_runs_once_per_request_even_when_the_cache_keeps_nothing(
    aiohttp_server: AiohttpServer, rsa_key: rsa.RSAPrivateKey
) -> None:
    server, config = await _issuer_with_rsa_key(aiohttp_server, rsa_key, "/.well-known/oauth-authorization-server")
    base = server.base
    async with ClientCredentials(config, metadata_cache=MetadataCache(ttl=0)) as client:
        await client.get_token()
    assert server.hits == ["/.well-known/oauth-authorization-server"]
    assert server.claims[0]["aud"] == f"{base}/oauth/token"


async def test_discovery_falls_back_to_the_oidc_document(
    aiohttp_server: AiohttpServer, rsa_key: rsa.RSAPrivateKey
) -> None:
    server, config = await _issuer_with_rsa_key(aiohttp_server, rsa_key, "/.well-known/openid-configuration")
    async with ClientCredentials(config) as client:
        await client.get_token()
    assert server.hits == ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]


async def test_discovery_url_is_fetched_directly(aiohttp_server: AiohttpServer) -> None:
    server = AuthServer(HMAC_SECRET, ["HS256"], ("/.well-known/openid-configuration",))
    base = await server.serve(aiohttp_server)
    config = _config(
        "client_secret_jwt", {"discovery_url": f"{base}/.well-known/openid-configuration"}, secret=HMAC_SECRET
    )
    async with ClientCredentials(config) as client:
        assert await client.resolve_token_endpoint() == f"{base}/oauth/token"
    assert server.hits == ["/.well-known/openid-configuration"]


async def test_discovery_without_any_document_raises_the_last_failure(aiohttp_server: AiohttpServer) -> None:
    server = AuthServer(HMAC_SECRET, ["HS256"])
    base = await server.serve(aiohttp_server)
    config = {"client": {"id": "client-id", "secret": "s"}, "auth": {"issuer": base}}
    async with ClientCredentials(config) as client:
        with pytest.raises(TokenRequestError) as caught:
            await client.get_token()
    assert caught.value.status == 404
    assert len(server.hits) == 2


async def serve_metadata(
    aiohttp_server: AiohttpServer, metadata: Callable[[web.Request], Awaitable[web.Response]]
) -> str:
    """A server answering every well-known metadata path with ``metadata``; its base URL (the issuer)."""
    app = web.Application()
    app.router.add_get("/.well-known/{name}", metadata)
    return str((await aiohttp_server(app)).make_url("")).rstrip("/")


async def test_discovery_document_for_another_issuer_is_refused(aiohttp_server: AiohttpServer) -> None:
    async def metadata(_: web.Request) -> web.Response:
        return web.json_response({"issuer": "http://127.0.0.1:9/evil", "token_endpoint": "http://127.0.0.1:9/t"})

    base = await serve_metadata(aiohttp_server, metadata)
    config = {"client": {"id": "client-id", "secret": "s"}, "auth": {"issuer": base}}
    async with ClientCredentials(config) as client:
        with pytest.raises(TokenResponseError, match="does not match"):
            await client.get_token()


async def test_discovery_without_revocation_endpoint_cannot_revoke(aiohttp_server: AiohttpServer) -> None:
    async def metadata(request: web.Request) -> web.Response:
        origin = f"http://{request.host}"
        return web.json_response({"issuer": origin, "token_endpoint": f"{origin}/t"}, dumps=json.dumps)

    base = await serve_metadata(aiohttp_server, metadata)
    config = {"client": {"id": "client-id", "secret": "s"}, "auth": {"issuer": base}}
    async with ClientCredentials(config) as client:
        with pytest.raises(ConfigError, match="revocation_endpoint"):
            await client.create_token({"access_token": "x"}).revoke("access_token")
