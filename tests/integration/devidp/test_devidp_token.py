"""The token endpoint: every client authentication method, RFC 6749 §5.2 errors, and the issued JWT."""

from __future__ import annotations

import base64
import time
from typing import Any

import aiohttp
import jwt
import pytest
from structlog.testing import capture_logs

from tokenrelay.devidp.clients import DevClient
from tokenrelay.devidp.config import DevIdpConfig
from tokenrelay.devidp.keys import SigningKey

from .support import (
    AUDIENCE,
    BASIC_ID,
    HSJWT_ID,
    HSJWT_SECRET,
    PKJWT_ID,
    POST_ID,
    POST_SECRET,
    SPECIAL_SECRET,
    ClientKey,
    Idp,
    assertion,
    assertion_form,
    basic_header,
)

GRANT = {"grant_type": "client_credentials"}


async def post_token(
    http: aiohttp.ClientSession, idp: Idp, data: Any, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any], aiohttp.ClientResponse]:
    async with http.post(idp.token_url, data=data, headers=headers) as response:
        return response.status, await response.json(), response


async def test_basic_auth_with_special_character_secret_gets_a_token(http: aiohttp.ClientSession, idp: Idp) -> None:
    status, body, _ = await post_token(http, idp, GRANT, {"Authorization": basic_header(BASIC_ID, SPECIAL_SECRET)})
    assert status == 200, body
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert body["scope"] == "sample.read sample.write"


async def test_basic_auth_without_form_encoding_is_refused(http: aiohttp.ClientSession, idp: Idp) -> None:
    raw = base64.b64encode(f"{BASIC_ID}:{SPECIAL_SECRET}".encode()).decode()
    status, body, _ = await post_token(http, idp, GRANT, {"Authorization": f"Basic {raw}"})
    assert (status, body["error"]) == (401, "invalid_client")


async def test_wrong_basic_secret_is_401_invalid_client_with_basic_challenge(
    http: aiohttp.ClientSession, idp: Idp
) -> None:
    status, body, response = await post_token(http, idp, GRANT, {"Authorization": basic_header(BASIC_ID, "nope")})
    assert (status, body["error"]) == (401, "invalid_client")
    assert response.headers["WWW-Authenticate"].startswith("Basic realm=")


async def test_client_secret_post_gets_a_token(http: aiohttp.ClientSession, idp: Idp) -> None:
    status, body, response = await post_token(http, idp, {**GRANT, "client_id": POST_ID, "client_secret": POST_SECRET})
    assert status == 200, body
    assert response.headers["Cache-Control"] == "no-store"
    assert body["scope"] == "sample.read"


async def test_wrong_post_secret_is_401_without_basic_challenge(http: aiohttp.ClientSession, idp: Idp) -> None:
    status, body, response = await post_token(http, idp, {**GRANT, "client_id": POST_ID, "client_secret": "x"})
    assert (status, body["error"]) == (401, "invalid_client")
    assert "WWW-Authenticate" not in response.headers


async def test_auth_method_not_registered_for_the_client_is_refused(http: aiohttp.ClientSession, idp: Idp) -> None:
    status, body, _ = await post_token(http, idp, GRANT, {"Authorization": basic_header(POST_ID, POST_SECRET)})
    assert (status, body["error"]) == (401, "invalid_client")


async def test_two_auth_methods_in_one_request_are_invalid_request(http: aiohttp.ClientSession, idp: Idp) -> None:
    data = {**GRANT, "client_id": POST_ID, "client_secret": POST_SECRET}
    status, body, _ = await post_token(http, idp, data, {"Authorization": basic_header(BASIC_ID, SPECIAL_SECRET)})
    assert (status, body["error"]) == (400, "invalid_request")


async def test_no_client_authentication_is_invalid_client(http: aiohttp.ClientSession, idp: Idp) -> None:
    status, body, _ = await post_token(http, idp, GRANT)
    assert (status, body["error"]) == (401, "invalid_client")


async def test_private_key_jwt_gets_a_token(http: aiohttp.ClientSession, idp: Idp, client_key: ClientKey) -> None:
    signed = assertion(PKJWT_ID, client_key.private_key, idp.token_url, kid=client_key.kid)
    status, body, _ = await post_token(http, idp, assertion_form(signed))
    assert status == 200, body
    assert idp.state.outcomes()[PKJWT_ID] == {"issued": 1}


async def test_private_key_jwt_with_issuer_as_audience_is_accepted(
    http: aiohttp.ClientSession, idp: Idp, client_key: ClientKey
) -> None:
    signed = assertion(PKJWT_ID, client_key.private_key, idp.url)
    status, body, _ = await post_token(http, idp, assertion_form(signed))
    assert status == 200, body


