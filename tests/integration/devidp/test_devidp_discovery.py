"""Discovery documents (RFC 8414 / OIDC) and the public JWKS."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tokenrelay.devidp.keys import SigningKey, jwk_thumbprint, load_signing_key

from .support import Idp


async def get_json(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        return await response.json()


@pytest.mark.parametrize("name", ["oauth-authorization-server", "openid-configuration"])
async def test_discovery_document_names_every_endpoint(http: aiohttp.ClientSession, idp: Idp, name: str) -> None:
    metadata = await get_json(http, f"{idp.url}/.well-known/{name}")
    assert metadata["issuer"] == idp.url
    assert metadata["token_endpoint"] == idp.token_url
    assert metadata["jwks_uri"] == f"{idp.url}/jwks"
    assert metadata["revocation_endpoint"] == f"{idp.url}/revoke"
    assert metadata["introspection_endpoint"] == f"{idp.url}/introspect"
    assert metadata["grant_types_supported"] == ["client_credentials"]
    assert set(metadata["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
        "client_secret_jwt",
        "private_key_jwt",
    }


async def test_issuer_follows_the_host_header_until_the_runner_fixes_it(http: aiohttp.ClientSession, idp: Idp) -> None:
    idp.state.issuer = None
    url = f"{idp.url}/.well-known/oauth-authorization-server"
    metadata = await get_json(http, url.replace("127.0.0.1", "localhost"))
    assert metadata["issuer"] == idp.url.replace("127.0.0.1", "localhost")


async def test_jwks_publishes_the_public_key_with_its_thumbprint_kid(http: aiohttp.ClientSession, idp: Idp) -> None:
    jwks = await get_json(http, f"{idp.url}/jwks")
    (key,) = jwks["keys"]
    assert key["kid"] == jwk_thumbprint(key) == idp.state.key.kid
    assert (key["kty"], key["alg"], key["use"]) == ("RSA", "RS256", "sig")
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)


def test_thumbprint_matches_the_rfc7638_section_3_1_example() -> None:
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3"
        "oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZ"
        "Hzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kE"
        "gU8awapJzKnqDKgw"
    )
    jwk = {"kty": "RSA", "n": n, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"}
    assert jwk_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_signing_key_loaded_from_pem_keeps_its_kid(signing_key: SigningKey) -> None:
    pem = signing_key.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert load_signing_key(pem).kid == signing_key.kid


def test_non_rsa_signing_key_is_refused() -> None:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ValueError, match="RSA"):
        load_signing_key(pem)
