"""Constants and helpers shared by the dev IdP tests."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

import aiohttp
import jwt
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import rsa

from tokenrelay.devidp.sample_api import SampleApiState
from tokenrelay.devidp.state import DevIdpState

#: RFC 6749 §2.3.1 must form-encode every one of these before base64.
SPECIAL_SECRET = "p@ss:w+rd %/?&=ü~!'()*"
BASIC_ID = "basic client:1"
POST_ID = "post-client"
POST_SECRET = "post-secret-0123456789"
PKJWT_ID = "signer"
HSJWT_ID = "hs-signer"
HSJWT_SECRET = "a-long-shared-secret-of-at-least-64-bytes-for-hs512-0123456789abcdef"
SCOPES = ("sample.read", "sample.write")
AUDIENCE = "tokenrelay-sample-api"

AiohttpServer = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class ClientKey:
    """The private key a private_key_jwt test client signs assertions with."""

    kid: str
    private_key: rsa.RSAPrivateKey
    public_jwk: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Idp:
    """A dev IdP on a real loopback socket."""

    url: str
    state: DevIdpState
    server: TestServer

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"


@dataclass(frozen=True, slots=True)
class Api:
    """A sample API on a real loopback socket."""

    url: str
    state: SampleApiState


def basic_header(client_id: str, secret: str) -> str:
    """``Authorization: Basic`` per RFC 6749 §2.3.1 (form-encode, then base64)."""
    raw = f"{quote_plus(client_id, safe='')}:{quote_plus(secret, safe='')}"
    return "Basic " + base64.b64encode(raw.encode("utf-8")).decode("ascii")


def assertion(
    client_id: str, key: Any, audience: str, *, alg: str = "RS256", kid: str | None = None, **claims: Any
) -> str:
    """A client assertion (RFC 7523 §3) signed by the test."""
    now = int(time.time())
    payload = {"iss": client_id, "sub": client_id, "aud": audience, "iat": now, "exp": now + 60}
    payload["jti"] = uuid.uuid4().hex
    payload.update(claims)
    headers = {"kid": kid} if kid else None
    return jwt.encode(payload, key, algorithm=alg, headers=headers)


def assertion_form(client_assertion: str, **extra: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": client_assertion,
        **extra,
    }


async def fetch_token(http: aiohttp.ClientSession, idp: Idp, **form: str) -> str:
    """A token for the post client (the simplest method), for tests about what happens *after* issuance."""
    data = {"grant_type": "client_credentials", "client_id": POST_ID, "client_secret": POST_SECRET, **form}
    async with http.post(idp.token_url, data=data) as response:
        assert response.status == 200, await response.text()
        body = await response.json()
    token: str = body["access_token"]
    return token
