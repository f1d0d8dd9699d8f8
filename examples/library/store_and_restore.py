"""Keep a token across restarts: store ``token.to_dict()``, restore it with ``client.create_token(...)``.

Useful for short-lived processes (a CLI, a cron job) that would otherwise ask the IdP for a new token on every run.
Run it twice: the first run fetches and stores a token, the second restores it without any request.

    export TOKENRELAY_DEV_IDP_SECRET=dev-only-secret TOKENRELAY_EXAMPLE_EXPIRATION_WINDOW=60
    tokenrelay dev-idp --port 9000 &
    python examples/library/store_and_restore.py
    python examples/library/store_and_restore.py

Store what ``to_dict()`` returns: it carries ``expires_at`` as an ISO 8601 instant, which ``create_token`` restores
exactly. A stored raw response that has only ``expires_in`` gets a *fresh* lifetime each time it is loaded
(simple-oauth2 issue #454), so the token would look valid long after it expired.
The file holds a bearer token: anyone who can read it can call the API as this client, so it is written owner-only
(0600) and replaced atomically. TOKENRELAY_EXAMPLE_TOKEN_FILE picks the path (default: in the temp directory).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import structlog

from tokenrelay import AccessToken, ClientCredentials

EXPIRATION_WINDOW_IN_SECONDS = float(os.environ.get("TOKENRELAY_EXAMPLE_EXPIRATION_WINDOW", "300"))
TOKEN_FILE = Path(
    os.environ.get("TOKENRELAY_EXAMPLE_TOKEN_FILE") or Path(tempfile.gettempdir()) / "tokenrelay-example-token.json"
)


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


def load_stored(client: ClientCredentials) -> AccessToken | None:
    """The stored token, or ``None`` when there is none or the file is unusable (then we simply fetch)."""
    try:
        stored = json.loads(TOKEN_FILE.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        print(f"ignoring the stored token file: {type(exc).__name__}")
        return None
    return client.create_token(stored) if isinstance(stored, dict) else None


def store(token: AccessToken) -> None:
    """Write ``token.to_dict()`` owner-only, atomically (a crash mid-write never leaves half a token)."""
    fd, tmp = tempfile.mkstemp(dir=TOKEN_FILE.parent, prefix=".token-", suffix=".json")  # mkstemp: mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(token.to_dict(), file)
        os.replace(tmp, TOKEN_FILE)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


async def main() -> int:
    async with ClientCredentials(config_from_env()) as client:
        # One file per client and token parameters: a token restored here must be one this client would ask for.
        # A token stored without any expiry never counts as expired (as in simple-oauth2): mind such IdPs.
        token = load_stored(client)
        if token is not None and not token.expired(EXPIRATION_WINDOW_IN_SECONDS):
            print(f"restored stored token {token.fingerprint} (expires at {_when(token)}): no token request")
        else:
            token = await client.get_token(TOKEN_PARAMS)
            store(token)
            print(f"fetched new token {token.fingerprint} (expires at {_when(token)}), stored in {TOKEN_FILE}")
    return 0


def _when(token: AccessToken) -> str:
    return token.expires_at.isoformat(timespec="seconds") if token.expires_at else "never"


if __name__ == "__main__":
    # The grant core logs through structlog (fingerprints only, never secrets); keep warnings, on stderr.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    sys.exit(asyncio.run(main()))
