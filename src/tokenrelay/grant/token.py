"""``AccessToken``: the parsed token (RFC 6749 §5.1), its wall-clock expiry, and refresh/revoke.

Like simple-oauth2's, the token keeps every field it was given, plus ``expires_at`` computed by §5's rules
(:mod:`tokenrelay.grant.expiry`), and ``expired(window)`` compares it with the wall clock, boundary inclusive.
Refresh and revoke go through the client that made the token (its config, transport and client auth).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Protocol

from tokenrelay.fingerprints import fingerprint
from tokenrelay.grant.encoding import js_number
from tokenrelay.grant.errors import ConfigError, FieldError
from tokenrelay.grant.expiry import (
    expires_at_from,
    format_iso,
    from_epoch_ms,
    parse_date_value,
    to_epoch_ms,
)

if TYPE_CHECKING:
    from tokenrelay.grant.config import HttpConfig

__all__ = ["TOKEN_TYPES", "AccessToken", "Clock", "TokenOwner", "parse_token_fields"]

#: A wall clock in UNIX seconds (``time.time``); injectable so tests can freeze it.
Clock = Callable[[], float]

#: The token types RFC 7009 revocation accepts as ``token_type_hint`` (simple-oauth2 allows these two).
TOKEN_TYPES: Final = ("access_token", "refresh_token")


class TokenOwner(Protocol):
    """What an :class:`AccessToken` needs from the client that made it (implemented by ``ClientCredentials``)."""

    def now_ms(self) -> float: ...

    async def refresh_token(
        self,
        token: AccessToken,
        params: Mapping[str, object] | None,
        http_options: HttpConfig | Mapping[str, Any] | None,
    ) -> AccessToken: ...

    async def revoke_token(
        self, token: AccessToken, token_type: str, http_options: HttpConfig | Mapping[str, Any] | None
    ) -> object: ...


def parse_token_fields(
    fields: Mapping[str, object], now_ms: float, *, default_expires_in: float | None = None
) -> dict[str, object]:
    """The token object: every field as given plus ``expires_at`` (§5).

    A present ``expires_at`` key wins (even ``None``); else ``expires_in``; else ``default_expires_in`` when
    configured; else no ``expires_at`` key. An unparseable value gives ``expires_at = None`` (never expires).
    """
    token = dict(fields)
    if "expires_at" in token:
        token["expires_at"] = parse_date_value(token["expires_at"])
    elif "expires_in" in token:
        token["expires_at"] = expires_at_from(token["expires_in"], now_ms)
    elif default_expires_in is not None:
        token["expires_at"] = from_epoch_ms(now_ms + default_expires_in * 1000)
    return token


class AccessToken:
    """A token from the token endpoint (or restored with ``create_token``); ``token`` is read-only."""

    __slots__ = ("_owner", "_token")

    def __init__(self, token: Mapping[str, object], *, owner: TokenOwner) -> None:
        self._token: Mapping[str, object] = MappingProxyType(dict(token))
        self._owner = owner

    @property
    def token(self) -> Mapping[str, object]:
        """The parsed token: the endpoint's fields plus ``expires_at`` (a tz-aware UTC datetime or ``None``)."""
        return self._token

    @property
    def access_token(self) -> str:
        """The bearer credential (``""`` for a restored token without one)."""
        value = self._token.get("access_token")
        return value if isinstance(value, str) else ""

    @property
    def refresh_token_value(self) -> str | None:
        value = self._token.get("refresh_token")
        return value if isinstance(value, str) else None

    @property
    def expires_at(self) -> datetime | None:
        """When the token expires (UTC); ``None`` when unknown, which :meth:`expired` treats as never."""
        value = self._token.get("expires_at")
        return value if isinstance(value, datetime) else None

    @property
    def fingerprint(self) -> str:
        """The first 8 hex chars of the access token's SHA-256: how a token may appear in logs."""
        return fingerprint(self.access_token)

    def __repr__(self) -> str:
        expires = format_iso(self.expires_at) if self.expires_at is not None else None
        return f"AccessToken(fingerprint={self.fingerprint!r}, expires_at={expires!r})"

    __str__ = __repr__

    def expired(self, expiration_window_seconds: object = 0) -> bool:
        """Whether the token expires within ``expiration_window_seconds`` from now (boundary inclusive).

        The window is coerced like JavaScript's ``*``: numeric strings work, ``None`` is 0, anything
        non-numeric makes the answer ``False``, as does an unknown expiry.
        """
        expires_at = self.expires_at
        window = js_number(expiration_window_seconds)
        if expires_at is None or window is None:
            return False
        remaining = to_epoch_ms(expires_at) - (self._owner.now_ms() + window * 1000)
        return not math.isnan(remaining) and remaining <= 0

    async def refresh(
        self,
        params: Mapping[str, object] | None = None,
        http_options: HttpConfig | Mapping[str, Any] | None = None,
    ) -> AccessToken:
        """A new token from the refresh grant; it keeps this token's ``refresh_token`` if the answer has none."""
        return await self._owner.refresh_token(self, params, http_options)

    async def revoke(self, token_type: str, http_options: HttpConfig | Mapping[str, Any] | None = None) -> object:
        """Revoke the access or refresh token (RFC 7009); returns the parsed JSON answer or ``None``."""
        if token_type not in TOKEN_TYPES:
            raise ConfigError(
                [FieldError("token_type", "must be 'access_token' or 'refresh_token'")], prefix="invalid revoke call"
            )
        return await self._owner.revoke_token(self, token_type, http_options)

    async def revoke_all(self, http_options: HttpConfig | Mapping[str, Any] | None = None) -> None:
        """Revoke the access token, then the refresh token; the second is not sent if the first fails."""
        await self.revoke("access_token", http_options)
        await self.revoke("refresh_token", http_options)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready copy: ``expires_at`` as ISO 8601 (``...Z``) or ``None``; ``create_token`` reads it back."""
        return {
            name: format_iso(value) if isinstance(value, datetime) else value for name, value in self._token.items()
        }
