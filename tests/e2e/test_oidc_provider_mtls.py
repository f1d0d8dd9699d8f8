"""RFC 8705 client authentication (``tls_client_auth``, ``self_signed_tls_client_auth``) against node-oidc-provider.

The ``mtls_oidc_provider`` serves one provider on two listeners: the plain-http issuer, and an HTTPS listener
that asks for a client certificate, published as ``mtls_endpoint_aliases`` (RFC 8705 §5). Two groups, as in
``test_oidc_provider_grant.py``:

* **The harness itself**, with plain aiohttp and ``ssl`` only: the provider issues tokens to certificate-
  authenticated clients on the HTTPS listener, and refuses them on the plain one or with a secret besides. These
  make the second group meaningful: a request that went to the wrong listener or carried a secret would fail.
* **tokenrelay.ClientCredentials** with ``auth.issuer`` discovery: it finds the alias, presents the certificate,
  sends no secret, and gets ``invalid_client`` for a certificate the server does not match.
"""

from __future__ import annotations

import secrets
import ssl
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from pytest_aiohttp import AiohttpServer

from tests.e2e.harness import (
    MTLS_AUTH_METHODS,
    OidcProvider,
    ProtectedApi,
    log_offset,
    protected_api_config,
    provider_events,
    verify_with_jwks,
)
from tests.e2e.protected_api import SEEN, create_app
from tokenrelay import ClientCredentials
from tokenrelay.errors import TokenRequestError

pytestmark = pytest.mark.e2e

#: oidc-provider's ``error_detail`` for each way a certificate can fail (logged by server.mjs with mTLS on).
NO_CERTIFICATE = "client certificate was not provided"
NOT_VERIFIED = "client certificate was not verified"
UNREGISTERED = "unregistered client certificate provided"
#: The certificate the other method's client presents, and why the server refuses it for this method.
MISMATCH = {"tls_client_auth": NOT_VERIFIED, "self_signed_tls_client_auth": UNREGISTERED}
OTHER_METHOD = {"tls_client_auth": "self_signed_tls_client_auth", "self_signed_tls_client_auth": "tls_client_auth"}


@pytest.fixture
async def mtls_protected_api(mtls_oidc_provider: OidcProvider, aiohttp_server: AiohttpServer) -> ProtectedApi:
    """The protected API, trusting the mTLS provider (its JWT resource only)."""
    config = protected_api_config(mtls_oidc_provider, (mtls_oidc_provider.resource,))
    app = create_app(config)
    server = await aiohttp_server(app, host="127.0.0.1")
    return ProtectedApi(url=str(server.make_url("/")), config=config, seen=app[SEEN])


def client_tls(provider: OidcProvider, auth_method: str) -> ssl.SSLContext:
    """Trust the HTTPS listener's CA and present that client's certificate."""
    client = provider.client(auth_method)
    assert client.cert_file is not None
    assert client.key_file is not None
    context = ssl.create_default_context(cafile=provider.mtls_ca_file)
    context.load_cert_chain(client.cert_file, client.key_file)
    return context


async def plain_mtls_token(
    session: aiohttp.ClientSession, provider: OidcProvider, auth_method: str, url: str, **params: str
) -> tuple[int, dict[str, Any]]:
    """An RFC 8705 token request written out by hand: ``client_id`` in the body, the certificate in TLS."""
    client_id = provider.client(auth_method).client_id
    form = {"grant_type": "client_credentials", "scope": "api:read", "client_id": client_id}
    # On the plain listener there is no TLS, so no certificate to present (True: aiohttp's default checks).
    tls: ssl.SSLContext | bool = client_tls(provider, auth_method) if url.startswith("https:") else True
    async with session.post(url, data=form | params, ssl=tls) as response:
        body: dict[str, Any] = await response.json()
        return response.status, body


def grant_events(provider: OidcProvider, since: int) -> list[dict[str, Any]]:
    """The token endpoint's events since ``since``, without the fields that vary between runs."""
    return [e for e in provider_events(provider, since) if e["event"] in {"grant.success", "grant.error"}]


def token_alias(provider: OidcProvider) -> str:
    return provider.mtls_endpoint_aliases["token_endpoint"]


# --- The harness itself ----------------------------------------------------------------------------------


def test_harness_metadata_aliases_point_at_the_https_listener(mtls_oidc_provider: OidcProvider) -> None:
    provider = mtls_oidc_provider
    assert provider.mtls_url is not None
    assert provider.mtls_url.startswith("https://127.0.0.1:")
    plain = urlsplit(provider.token_endpoint)

    assert plain.scheme == "http"
    assert provider.mtls_endpoint_aliases == {
        "token_endpoint": provider.mtls_url + plain.path,
        "revocation_endpoint": provider.mtls_url + urlsplit(provider.revocation_endpoint).path,
        "introspection_endpoint": provider.mtls_url + urlsplit(provider.introspection_endpoint).path,
    }


@pytest.mark.parametrize("auth_method", MTLS_AUTH_METHODS)
async def test_harness_provider_issues_a_token_on_the_https_listener(
    session: aiohttp.ClientSession, mtls_oidc_provider: OidcProvider, auth_method: str
) -> None:
    since = log_offset(mtls_oidc_provider)

    status, body = await plain_mtls_token(session, mtls_oidc_provider, auth_method, token_alias(mtls_oidc_provider))

    assert status == 200, body
    claims = await verify_with_jwks(session, mtls_oidc_provider, body["access_token"])
    client_id = mtls_oidc_provider.client(auth_method).client_id
    assert claims["client_id"] == client_id
    assert grant_events(mtls_oidc_provider, since) == [
        {"event": "grant.success", "client_id": client_id, "listener": "mtls"}
    ]


