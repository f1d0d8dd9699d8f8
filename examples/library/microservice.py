"""The pattern simple-oauth2's README shows for a service, in asyncio: one client, one cached token, a lock.

Every outgoing call first makes sure the cached token is usable::

    if token is None or token.expired(EXPIRATION_WINDOW_IN_SECONDS):
        token = await client.get_token(TOKEN_PARAMS)

This script plays a service handling CONCURRENT_REQUESTS requests at once, each calling a protected API with the
token. Set TOKENRELAY_EXAMPLE_API_URL to the dev IdP's sample API (``tokenrelay dev-idp --with-sample-api`` prints
its URL) to make the calls for real; without it the script only shows which token each call would use.

    export TOKENRELAY_DEV_IDP_SECRET=dev-only-secret TOKENRELAY_EXAMPLE_EXPIRATION_WINDOW=60
    tokenrelay dev-idp --port 9000 --with-sample-api &
    TOKENRELAY_EXAMPLE_API_URL=http://127.0.0.1:<sample API port> python examples/library/microservice.py
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Any

import aiohttp
import structlog

from tokenrelay import AccessToken, ClientCredentials

#: simple-oauth2's README uses 300 s; the dev IdP issues 300 s tokens, so try it there with 60 (README.md).
EXPIRATION_WINDOW_IN_SECONDS = float(os.environ.get("TOKENRELAY_EXAMPLE_EXPIRATION_WINDOW", "300"))
CONCURRENT_REQUESTS = 5
API_URL = os.environ.get("TOKENRELAY_EXAMPLE_API_URL")


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

# One client for the whole service, created at import like the seed's module-level client. Creating it does no I/O:
# its HTTP session opens on the first request, inside the running event loop.
client = ClientCredentials(config_from_env())
_token: AccessToken | None = None
# Why a lock: requests are handled concurrently. When the token is missing or expiring, every request that arrives
# before the first fetch completes would see the same stale state and send its own token request: N requests,
# N token requests (load on the IdP, rate limits, tokens thrown away). Under the lock the first caller fetches, and
# the others wait, re-check, and find the fresh token. A fresh token is read without taking the lock at all.
_token_lock = asyncio.Lock()
token_requests = 0


async def access_token() -> AccessToken:
    """The service's token: the cached one while it is valid beyond the window, else a new one (once)."""
    global _token, token_requests
    token = _token
    if token is not None and not token.expired(EXPIRATION_WINDOW_IN_SECONDS):
        return token
    async with _token_lock:
        if _token is None or _token.expired(EXPIRATION_WINDOW_IN_SECONDS):  # re-check: another caller may have won
            _token = await client.get_token(TOKEN_PARAMS)
            token_requests += 1
        return _token


async def handle_request(number: int, session: aiohttp.ClientSession) -> str:
    """One request of the service: it needs the upstream API, which needs the token."""
    token = await access_token()
    if API_URL is None:
        return f"request {number}: would call the API with token {token.fingerprint}"
    headers = {"Authorization": f"Bearer {token.access_token}"}
    async with session.get(f"{API_URL.rstrip('/')}/hello", headers=headers) as response:
        body = await response.json() if response.status == 200 else {}
        return f"request {number}: API answered {response.status} hello={body.get('hello')} (token {token.fingerprint})"


async def main() -> int:
    try:
        async with aiohttp.ClientSession() as session:
            results = await asyncio.gather(*(handle_request(n, session) for n in range(1, CONCURRENT_REQUESTS + 1)))
    finally:
        await client.close()
    print("\n".join(results))
    print(f"{token_requests} token request(s) for {CONCURRENT_REQUESTS} concurrent requests")
    return 0


if __name__ == "__main__":
    # The grant core logs through structlog (fingerprints only, never secrets); keep warnings, on stderr.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    sys.exit(asyncio.run(main()))
