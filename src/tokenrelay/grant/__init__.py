"""The grant core: an asyncio port of simple-oauth2's Client Credentials grant (``ClientCredentials``).

Layers, bottom up: ``encoding``/``urls`` (byte-exact wire rules), ``config`` (the validated options),
``assertion`` (RFC 7523 keys and JWTs), ``client_auth`` (RFC 7591 methods), ``request`` (building a POST),
``transport`` (the only HTTP), ``response`` (reading answers), ``discovery`` (RFC 8414 / OIDC metadata),
``expiry``/``token`` (``AccessToken``), ``client_credentials`` (the grant).
"""

from __future__ import annotations

from tokenrelay.grant.client_credentials import ClientCredentials
from tokenrelay.grant.config import AuthConfig, ClientConfig, HttpConfig, OAuth2Config, OptionsConfig
from tokenrelay.grant.errors import (
    ConfigError,
    FieldError,
    OAuth2Error,
    TokenRequestError,
    TokenResponseError,
    TransportError,
)
from tokenrelay.grant.token import AccessToken

__all__ = [
    "AccessToken",
    "AuthConfig",
    "ClientConfig",
    "ClientCredentials",
    "ConfigError",
    "FieldError",
    "HttpConfig",
    "OAuth2Config",
    "OAuth2Error",
    "OptionsConfig",
    "TokenRequestError",
    "TokenResponseError",
    "TransportError",
]
