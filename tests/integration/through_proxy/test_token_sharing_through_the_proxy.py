"""Which requests share a token, through ``serve``: the cache key holds every input of the token request.

Two routes on one profile share one token. When a reload changes any input of the profile's token request
(secret, client id, scope, audience, extra params, client authentication method), the next request carries a new
token: the old key and its token are dropped. A reload that leaves those inputs alone keeps the token.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.integration.serving_support import eventually, serving
from tests.integration.through_proxy.support import (
    EchoUpstream,
    SwitchableIdp,
    fetch,
    one_route_config,
    url,
)


def two_routes(idp: SwitchableIdp, upstream: EchoUpstream) -> dict[str, Any]:
    config = one_route_config(idp, upstream, scope=["invoices.read"])
    config["routes"].append(
        {"name": "invoices", "match": {"path_prefix": "/invoices"}, "upstream": upstream.url,
         "strip_prefix": True, "profile": "billing"}
    )  # fmt: skip
    return config


async def test_two_routes_on_one_profile_share_one_token(idp: SwitchableIdp, upstream: EchoUpstream) -> None:
    async with serving(two_routes(idp, upstream)) as listening, aiohttp.ClientSession() as client:
        answers = await asyncio.gather(
            *(
                fetch(client, url(listening.proxy, f"/{prefix}/{i}"))
                for prefix in ("billing", "invoices")
                for i in range(10)
            )
        )
    assert {(a.status, a.body["authorization"]) for a in answers} == {(200, "Bearer tok-1")}
    assert idp.issued == 1


CHANGES = [
    pytest.param({"client": {"id": "relay-client", "secret": "another-secret"}}, True, id="secret"),
    pytest.param({"client": {"id": "another-client", "secret": "relay-secret-value"}}, True, id="client-id"),
    pytest.param({"scope": ["invoices.write"]}, True, id="scope"),
    pytest.param({"audience": "https://api.test"}, True, id="audience"),
    pytest.param({"params": {"tenant": "t2"}}, True, id="extra-param"),
    pytest.param({"options": {"authorizationMethod": "body"}}, True, id="auth-method"),
    pytest.param({"refresh_before_expiry": "30s"}, False, id="refresh-window-only"),
]


@pytest.mark.parametrize(("change", "new_token"), CHANGES)
async def test_a_reload_gets_a_new_token_exactly_when_a_token_request_input_changes(
    idp: SwitchableIdp, upstream: EchoUpstream, tmp_path: Path, change: dict[str, Any], new_token: bool
) -> None:
    config = two_routes(idp, upstream)
    config["server"] |= {"watch_config": True, "watch_interval": 0.02}
    path = tmp_path / "relay.yaml"
    path.write_text(yaml.safe_dump(config))
    async with serving(config, config_path=path) as listening, aiohttp.ClientSession() as client:
        assert listening.admin is not None
        admin = listening.admin
        assert (await fetch(client, url(listening.proxy, "/billing/a"))).body["authorization"] == "Bearer tok-1"
        config["profiles"]["billing"] |= change
        path.write_text(yaml.safe_dump(config))

        async def reloaded() -> bool:
            async with client.get(url(admin, "/tokens")) as response:
                return int((await response.json())["generation"]) == 2

        await eventually(reloaded)
        after = await fetch(client, url(listening.proxy, "/invoices/b"))
    assert after.status == 200
    assert after.body["authorization"] == ("Bearer tok-2" if new_token else "Bearer tok-1")
    assert idp.issued == (2 if new_token else 1)
