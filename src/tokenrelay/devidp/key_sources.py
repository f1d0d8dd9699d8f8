"""Where the sample API gets the IdP's public keys: given in process, or a JWKS fetched over HTTP and cached.

A remote JWKS is refetched when a token names a ``kid`` the cache does not know (the IdP rotated its key), at
most once per ``min_refetch_interval`` so a stream of tokens with a bogus ``kid`` cannot hammer the IdP.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any, Protocol

import aiohttp
import jwt

from tokenrelay.devidp.keys import SIGNING_ALG, SigningKey

__all__ = ["KeySource", "RemoteJwks", "StaticKeys"]


class KeySource(Protocol):
    """Public keys to verify access tokens with."""

    async def keys_for(self, kid: str | None) -> list[Any]:
        """The verification keys matching ``kid`` (every key when ``kid`` is ``None``); may be empty."""
        ...

    async def close(self) -> None:
        """Release any connection the source holds."""
        ...


def _parse_jwks(document: Mapping[str, Any]) -> dict[str | None, Any]:
    keys: dict[str | None, Any] = {}
    for jwk in document.get("keys", []):
        if isinstance(jwk, dict) and jwk.get("kty") == "RSA" and jwk.get("use", "sig") == "sig":
            keys[jwk.get("kid")] = jwt.PyJWK(jwk, algorithm=SIGNING_ALG).key
    return keys


def _select(keys: Mapping[str | None, Any], kid: str | None) -> list[Any]:
    if kid is None:
        return list(keys.values())
    return [keys[kid]] if kid in keys else []


class StaticKeys:
    """Keys given directly: a :class:`SigningKey` (its public half) or a JWKS document."""

    def __init__(self, source: SigningKey | Mapping[str, Any]) -> None:
        document = source.jwks() if isinstance(source, SigningKey) else source
        self._keys = _parse_jwks(document)

    async def keys_for(self, kid: str | None) -> list[Any]:
        return _select(self._keys, kid)

    async def close(self) -> None:
        return None


class RemoteJwks:
    """A JWKS URL, fetched on first use and again on an unknown ``kid`` (rate-limited)."""

    def __init__(self, url: str, *, min_refetch_interval: float = 1.0, timeout: float = 5.0) -> None:
        self.url = url
        self.min_refetch_interval = min_refetch_interval
        self.fetches = 0
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._keys: dict[str | None, Any] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None

    async def keys_for(self, kid: str | None) -> list[Any]:
        found = _select(self._keys, kid)
        if found or not self._may_refetch():
            return found
        async with self._lock:
            found = _select(self._keys, kid)
            if not found and self._may_refetch():
                await self._fetch()
                found = _select(self._keys, kid)
        return found

    def _may_refetch(self) -> bool:
        return self._fetched_at is None or time.monotonic() - self._fetched_at >= self.min_refetch_interval

    async def _fetch(self) -> None:
        self._fetched_at = time.monotonic()
        self.fetches += 1
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.get(self.url) as response:
                response.raise_for_status()
                document = await response.json()
        except (TimeoutError, aiohttp.ClientError, ValueError):
            return  # keep the keys we had; the token is rejected as unknown_kid and logged by the caller
        if isinstance(document, dict):
            self._keys = _parse_jwks(document)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
