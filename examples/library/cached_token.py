"""Reuse one token until it is about to expire: ``token.expired(EXPIRATION_WINDOW_IN_SECONDS)``.

A client-credentials token is valid for every call until it expires, so ask for a new one only when the cached one
is missing or expires within the window. The window (300 s, as in simple-oauth2's README) leaves room for the
request in flight, clock skew between you and the IdP, and a retry if the IdP is slow. It must be shorter than the
tokens' lifetime: an IdP that issues 5-minute tokens makes every token "expired" within a 300 s window, and this
code then fetches one per call (the script tells you when that happens).

    export TOKENRELAY_DEV_IDP_SECRET=dev-only-secret
    tokenrelay dev-idp --port 9000 &
    python examples/library/cached_token.py

Settings: the TOKENRELAY_EXAMPLE_* variables described in basic.py / README.md.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from typing import Any

import structlog

from tokenrelay import AccessToken, ClientCredentials

#: simple-oauth2's README uses 300 s; the dev IdP issues 300 s tokens, so try it there with 60 (README.md).
EXPIRATION_WINDOW_IN_SECONDS = float(os.environ.get("TOKENRELAY_EXAMPLE_EXPIRATION_WINDOW", "300"))
CALLS = 3


# Repeated in each script here on purpose: every example stands alone, to be copied without the others.
def config_from_env() -> dict[str, Any]:
    """The grant configuration, defaulting to a dev IdP started with ``tokenrelay dev-idp --port 9000``."""
    secret = os.environ.get("TOKENRELAY_EXAMPLE_CLIENT_SECRET") or os.environ.get("TOKENRELAY_DEV_IDP_SECRET")
    if not secret:
        sys.exit("set TOKENRELAY_EXAMPLE_CLIENT_SECRET (or TOKENRELAY_DEV_IDP_SECRET, the dev IdP's demo secret)")
    return {
        "client": {"id": os.environ.get("TOKENRELAY_EXAMPLE_CLIENT_ID", "demo-client"), "secret": secret},
        "auth": {
            "token_host": os.environ.get("TOKENRELAY_EXAMPLE_TOKEN_HOST", "http://127.0.0.1:9000"),
            "token_path": os.environ.get("TOKENRELAY_EXAMPLE_TOKEN_PATH", "/token"),
        },
    }


TOKEN_PARAMS = {"scope": os.environ.get("TOKENRELAY_EXAMPLE_SCOPE", "sample.read").split()}


class CachedToken:
    """One client's token, fetched again only when missing or expiring within the window."""

    def __init__(self, client: ClientCredentials) -> None:
        self._client = client
        self._token: AccessToken | None = None
        self.fetches = 0

    async def get(self) -> AccessToken:
        if self._token is None or self._token.expired(EXPIRATION_WINDOW_IN_SECONDS):
            self._token = await self._client.get_token(TOKEN_PARAMS)
            self.fetches += 1
        return self._token


async def main() -> int:
    async with ClientCredentials(config_from_env()) as client:
        cache = CachedToken(client)
        for call in range(1, CALLS + 1):
            token = await cache.get()
            print(f"call {call}: using token {token.fingerprint}")
    print(f"{cache.fetches} token request(s) for {CALLS} calls")
    expires_at = token.expires_at
    if cache.fetches > 1 and expires_at is not None:
        lifetime = expires_at.timestamp() - time.time()
        print(
            f"note: the IdP's tokens live about {lifetime:.0f} s, within the {EXPIRATION_WINDOW_IN_SECONDS:.0f} s "
            "window, so every call fetched a new one: use a window shorter than the token lifetime"
        )
    return 0


if __name__ == "__main__":
    # The grant core logs through structlog (fingerprints only, never secrets); keep warnings, on stderr.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    sys.exit(asyncio.run(main()))
