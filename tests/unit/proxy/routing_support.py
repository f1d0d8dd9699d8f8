"""The one token binding the routing tests hang their routes on: routing matches, it never fetches a token."""

from __future__ import annotations

from tokenrelay.proxy import TokenBinding
from tokenrelay.tokens import IssuedToken, RefreshPolicy, cache_key


async def _never() -> IssuedToken:  # pragma: no cover - routing never fetches
    raise AssertionError("not called")


BINDING = TokenBinding(
    key=cache_key(
        "p", token_endpoint="http://idp/token", client_id="c", credential_digest="0" * 64,
        auth_method="client_secret_basic", scope=None, audience=None, resource=(), params={},
    ),
    fetch=_never,
    policy=RefreshPolicy(),
)  # fmt: skip
