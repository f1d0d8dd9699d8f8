"""Fixtures for the dev IdP tests: real servers on 127.0.0.1, one RSA key per session (generation is slow)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from tokenrelay.devidp.clients import DevClient
from tokenrelay.devidp.config import DevIdpConfig
from tokenrelay.devidp.idp import create_idp_app
from tokenrelay.devidp.keys import SigningKey, generate_signing_key
from tokenrelay.devidp.sample_api import SAMPLE_API_STATE, create_sample_api
from tokenrelay.devidp.state import DEV_IDP_STATE

from .support import (
    AUDIENCE,
    BASIC_ID,
    HSJWT_ID,
    HSJWT_SECRET,
    PKJWT_ID,
    POST_ID,
    POST_SECRET,
    SCOPES,
    SPECIAL_SECRET,
    AiohttpServer,
    Api,
    ClientKey,
    Idp,
)


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    return generate_signing_key()


@pytest.fixture(scope="session")
def client_key() -> ClientKey:
    key = generate_signing_key()
    return ClientKey(key.kid, key.private_key, dict(key.public_jwk))


@pytest.fixture
def clients(client_key: ClientKey) -> tuple[DevClient, ...]:
    return (
        DevClient(BASIC_ID, SPECIAL_SECRET, ("client_secret_basic",), allowed_scopes=SCOPES),
        DevClient(POST_ID, POST_SECRET, ("client_secret_post",), allowed_scopes=("sample.read",)),
        DevClient(PKJWT_ID, None, ("private_key_jwt",), jwks=(client_key.public_jwk,), allowed_scopes=SCOPES),
        DevClient(HSJWT_ID, HSJWT_SECRET, ("client_secret_jwt",), allowed_scopes=SCOPES),
    )


@pytest.fixture
def start_idp(
    aiohttp_server: AiohttpServer, signing_key: SigningKey, clients: tuple[DevClient, ...]
) -> Callable[..., Any]:
    """Start a dev IdP; keyword arguments override :class:`DevIdpConfig` fields."""

    async def start(**overrides: Any) -> Idp:
        config = DevIdpConfig(**{"clients": clients, "signing_key": signing_key, **overrides})
        app = create_idp_app(config)
        server = await aiohttp_server(app)
        url = str(server.make_url("")).rstrip("/")
        app[DEV_IDP_STATE].issuer = url
        return Idp(url, app[DEV_IDP_STATE], server)

    return start


@pytest.fixture
async def idp(start_idp: Callable[..., Any]) -> Idp:
    started: Idp = await start_idp()
    return started


@pytest.fixture
def start_api(aiohttp_server: AiohttpServer, idp: Idp) -> Callable[..., Any]:
    """Start a sample API trusting ``idp``; keyword arguments go to :func:`create_sample_api`."""

    async def start(**kwargs: Any) -> Api:
        kwargs.setdefault("revocation", idp.state)
        app = create_sample_api(idp.url, kwargs.pop("keys", idp.state.key), AUDIENCE, **kwargs)
        server = await aiohttp_server(app)
        return Api(str(server.make_url("")).rstrip("/"), app[SAMPLE_API_STATE])

    return start


@pytest.fixture
async def api(start_api: Callable[..., Any]) -> Api:
    started: Api = await start_api()
    return started


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
