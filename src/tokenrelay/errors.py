"""The grant core's error tree (defined in :mod:`tokenrelay.grant.errors`), importable as ``tokenrelay.errors``."""

from __future__ import annotations

from tokenrelay.grant.errors import (
    ConfigError,
    FieldError,
    OAuth2Error,
    TokenRequestError,
    TokenResponseError,
    TransportError,
)

__all__ = [
    "ConfigError",
    "FieldError",
    "OAuth2Error",
    "TokenRequestError",
    "TokenResponseError",
    "TransportError",
]