async def test_assertion_for_another_audience_is_refused(
    http: aiohttp.ClientSession, idp: Idp, client_key: ClientKey
) -> None:
    signed = assertion(PKJWT_ID, client_key.private_key, "https://elsewhere.example/token")
    status, body, _ = await post_token(http, idp, assertion_form(signed))
    assert (status, body["error"]) == (401, "invalid_client")


async def test_assertion_signed_by_an_unregistered_key_is_refused(
    http: aiohttp.ClientSession, idp: Idp, signing_key: Any
) -> None:
    signed = assertion(PKJWT_ID, signing_key.private_key, idp.token_url)
    status, body, _ = await post_token(http, idp, assertion_form(signed))
    assert (status, body["error"]) == (401, "invalid_client")


async def test_expired_assertion_is_refused(http: aiohttp.ClientSession, idp: Idp, client_key: ClientKey) -> None:
    past = int(time.time()) - 120
    signed = assertion(PKJWT_ID, client_key.private_key, idp.token_url, iat=past - 60, exp=past)
    status, body, _ = await post_token(http, idp, assertion_form(signed))
    assert (status, body["error"]) == (401, "invalid_client")
    assert "expired" in body["error_description"].lower()


async def test_assertion_whose_iss_differs_from_sub_is_refused(
    http: aiohttp.ClientSession, idp: Idp, client_key: ClientKey
) -> None:
    signed = assertion(PKJWT_ID, client_key.private_key, idp.token_url, iss="someone-else")
    status, body, _ = await post_token(http, idp, assertion_form(signed))
    assert (status, body["error"]) == (401, "invalid_client")


async def test_replayed_assertion_jti_is_refused(http: aiohttp.ClientSession, idp: Idp, client_key: ClientKey) -> None:
    signed = assertion(PKJWT_ID, client_key.private_key, idp.token_url)
    first, _, _ = await post_token(http, idp, assertion_form(signed))
    status, body, _ = await post_token(http, idp, assertion_form(signed))
    assert first == 200
    assert (status, body["error"]) == (401, "invalid_client")
    assert "replay" in body["error_description"]


async def test_client_secret_jwt_gets_a_token(http: aiohttp.ClientSession, idp: Idp) -> None:
    signed = assertion(HSJWT_ID, HSJWT_SECRET, idp.token_url, alg="HS256")
    status, body, _ = await post_token(http, idp, assertion_form(signed))
    assert status == 200, body


async def test_client_secret_jwt_with_wrong_secret_is_refused(http: aiohttp.ClientSession, idp: Idp) -> None:
    signed = assertion(HSJWT_ID, HSJWT_SECRET + "x", idp.token_url, alg="HS256")
    status, body, _ = await post_token(http, idp, assertion_form(signed))
    assert (status, body["error"]) == (401, "invalid_client")


async def test_unsigned_assertion_is_refused(http: aiohttp.ClientSession, idp: Idp) -> None:
    signed = assertion(HSJWT_ID, None, idp.token_url, alg="none")
    status, body, _ = await post_token(http, idp, assertion_form(signed))
    assert (status, body["error"]) == (401, "invalid_client")


async def test_unknown_grant_type_is_400_unsupported_grant_type(http: aiohttp.ClientSession, idp: Idp) -> None:
    data = {"grant_type": "password", "client_id": POST_ID, "client_secret": POST_SECRET}
    status, body, _ = await post_token(http, idp, data)
    assert (status, body["error"]) == (400, "unsupported_grant_type")


async def test_missing_grant_type_is_400_invalid_request(http: aiohttp.ClientSession, idp: Idp) -> None:
    status, body, _ = await post_token(http, idp, {"client_id": POST_ID, "client_secret": POST_SECRET})
    assert (status, body["error"]) == (400, "invalid_request")


async def test_json_body_is_400_invalid_request(http: aiohttp.ClientSession, idp: Idp) -> None:
    async with http.post(idp.token_url, json={**GRANT, "client_id": POST_ID}) as response:
        assert response.status == 400
        assert (await response.json())["error"] == "invalid_request"


async def test_repeated_parameter_is_400_invalid_request(http: aiohttp.ClientSession, idp: Idp) -> None:
    data = [*GRANT.items(), ("scope", "a"), ("scope", "b"), ("client_id", POST_ID), ("client_secret", POST_SECRET)]
    status, body, _ = await post_token(http, idp, data)
    assert (status, body["error"]) == (400, "invalid_request")


