"""tokenrelay's grant core against a real, independent authorization server (node-oidc-provider).

Two groups:

* **The harness itself**, with plain aiohttp and PyJWT only: the provider issues RFC 9068 JWTs, the protected
  API accepts them and rejects the bad ones. If tokenrelay were broken these must still pass, so a failure
  in the second group points at tokenrelay, not at the harness.
* **tokenrelay.ClientCredentials** with each client authentication method, discovery, revocation, expiry and
  ``invalid_client`` — the same flows a user runs against a production authorization server.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import secrets
import signal
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from pytest_aiohttp import AiohttpServer
from structlog.testing import capture_logs

from tests.e2e.harness import (
    AUTH_METHODS,
    OidcProvider,
    ProtectedApi,
    make_clients,
    rsa_client,
    start_oidc_provider,
    verify_with_jwks,
)
from tests.e2e.protected_api import create_app
from tokenrelay import ClientCredentials
from tokenrelay.errors import TokenRequestError

pytestmark = pytest.mark.e2e


async def call_api(
    session: aiohttp.ClientSession, api: ProtectedApi, token: str | None, path: str = "items"
) -> tuple[int, dict[str, Any], str]:
    """GET ``path`` on the protected API; returns status, JSON body and ``WWW-Authenticate``."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with session.get(api.url + path, headers=headers) as response:
        return response.status, await response.json(), response.headers.get("WWW-Authenticate", "")


async def plain_token(
    session: aiohttp.ClientSession, provider: OidcProvider, auth_method: str, **params: str
) -> dict[str, Any]:
    """A token request written out by hand (RFC 6749 §4.4, RFC 7523), independent of tokenrelay."""
    client = provider.client(auth_method)
    form = {"grant_type": "client_credentials", "scope": "api:read", **params}
    headers: dict[str, str] = {}
    if auth_method == "client_secret_basic":
        assert client.secret is not None
        pair = f"{quote_plus(client.client_id, safe='')}:{quote_plus(client.secret, safe='')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    elif auth_method == "client_secret_post":
        assert client.secret is not None
        form.update(client_id=client.client_id, client_secret=client.secret)
    else:
        now = int(time.time())
        claims: dict[str, Any] = {"iss": client.client_id, "sub": client.client_id, "iat": now, "exp": now + 60}
        claims |= {"aud": provider.token_endpoint, "jti": secrets.token_urlsafe(16)}
        if auth_method == "private_key_jwt":
            assert client.private_key_pem is not None
            assertion = jwt.encode(claims, client.private_key_pem, "RS256", headers={"kid": client.key_id})
        else:
            assert client.secret is not None
            assertion = jwt.encode(claims, client.secret, "HS256")
        form |= {
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        }
    async with session.post(provider.token_endpoint, data=form, headers=headers) as response:
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return body


async def wait_until_expired(token: str, *, not_before: float = 0.0) -> None:
    """Sleep until the JWT's ``exp`` (whole seconds) and ``not_before`` (a client's own clock) have passed."""
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    delay = max(exp, not_before) - time.time() + 0.1
    assert delay < 6, "the short-lived resource's TTL grew; keep the e2e suite fast"
    await asyncio.sleep(max(delay, 0))


# --- The harness itself ----------------------------------------------------------------------------------


@pytest.mark.parametrize("auth_method", AUTH_METHODS)
async def test_harness_provider_issues_jwt_access_tokens(
    session: aiohttp.ClientSession, oidc_provider: OidcProvider, auth_method: str
) -> None:
    body = await plain_token(session, oidc_provider, auth_method)

    claims = await verify_with_jwks(session, oidc_provider, body["access_token"])

    assert claims["client_id"] == oidc_provider.client(auth_method).client_id
    assert (body["token_type"], body["expires_in"], claims["scope"]) == ("Bearer", 60, "api:read")


async def test_harness_api_accepts_a_valid_token(
    session: aiohttp.ClientSession, oidc_provider: OidcProvider, protected_api: ProtectedApi
) -> None:
    token = (await plain_token(session, oidc_provider, "client_secret_basic"))["access_token"]

    status, body, _ = await call_api(session, protected_api, token, "items?page=2")

    assert status == 200
    assert body["client_id"] == "e2e-basic"
    assert (body["aud"], body["token_format"], body["path"]) == (oidc_provider.resource, "jwt", "/items?page=2")


async def test_harness_api_challenges_a_request_without_token(
    session: aiohttp.ClientSession, protected_api: ProtectedApi
) -> None:
    status, _, challenge = await call_api(session, protected_api, None)

    assert status == 401
    assert challenge == 'Bearer realm="tokenrelay-e2e"'


