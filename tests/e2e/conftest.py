"""Fixtures of the end-to-end suite: a real, independent authorization server and a protected API.

* ``oidc_provider`` (session): node-oidc-provider (``idp/server.mjs``) on 127.0.0.1, a free port, with one
  client-credentials client per client authentication method, three resources (JWT, short-lived JWT,
  opaque) and revocation + introspection. See :mod:`tests.e2e.harness`.
* ``session`` (per test): an ``aiohttp.ClientSession`` with a 10 s total timeout per request.
* ``protected_api`` (per test): :mod:`tests.e2e.protected_api` on 127.0.0.1, trusting only that provider.
* ``mtls_oidc_provider`` (session): a second oidc-provider with RFC 8705 clients (``tls_client_auth``,
  ``self_signed_tls_client_auth``) and an HTTPS listener for them (``mtls_endpoint_aliases``); started only by
  the tests that use it.

All four are documented, with examples, in ``docs/e2e.md``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from pytest_aiohttp import AiohttpServer

from tests.e2e.harness import (
    OPAQUE_RESOURCE,
    RESOURCE,
    SHORT_LIVED_RESOURCE,
    OidcProvider,
    ProtectedApi,
    make_clients,
    make_mtls_clients,
    protected_api_config,
    require_node,
    start_oidc_provider,
)
from tests.e2e.protected_api import SEEN, create_app


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    """One oidc-provider for the whole session (start-up costs about a second)."""
    require_node()
    clients, api_client = make_clients()
    with start_oidc_provider(tmp_path_factory.mktemp("oidc-provider"), clients, api_client) as (_, provider):
        yield provider


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session for the test's own calls (provider, API, relay), each bounded to 10 s."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as client_session:
        yield client_session


@pytest.fixture
async def protected_api(oidc_provider: OidcProvider, aiohttp_server: AiohttpServer) -> ProtectedApi:
    """The protected API on 127.0.0.1, accepting tokens for all three of the provider's resources."""
    config = protected_api_config(oidc_provider, (RESOURCE, SHORT_LIVED_RESOURCE, OPAQUE_RESOURCE))
    app = create_app(config)
    server = await aiohttp_server(app, host="127.0.0.1")
    return ProtectedApi(url=str(server.make_url("/")), config=config, seen=app[SEEN])


@pytest.fixture(scope="session")
def mtls_oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    """An oidc-provider with the RFC 8705 clients and an HTTPS listener; a separate process, so the
    ``oidc_provider`` the other tests share keeps its metadata and methods unchanged."""
    require_node()
    workdir = tmp_path_factory.mktemp("oidc-provider-mtls")
    clients, pki = make_mtls_clients(workdir / "pki")
    _, api_client = make_clients()
    with start_oidc_provider(workdir, clients, api_client, mtls=pki) as (_, provider):
        yield provider
