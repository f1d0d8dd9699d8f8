"""The grant core (``tokenrelay.grant.ClientCredentials``) against the dev IdP: the two must agree on the wire."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from tokenrelay import grant
from tokenrelay.devidp.clients import DevClient
from tokenrelay.devidp.state import Fault

from .support import HSJWT_ID, HSJWT_SECRET, PKJWT_ID, POST_ID, POST_SECRET, SCOPES, Api, ClientKey, Idp

ASCII_SPECIAL_ID = "svc:a b+c"
ASCII_SPECIAL_SECRET = "p@ss:w+rd %/?&=~!'()*"


def client_for(idp: Idp, client_id: str, method: str, **client: Any) -> Any:
    return grant.ClientCredentials(
        client={"id": client_id, **client},
        auth={"token_host": idp.url, "token_path": "/token", "revoke_path": "/revoke"},
        options={"authorization_method": method},
    )


@pytest.fixture
async def special_idp(start_idp: Callable[..., Any], clients: tuple[DevClient, ...]) -> Idp:
    extra = DevClient(ASCII_SPECIAL_ID, ASCII_SPECIAL_SECRET, ("client_secret_basic",), allowed_scopes=SCOPES)
    started: Idp = await start_idp(clients=(*clients, extra))
    return started


async def test_strict_basic_encoding_of_special_characters_is_accepted(special_idp: Idp) -> None:
    async with client_for(
        special_idp, ASCII_SPECIAL_ID, "client_secret_basic", secret=ASCII_SPECIAL_SECRET
    ) as credentials:
        token = await credentials.get_token({"scope": ["sample.read"]})
    assert token.token["scope"] == "sample.read"


async def test_client_secret_post_token_is_accepted_by_the_sample_api(
    idp: Idp, api: Api, http: aiohttp.ClientSession
) -> None:
    async with client_for(idp, POST_ID, "client_secret_post", secret=POST_SECRET) as credentials:
        token = await credentials.get_token()
    async with http.get(f"{api.url}/hello", headers={"Authorization": f"Bearer {token.access_token}"}) as response:
        assert response.status == 200


async def test_private_key_jwt_assertions_from_the_grant_core_are_accepted(idp: Idp, client_key: ClientKey) -> None:
    pem = client_key.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    async with client_for(idp, PKJWT_ID, "private_key_jwt", private_key=pem, key_id=client_key.kid) as credentials:
        first = await credentials.get_token()
        second = await credentials.get_token()  # a fresh jti each time, so no replay refusal
    assert first.access_token != second.access_token


async def test_client_secret_jwt_assertions_from_the_grant_core_are_accepted(idp: Idp) -> None:
    async with client_for(idp, HSJWT_ID, "client_secret_jwt", secret=HSJWT_SECRET) as credentials:
        token = await credentials.get_token()
    assert jwt.decode(token.access_token, options={"verify_signature": False})["sub"] == HSJWT_ID


async def test_grant_core_revocation_makes_the_sample_api_refuse_the_token(
    idp: Idp, api: Api, http: aiohttp.ClientSession
) -> None:
    async with client_for(idp, POST_ID, "client_secret_post", secret=POST_SECRET) as credentials:
        token = await credentials.get_token()
        await token.revoke("access_token")
    async with http.get(f"{api.url}/hello", headers={"Authorization": f"Bearer {token.access_token}"}) as response:
        assert response.status == 401
    assert idp.state.count("revocations") == 1


async def test_grant_core_sees_injected_503_as_a_token_request_error(idp: Idp) -> None:
    idp.state.inject_faults(1, Fault(status=503))
    async with client_for(idp, POST_ID, "client_secret_post", secret=POST_SECRET) as credentials:
        with pytest.raises(grant.TokenRequestError) as caught:
            await credentials.get_token()
    assert (caught.value.status, caught.value.error) == (503, "temporarily_unavailable")