async def test_harness_api_rejects_a_token_signed_by_another_key(
    session: aiohttp.ClientSession, oidc_provider: OidcProvider, protected_api: ProtectedApi
) -> None:
    genuine = (await plain_token(session, oidc_provider, "client_secret_basic"))["access_token"]
    header = jwt.get_unverified_header(genuine)
    claims = jwt.decode(genuine, options={"verify_signature": False})
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, forger, "RS256", headers={"kid": header["kid"], "typ": "at+jwt"})

    status, body, challenge = await call_api(session, protected_api, forged)

    assert (status, body["error"]) == (401, "invalid_token")
    assert 'error="invalid_token"' in challenge


async def test_harness_api_rejects_a_token_for_another_audience(
    session: aiohttp.ClientSession,
    oidc_provider: OidcProvider,
    protected_api: ProtectedApi,
    aiohttp_server: AiohttpServer,
) -> None:
    token = (await plain_token(session, oidc_provider, "client_secret_post"))["access_token"]
    config = dataclasses.replace(protected_api.config, resources=("urn:tokenrelay:e2e:other-api",))
    server = await aiohttp_server(create_app(config), host="127.0.0.1")
    other_api = ProtectedApi(str(server.make_url("/")), config, [])

    status, body, _ = await call_api(session, other_api, token)

    assert (status, body["error_description"]) == (401, "the access token is for another audience")


async def test_harness_api_rejects_an_opaque_token_revoked_at_the_provider(
    session: aiohttp.ClientSession, oidc_provider: OidcProvider, protected_api: ProtectedApi
) -> None:
    client = oidc_provider.client("client_secret_post")
    token = (await plain_token(session, oidc_provider, "client_secret_post", resource=oidc_provider.opaque_resource))[
        "access_token"
    ]
    assert (await call_api(session, protected_api, token))[0] == 200
    form = {"token": token, "client_id": client.client_id, "client_secret": client.secret or ""}
    async with session.post(oidc_provider.revocation_endpoint, data=form) as response:
        assert response.status == 200

    status, body, _ = await call_api(session, protected_api, token)

    assert (status, body["error"]) == (401, "invalid_token")
    assert body["error_description"] == "the access token is not active (revoked or expired)"


async def test_harness_api_rejects_an_expired_jwt(
    session: aiohttp.ClientSession, oidc_provider: OidcProvider, protected_api: ProtectedApi
) -> None:
    resource = oidc_provider.short_lived_resource
    token = (await plain_token(session, oidc_provider, "client_secret_basic", resource=resource))["access_token"]

    await wait_until_expired(token)
    status, body, _ = await call_api(session, protected_api, token)

    assert (status, body["error_description"]) == (401, "the access token expired")


async def test_harness_api_records_answers_by_token_fingerprint_only(
    session: aiohttp.ClientSession, oidc_provider: OidcProvider, protected_api: ProtectedApi
) -> None:
    token = (await plain_token(session, oidc_provider, "client_secret_basic"))["access_token"]

    await call_api(session, protected_api, token)

    [seen] = protected_api.seen
    assert (seen.status, seen.path, len(seen.token_fingerprint or "")) == (200, "/items", 8)
    assert token not in repr(seen)


async def test_harness_provider_exits_cleanly_on_sigterm(tmp_path: Path) -> None:
    clients, api_client = make_clients()
    with start_oidc_provider(tmp_path, clients, api_client) as (process, _):
        process.send_signal(signal.SIGTERM)
        status = await asyncio.to_thread(process.wait, 5)

    assert status == 0


# --- tokenrelay.ClientCredentials against the provider -----------------------------------------------------


@pytest.mark.parametrize("auth_method", AUTH_METHODS)
async def test_get_token_returns_a_jwt_verifying_against_the_provider_jwks(
    session: aiohttp.ClientSession, oidc_provider: OidcProvider, auth_method: str
) -> None:
    async with ClientCredentials(oidc_provider.grant_config(auth_method)) as client:
        token = await client.get_token({"scope": "api:read", "resource": oidc_provider.resource})

    claims = await verify_with_jwks(session, oidc_provider, token.access_token)

    assert claims["client_id"] == oidc_provider.client(auth_method).client_id
    assert claims["scope"] == "api:read"


@pytest.mark.parametrize("auth_method", AUTH_METHODS)
async def test_protected_api_accepts_the_token_of_each_client_auth_method(
    session: aiohttp.ClientSession, oidc_provider: OidcProvider, protected_api: ProtectedApi, auth_method: str
) -> None:
    async with ClientCredentials(oidc_provider.grant_config(auth_method)) as client:
        token = await client.get_token({"scope": "api:read api:write", "resource": oidc_provider.resource})

    status, body, _ = await call_api(session, protected_api, token.access_token)

    assert status == 200
    assert (body["client_id"], body["scope"]) == (oidc_provider.client(auth_method).client_id, "api:read api:write")


