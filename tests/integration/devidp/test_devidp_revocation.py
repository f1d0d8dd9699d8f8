"""Revocation (RFC 7009) and introspection (RFC 7662), seen through the sample API too."""

from __future__ import annotations

from typing import Any

import aiohttp
import jwt

from tokenrelay.devidp.introspection import IntrospectionCheck
from tokenrelay.fingerprints import fingerprint

from .support import BASIC_ID, POST_ID, POST_SECRET, SPECIAL_SECRET, Api, Idp, basic_header, fetch_token

POST_CREDS = {"client_id": POST_ID, "client_secret": POST_SECRET}


async def test_revoked_token_is_refused_by_the_sample_api(http: aiohttp.ClientSession, idp: Idp, api: Api) -> None:
    token = await fetch_token(http, idp)
    async with http.get(f"{api.url}/hello", headers={"Authorization": f"Bearer {token}"}) as before:
        assert before.status == 200
    async with http.post(f"{idp.url}/revoke", data={"token": token, **POST_CREDS}) as response:
        assert response.status == 200
        assert await response.read() == b""
    async with http.get(f"{api.url}/hello", headers={"Authorization": f"Bearer {token}"}) as after:
        assert after.status == 401
        assert 'error="invalid_token"' in after.headers["WWW-Authenticate"]
    assert api.state.rejected["revoked"] == 1


async def test_revocation_needs_client_authentication(http: aiohttp.ClientSession, idp: Idp) -> None:
    token = await fetch_token(http, idp)
    async with http.post(f"{idp.url}/revoke", data={"token": token}) as response:
        assert response.status == 401
    assert not idp.state.revoked


async def test_revoking_another_clients_token_is_a_silent_no_op(http: aiohttp.ClientSession, idp: Idp) -> None:
    token = await fetch_token(http, idp)
    headers = {"Authorization": basic_header(BASIC_ID, SPECIAL_SECRET)}
    async with http.post(f"{idp.url}/revoke", data={"token": token}, headers=headers) as response:
        assert response.status == 200
    assert not idp.state.revoked


async def test_revoking_garbage_is_200(http: aiohttp.ClientSession, idp: Idp) -> None:
    async with http.post(f"{idp.url}/revoke", data={"token": "not-a-token", **POST_CREDS}) as response:
        assert response.status == 200
    assert idp.state.outcomes("revoke") == {POST_ID: {"ignored": 1}}


async def test_python_api_revoke_by_jti(http: aiohttp.ClientSession, idp: Idp, api: Api) -> None:
    token = await fetch_token(http, idp)
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    assert idp.state.revoke(jti) is True
    async with http.get(f"{api.url}/hello", headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 401


async def test_introspection_reports_an_active_token(http: aiohttp.ClientSession, idp: Idp) -> None:
    token = await fetch_token(http, idp)
    async with http.post(f"{idp.url}/introspect", data={"token": token, **POST_CREDS}) as response:
        body = await response.json()
    assert body["active"] is True
    assert (body["client_id"], body["scope"], body["iss"]) == (POST_ID, "sample.read", idp.url)


async def test_introspection_reports_a_revoked_token_inactive(http: aiohttp.ClientSession, idp: Idp) -> None:
    token = await fetch_token(http, idp)
    idp.state.revoke(jwt.decode(token, options={"verify_signature": False})["jti"])
    async with http.post(f"{idp.url}/introspect", data={"token": token, **POST_CREDS}) as response:
        assert await response.json() == {"active": False}


async def test_introspection_reports_an_expired_token_inactive(http: aiohttp.ClientSession, idp: Idp) -> None:
    expired = idp.state.mint(POST_ID, issuer=idp.url, lifetime=-5)
    async with http.post(f"{idp.url}/introspect", data={"token": expired.token, **POST_CREDS}) as response:
        assert await response.json() == {"active": False}


async def test_revoke_recent_over_http_revokes_what_was_issued(http: aiohttp.ClientSession, idp: Idp, api: Api) -> None:
    token = await fetch_token(http, idp)
    async with http.post(f"{idp.url}/_dev/revoke-recent", json={"client_id": POST_ID}) as response:
        assert await response.json() == {"revoked": 1}
    async with http.get(f"{api.url}/hello", headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 401


async def test_revoke_recent_for_another_client_leaves_tokens_alone(http: aiohttp.ClientSession, idp: Idp) -> None:
    await fetch_token(http, idp)
    async with http.post(f"{idp.url}/_dev/revoke-recent", json={"client_id": BASIC_ID}) as response:
        assert await response.json() == {"revoked": 0}


async def test_stats_list_recent_tokens_by_fingerprint_only(http: aiohttp.ClientSession, idp: Idp) -> None:
    token = await fetch_token(http, idp)
    async with http.get(f"{idp.url}/_dev/stats") as response:
        stats = await response.json()
    (record,) = stats["recent_tokens"]
    assert (record["client_id"], record["token"]) == (POST_ID, fingerprint(token))
    assert token not in str(stats)


async def test_sample_api_over_http_uses_introspection_for_revocation(
    http: aiohttp.ClientSession, idp: Idp, start_api: Any
) -> None:
    check = IntrospectionCheck(f"{idp.url}/introspect", BASIC_ID, SPECIAL_SECRET)
    api = await start_api(keys=f"{idp.url}/jwks", revocation=check)
    token = await fetch_token(http, idp)
    async with http.get(f"{api.url}/hello", headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 200
    idp.state.revoke_recent()
    async with http.get(f"{api.url}/hello", headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 401
    assert check.calls == 2


async def test_introspection_check_fails_closed_when_the_idp_is_unreachable(
    http: aiohttp.ClientSession, idp: Idp, unused_loopback_port: int
) -> None:
    check = IntrospectionCheck(f"http://127.0.0.1:{unused_loopback_port}/introspect", POST_ID, POST_SECRET)
    try:
        assert await check("jti", "token") is True
    finally:
        await check.close()


async def test_revoke_recent_with_a_bad_body_is_400(http: aiohttp.ClientSession, idp: Idp) -> None:
    await fetch_token(http, idp)
    async with http.post(f"{idp.url}/_dev/revoke-recent", json={"client_id": 7}) as response:
        assert response.status == 400
    assert not idp.state.revoked