@pytest.mark.parametrize("auth_method", MTLS_AUTH_METHODS)
async def test_harness_plain_listener_refuses_certificate_clients(
    session: aiohttp.ClientSession, mtls_oidc_provider: OidcProvider, auth_method: str
) -> None:
    since = log_offset(mtls_oidc_provider)

    status, body = await plain_mtls_token(session, mtls_oidc_provider, auth_method, mtls_oidc_provider.token_endpoint)

    assert (status, body["error"]) == (401, "invalid_client")
    [event] = grant_events(mtls_oidc_provider, since)
    assert (event["listener"], event["error_detail"]) == ("plain", NO_CERTIFICATE)


@pytest.mark.parametrize("auth_method", MTLS_AUTH_METHODS)
async def test_harness_provider_refuses_a_secret_besides_the_certificate(
    session: aiohttp.ClientSession, mtls_oidc_provider: OidcProvider, auth_method: str
) -> None:
    url = token_alias(mtls_oidc_provider)

    status, body = await plain_mtls_token(
        session, mtls_oidc_provider, auth_method, url, client_secret=secrets.token_urlsafe(16)
    )

    assert (status, body["error"]) == (401, "invalid_client")


@pytest.mark.parametrize("auth_method", MTLS_AUTH_METHODS)
def test_harness_mtls_clients_keep_key_and_certificate_out_of_repr(
    mtls_oidc_provider: OidcProvider, auth_method: str
) -> None:
    client = mtls_oidc_provider.client(auth_method)
    assert client.key_file is not None

    shown = repr(client)

    assert str(client.key_file) not in shown
    assert "x5c" not in shown


# --- tokenrelay.ClientCredentials against the provider -----------------------------------------------------


@pytest.mark.parametrize("auth_method", MTLS_AUTH_METHODS)
async def test_get_token_uses_the_mtls_alias_and_returns_a_verifiable_jwt(
    session: aiohttp.ClientSession, mtls_oidc_provider: OidcProvider, auth_method: str
) -> None:
    since = log_offset(mtls_oidc_provider)
    async with ClientCredentials(mtls_oidc_provider.grant_config(auth_method)) as client:
        token = await client.get_token({"scope": "api:read", "resource": mtls_oidc_provider.resource})

    claims = await verify_with_jwks(session, mtls_oidc_provider, token.access_token)

    client_id = mtls_oidc_provider.client(auth_method).client_id
    assert (claims["client_id"], claims["scope"]) == (client_id, "api:read")
    assert grant_events(mtls_oidc_provider, since) == [
        {"event": "grant.success", "client_id": client_id, "listener": "mtls"}
    ]


@pytest.mark.parametrize("auth_method", MTLS_AUTH_METHODS)
async def test_protected_api_accepts_the_token_of_each_mtls_method(
    session: aiohttp.ClientSession,
    mtls_oidc_provider: OidcProvider,
    mtls_protected_api: ProtectedApi,
    auth_method: str,
) -> None:
    async with ClientCredentials(mtls_oidc_provider.grant_config(auth_method)) as client:
        token = await client.get_token({"scope": "api:read api:write"})

    headers = {"Authorization": f"Bearer {token.access_token}"}
    async with session.get(mtls_protected_api.url + "items", headers=headers) as response:
        status, body = response.status, await response.json()

    assert status == 200
    client_id = mtls_oidc_provider.client(auth_method).client_id
    assert (body["client_id"], body["aud"]) == (client_id, mtls_oidc_provider.resource)


@pytest.mark.parametrize("auth_method", MTLS_AUTH_METHODS)
async def test_a_configured_secret_is_not_sent(mtls_oidc_provider: OidcProvider, auth_method: str) -> None:
    # The provider refuses a secret besides the certificate (the harness test above), so a token proves none went.
    config = mtls_oidc_provider.grant_config(auth_method)
    config["client"]["secret"] = secrets.token_urlsafe(16)
    async with ClientCredentials(config) as client:
        token = await client.get_token({"scope": "api:read"})

    assert token.access_token


@pytest.mark.parametrize("auth_method", MTLS_AUTH_METHODS)
async def test_a_certificate_the_server_does_not_match_raises_invalid_client(
    mtls_oidc_provider: OidcProvider, auth_method: str
) -> None:
    config = mtls_oidc_provider.grant_config(auth_method)
    config["http"] = mtls_oidc_provider.grant_config(OTHER_METHOD[auth_method])["http"]  # the other client's cert
    since = log_offset(mtls_oidc_provider)
    async with ClientCredentials(config) as client:
        with pytest.raises(TokenRequestError) as caught:
            await client.get_token({"scope": "api:read"})

    assert (caught.value.status, caught.value.error) == (401, "invalid_client")
    [event] = grant_events(mtls_oidc_provider, since)
    assert (event["listener"], event["error_detail"]) == ("mtls", MISMATCH[auth_method])


@pytest.mark.parametrize("auth_method", MTLS_AUTH_METHODS)
async def test_without_discovery_the_plain_token_endpoint_raises_invalid_client(
    mtls_oidc_provider: OidcProvider, auth_method: str
) -> None:
    # token_host is the plain issuer: no alias, no TLS, no certificate — the alias is what makes the others work.
    config = mtls_oidc_provider.grant_config(auth_method, discovery=False)
    since = log_offset(mtls_oidc_provider)
    async with ClientCredentials(config) as client:
        with pytest.raises(TokenRequestError) as caught:
            await client.get_token({"scope": "api:read"})

    assert (caught.value.status, caught.value.error) == (401, "invalid_client")
    [event] = grant_events(mtls_oidc_provider, since)
    assert (event["listener"], event["error_detail"]) == ("plain", NO_CERTIFICATE)