async def test_get_token_without_discovery_uses_token_host_and_paths(
    session: aiohttp.ClientSession, oidc_provider: OidcProvider, protected_api: ProtectedApi
) -> None:
    config = oidc_provider.grant_config("client_secret_basic", discovery=False)
    async with ClientCredentials(config) as client:
        token = await client.get_token({"scope": "api:read"})

    status, body, _ = await call_api(session, protected_api, token.access_token)

    assert (status, body["aud"]) == (200, oidc_provider.resource)


@pytest.mark.parametrize("auth_method", AUTH_METHODS)
async def test_revoked_token_is_rejected_by_the_protected_api(
    session: aiohttp.ClientSession, oidc_provider: OidcProvider, protected_api: ProtectedApi, auth_method: str
) -> None:
    async with ClientCredentials(oidc_provider.grant_config(auth_method)) as client:
        token = await client.get_token({"scope": "api:read", "resource": oidc_provider.opaque_resource})
        assert (await call_api(session, protected_api, token.access_token))[0] == 200
        await token.revoke("access_token")

    status, body, challenge = await call_api(session, protected_api, token.access_token)

    assert (status, body["error"]) == (401, "invalid_token")
    assert body["error_description"] == "the access token is not active (revoked or expired)"
    assert 'error="invalid_token"' in challenge


async def test_revoking_a_jwt_access_token_is_refused_by_the_provider(oidc_provider: OidcProvider) -> None:
    # oidc-provider keeps no state for structured tokens, so it cannot revoke them (RFC 7009 §2.2.1).
    async with ClientCredentials(oidc_provider.grant_config("client_secret_basic")) as client:
        token = await client.get_token({"scope": "api:read", "resource": oidc_provider.resource})
        with pytest.raises(TokenRequestError) as caught:
            await token.revoke("access_token")

    assert (caught.value.status, caught.value.error) == (400, "unsupported_token_type")


async def test_expired_token_is_rejected_by_the_protected_api(
    session: aiohttp.ClientSession, oidc_provider: OidcProvider, protected_api: ProtectedApi
) -> None:
    async with ClientCredentials(oidc_provider.grant_config("private_key_jwt")) as client:
        token = await client.get_token({"scope": "api:read", "resource": oidc_provider.short_lived_resource})
    assert token.expires_at is not None
    assert not token.expired()

    # tokenrelay counts expires_in from receipt, the provider's exp from issue: wait for the later of both.
    await wait_until_expired(token.access_token, not_before=token.expires_at.timestamp())
    status, body, challenge = await call_api(session, protected_api, token.access_token)

    assert token.expired()
    assert (status, body["error_description"]) == (401, "the access token expired")
    assert 'error="invalid_token"' in challenge


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post", "client_secret_jwt"])
async def test_wrong_secret_raises_invalid_client(oidc_provider: OidcProvider, auth_method: str) -> None:
    config = oidc_provider.grant_config(auth_method)
    config["client"]["secret"] = secrets.token_urlsafe(32)  # long enough for HS256
    async with ClientCredentials(config) as client:
        with pytest.raises(TokenRequestError) as caught:
            await client.get_token({"scope": "api:read"})

    assert (caught.value.status, caught.value.error) == (401, "invalid_client")


async def test_assertion_signed_with_an_unregistered_key_raises_invalid_client(
    oidc_provider: OidcProvider,
) -> None:
    config = oidc_provider.grant_config("private_key_jwt")
    config["client"]["private_key"] = rsa_client("e2e-private-key-jwt").private_key_pem
    async with ClientCredentials(config) as client:
        with pytest.raises(TokenRequestError) as caught:
            await client.get_token({"scope": "api:read"})

    assert (caught.value.status, caught.value.error) == (401, "invalid_client")


async def test_invalid_client_error_does_not_reveal_the_secret(oidc_provider: OidcProvider) -> None:
    config = oidc_provider.grant_config("client_secret_basic")
    wrong = config["client"]["secret"] + "-wrong"
    config["client"]["secret"] = wrong
    with capture_logs() as logs:
        async with ClientCredentials(config) as client:
            with pytest.raises(TokenRequestError) as caught:
                await client.get_token({"scope": "api:read"})

    assert wrong not in f"{caught.value!s} {caught.value!r} {caught.value.payload!r}"
    assert wrong not in repr(logs)


async def test_grant_logs_show_the_token_only_as_its_fingerprint(oidc_provider: OidcProvider) -> None:
    config = oidc_provider.grant_config("client_secret_post")
    with capture_logs() as logs:
        async with ClientCredentials(config) as client:
            token = await client.get_token({"scope": "api:read"})

    assert token.fingerprint in repr(logs)
    assert token.access_token not in repr(logs)
    assert config["client"]["secret"] not in repr(logs)