async def test_scope_not_allowed_is_400_invalid_scope(http: aiohttp.ClientSession, idp: Idp) -> None:
    data = {**GRANT, "client_id": POST_ID, "client_secret": POST_SECRET, "scope": "sample.read admin"}
    status, body, _ = await post_token(http, idp, data)
    assert (status, body["error"]) == (400, "invalid_scope")


async def test_requested_subset_of_scopes_is_granted(http: aiohttp.ClientSession, idp: Idp) -> None:
    headers = {"Authorization": basic_header(BASIC_ID, SPECIAL_SECRET)}
    status, body, _ = await post_token(http, idp, {**GRANT, "scope": "sample.write"}, headers)
    assert (status, body["scope"]) == (200, "sample.write")


async def test_issued_token_is_an_rfc9068_jwt_that_verifies_with_the_jwks(
    http: aiohttp.ClientSession, idp: Idp
) -> None:
    status, body, _ = await post_token(http, idp, {**GRANT, "client_id": POST_ID, "client_secret": POST_SECRET})
    async with http.get(f"{idp.url}/jwks") as response:
        jwks = await response.json()
    token = body["access_token"]
    header = jwt.get_unverified_header(token)
    key = jwt.PyJWKSet.from_dict(jwks)[header["kid"]]
    claims = jwt.decode(token, key, algorithms=["RS256"], audience=AUDIENCE, issuer=idp.url)
    assert status == 200
    assert (header["typ"], header["alg"]) == ("at+jwt", "RS256")
    assert claims["sub"] == claims["client_id"] == POST_ID
    assert claims["scope"] == "sample.read"
    assert claims["exp"] - claims["iat"] == 300
    assert claims["jti"]


async def test_audience_and_resource_parameters_become_the_aud_claim(http: aiohttp.ClientSession, idp: Idp) -> None:
    data = [
        *GRANT.items(),
        ("client_id", POST_ID),
        ("client_secret", POST_SECRET),
        ("audience", "urn:a"),
        ("resource", "https://b.example/"),
        ("resource", "https://c.example/"),
    ]
    status, body, _ = await post_token(http, idp, data)
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert status == 200
    assert claims["aud"] == ["urn:a", "https://b.example/", "https://c.example/"]


async def test_relative_resource_is_400_invalid_target(http: aiohttp.ClientSession, idp: Idp) -> None:
    data = {**GRANT, "client_id": POST_ID, "client_secret": POST_SECRET, "resource": "/relative"}
    status, body, _ = await post_token(http, idp, data)
    assert (status, body["error"]) == (400, "invalid_target")


@pytest.mark.parametrize(("include", "expected"), [(False, None), (True, 0)])
async def test_expires_in_can_be_omitted_or_zero(
    http: aiohttp.ClientSession, start_idp: Any, include: bool, expected: int | None
) -> None:
    idp = await start_idp(expires_in=0, include_expires_in=include)
    status, body, _ = await post_token(http, idp, {**GRANT, "client_id": POST_ID, "client_secret": POST_SECRET})
    assert status == 200
    assert body.get("expires_in") == expected


async def test_refused_secret_never_reaches_the_logs(http: aiohttp.ClientSession, idp: Idp) -> None:
    wrong = "wrong-secret-that-must-not-be-logged"
    with capture_logs() as logs:
        status, _, _ = await post_token(http, idp, GRANT, {"Authorization": basic_header(BASIC_ID, wrong)})
    assert status == 401
    assert any(entry["event"] == "token request refused" for entry in logs)
    assert wrong not in repr(logs)


async def test_body_client_id_contradicting_basic_credentials_is_invalid_request(
    http: aiohttp.ClientSession, idp: Idp
) -> None:
    headers = {"Authorization": basic_header(BASIC_ID, SPECIAL_SECRET)}
    status, body, _ = await post_token(http, idp, {**GRANT, "client_id": POST_ID}, headers)
    assert (status, body["error"]) == (400, "invalid_request")


def test_client_and_config_reprs_hide_secrets(clients: tuple[DevClient, ...], signing_key: SigningKey) -> None:
    text = repr(DevIdpConfig(clients=clients, signing_key=signing_key)) + repr(signing_key)
    assert SPECIAL_SECRET not in text
    assert POST_SECRET not in text
    assert "PRIVATE" not in text


def test_duplicate_client_ids_are_refused(clients: tuple[DevClient, ...]) -> None:
    with pytest.raises(ValueError, match="duplicate"):
        DevIdpConfig(clients=(*clients, clients[0]))
