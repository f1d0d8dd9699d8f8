"""Revocation checks for a sample API that runs apart from the dev IdP: RFC 7662 token introspection.

In process, the sample API asks the IdP's :class:`~tokenrelay.devidp.state.DevIdpState` directly; over HTTP it
asks ``/introspect``. The check fails *closed*: if the IdP cannot be asked, the token counts as revoked, so an
outage shows up as 401s rather than as silently accepted revoked tokens.
"""

from __future__ import annotations

import aiohttp

from tokenrelay.grant.encoding import basic_credentials

__all__ = ["IntrospectionCheck"]


class IntrospectionCheck:
    """An async ``(jti, token) -> revoked?`` that introspects each token (no caching: a dev tool, loopback)."""

    def __init__(self, url: str, client_id: str, client_secret: str, *, timeout: float = 5.0) -> None:
        self.url = url
        self.calls = 0
        self._authorization = basic_credentials(client_id, client_secret, "strict")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"IntrospectionCheck(url={self.url!r})"

    async def __call__(self, jti: str, token: str) -> bool:
        self.calls += 1
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        headers = {"Authorization": self._authorization}
        try:
            async with self._session.post(self.url, data={"token": token}, headers=headers) as response:
                if response.status != 200:
                    return True
                body = await response.json()
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return True
        return not (isinstance(body, dict) and body.get("active") is True)

    async def close(self) -> None:
        """Close the HTTP session, if one was opened."""
        if self._session is not None:
            await self._session.close()
            self._session = None
