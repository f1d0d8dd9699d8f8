"""The sample API: RFC 6750 challenges, token validation, and what it echoes back."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from yarl import URL

from tokenrelay.devidp.keys import generate_signing_key
from tokenrelay.devidp.sample_api import stream_pattern
from tokenrelay.devidp.tokens import mint_access_token
from tokenrelay.fingerprints import fingerprint

from .support import AUDIENCE, POST_ID, Api, Idp, fetch_token

EIGHT_MIB = 8 * 1024 * 1024


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_hello_answers_the_subject_scope_and_fingerprint(http: aiohttp.ClientSession, idp: Idp, api: Api) -> None:
    token = await fetch_token(http, idp)
    async with http.get(f"{api.url}/hello", headers=bearer(token)) as response:
        body = await response.json()
    assert body == {"hello": POST_ID, "scope": "sample.read", "token_fingerprint": fingerprint(token)}


async def test_missing_token_is_401_with_a_bare_bearer_challenge(http: aiohttp.ClientSession, api: Api) -> None:
    async with http.get(f"{api.url}/hello") as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="sample"'
    assert api.state.rejected["missing"] == 1


async def test_expired_token_is_401_invalid_token(http: aiohttp.ClientSession, idp: Idp, api: Api) -> None:
    expired = idp.state.mint(POST_ID, issuer=idp.url, lifetime=0)
    async with http.get(f"{api.url}/hello", headers=bearer(expired.token)) as response:
        assert response.status == 401
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert api.state.rejected["expired"] == 1


async def test_token_for_another_audience_is_401(http: aiohttp.ClientSession, idp: Idp, api: Api) -> None:
    token = await fetch_token(http, idp, audience="urn:other")
    async with http.get(f"{api.url}/hello", headers=bearer(token)) as response:
        assert response.status == 401
    assert api.state.rejected["wrong_audience"] == 1


async def test_token_from_another_issuer_is_401(http: aiohttp.ClientSession, idp: Idp, api: Api) -> None:
    forged = idp.state.mint(POST_ID, issuer="http://127.0.0.1:1")
    async with http.get(f"{api.url}/hello", headers=bearer(forged.token)) as response:
        assert response.status == 401
    assert api.state.rejected["wrong_issuer"] == 1


async def test_token_signed_by_another_key_is_401(http: aiohttp.ClientSession, idp: Idp, api: Api) -> None:
    other = generate_signing_key()
    forged = mint_access_token(other, issuer=idp.url, client_id=POST_ID, scope=(), audience=AUDIENCE, lifetime=60)
    async with http.get(f"{api.url}/hello", headers=bearer(forged.token)) as response:
        assert response.status == 401
    assert api.state.rejected["unknown_kid"] == 1


async def test_garbage_token_is_401_invalid_token(http: aiohttp.ClientSession, api: Api) -> None:
    async with http.get(f"{api.url}/hello", headers=bearer("not.a.jwt")) as response:
        assert response.status == 401
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


async def test_missing_scope_is_403_insufficient_scope(http: aiohttp.ClientSession, idp: Idp, start_api: Any) -> None:
    api = await start_api(required_scope="sample.write")
    token = await fetch_token(http, idp)  # the post client may only have sample.read
    async with http.get(f"{api.url}/hello", headers=bearer(token)) as response:
        assert response.status == 403
        challenge = response.headers["WWW-Authenticate"]
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="sample.write"' in challenge


async def test_remote_jwks_is_fetched_once_and_cached(http: aiohttp.ClientSession, idp: Idp, start_api: Any) -> None:
    api = await start_api(keys=f"{idp.url}/jwks")
    token = await fetch_token(http, idp)
    for _ in range(3):
        async with http.get(f"{api.url}/hello", headers=bearer(token)) as response:
            assert response.status == 200
    assert api.state.keys.fetches == 1  # type: ignore[attr-defined]


async def test_remote_jwks_unknown_kid_is_refused_without_refetch_storm(
    http: aiohttp.ClientSession, idp: Idp, start_api: Any
) -> None:
    api = await start_api(keys=f"{idp.url}/jwks")
    forged = mint_access_token(
        generate_signing_key(), issuer=idp.url, client_id=POST_ID, scope=(), audience=AUDIENCE, lifetime=60
    )
    for _ in range(3):
        async with http.get(f"{api.url}/hello", headers=bearer(forged.token)) as response:
            assert response.status == 401
    assert api.state.keys.fetches == 1  # type: ignore[attr-defined]


async def test_echo_shows_method_raw_query_and_headers_but_not_the_token(
    http: aiohttp.ClientSession, idp: Idp, api: Api
) -> None:
    token = await fetch_token(http, idp)
    url = f"{api.url}/echo/a%2Fb/c?x=1&y=%20z&x=2"
    headers = {**bearer(token), "X-Custom": "v1"}
    async with http.put(URL(url, encoded=True), headers=headers, data=b"hello") as response:
        body = await response.json()
    assert body["method"] == "PUT"
    assert body["raw_path"] == "/echo/a%2Fb/c"
    assert body["query_string"] == "x=1&y=%20z&x=2"
    assert ["X-Custom", "v1"] in body["headers"]
    assert body["authorization"] == {"present": True, "fingerprint": fingerprint(token)}
    assert token not in str(body)
    assert (body["body_length"], body["body_sha256"]) == (5, hashlib.sha256(b"hello").hexdigest())


async def test_stream_sends_exactly_the_requested_bytes_chunked(
    http: aiohttp.ClientSession, idp: Idp, api: Api
) -> None:
    token = await fetch_token(http, idp)
    sha, length = hashlib.sha256(), 0
    async with http.get(f"{api.url}/stream?bytes={EIGHT_MIB + 3}", headers=bearer(token)) as response:
        assert response.headers["Transfer-Encoding"] == "chunked"
        async for chunk in response.content.iter_chunked(1 << 16):
            sha.update(chunk)
            length += len(chunk)
    assert length == EIGHT_MIB + 3
    assert sha.hexdigest() == hashlib.sha256(stream_pattern(EIGHT_MIB + 3)).hexdigest()


async def test_stream_with_bad_size_is_400(http: aiohttp.ClientSession, idp: Idp, api: Api) -> None:
    token = await fetch_token(http, idp)
    async with http.get(f"{api.url}/stream?bytes=-1", headers=bearer(token)) as response:
        assert response.status == 400


async def test_upload_of_8_mib_streamed_body_reports_length_and_digest(
    http: aiohttp.ClientSession, idp: Idp, api: Api
) -> None:
    block = os.urandom(1 << 20)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield block

    token = await fetch_token(http, idp)
    async with http.post(f"{api.url}/upload", headers=bearer(token), data=body()) as response:
        result = await response.json()
    assert result == {"length": EIGHT_MIB, "sha256": hashlib.sha256(block * 8).hexdigest()}


@pytest.mark.parametrize("path", ["/hello", "/echo/x", "/stream?bytes=1"])
async def test_every_resource_route_requires_a_token(http: aiohttp.ClientSession, api: Api, path: str) -> None:
    async with http.get(f"{api.url}{path}") as response:
        assert response.status == 401


async def test_sample_stats_count_requests_and_rejections_by_reason(
    http: aiohttp.ClientSession, idp: Idp, api: Api
) -> None:
    token = await fetch_token(http, idp)
    async with http.get(f"{api.url}/hello", headers=bearer(token)):
        pass
    async with http.get(f"{api.url}/hello"):
        pass
    async with http.get(f"{api.url}/hello", headers=bearer("x")):
        pass
    async with http.get(f"{api.url}/_sample/stats") as response:
        stats = await response.json()
    assert stats == {
        "requests": 3,
        "unauthorized": 2,
        "unauthorized_by_reason": {"malformed": 1, "missing": 1},
        "forbidden": 0,
    }
