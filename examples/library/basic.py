"""Get one client-credentials token with tokenrelay's grant core and look at it.

Run against a local dev IdP (see README.md in this folder):

    export TOKENRELAY_DEV_IDP_SECRET=dev-only-secret
    tokenrelay dev-idp --port 9000 &
    python examples/library/basic.py

Against your own IdP, set TOKENRELAY_EXAMPLE_TOKEN_HOST, TOKENRELAY_EXAMPLE_TOKEN_PATH, TOKENRELAY_EXAMPLE_CLIENT_ID,
TOKENRELAY_EXAMPLE_CLIENT_SECRET and TOKENRELAY_EXAMPLE_SCOPE. The token itself is never printed, only its
fingerprint (the first 8 hex characters of its SHA-256): enough to match it in the IdP's and tokenrelay's logs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Any

import structlog

from tokenrelay import ClientCredentials
from tokenrelay.errors import OAuth2Error, TokenRequestError


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


async def main() -> int:
    # ``async with`` closes the HTTP session the client opened; the config is validated here (ConfigError).
    async with ClientCredentials(config_from_env()) as client:
        try:
            token = await client.get_token(TOKEN_PARAMS)
        except TokenRequestError as exc:
            # The endpoint answered with an error: RFC 6749 §5.2 fields are attributes, the real HTTP status kept.
            reason = f"{exc.error} {exc.error_description or ''}".strip()
            print(f"the token endpoint refused: HTTP {exc.status} {reason}", file=sys.stderr)
            return 1
        except OAuth2Error as exc:  # unreachable endpoint, timeout, a body that is not a token ...
            print(f"no token: {exc}", file=sys.stderr)
            return 1
    print(f"got token {token.fingerprint}")
    print(f"  expires at: {token.expires_at.isoformat() if token.expires_at else 'never (no expiry given)'}")
    print(f"  scope:      {token.token.get('scope', '(not returned)')}")
    print(f"  expired now? {token.expired()}   expires within 60 s? {token.expired(60)}")
    return 0


if __name__ == "__main__":
    # The grant core logs through structlog (fingerprints only, never secrets); keep warnings, on stderr.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    sys.exit(asyncio.run(main()))
