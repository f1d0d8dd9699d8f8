"""``invalid_client`` through ``serve``: refused at once and not retried per request, ``/readyz`` fails for the
profile, and a rotated ``secret_file`` (a new cache key) brings it back without a restart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.integration.serving_support import ServerFactory, eventually, serving, token_endpoint
from tests.integration.through_proxy.support import (
    Answer,
    EchoUpstream,
    SwitchableIdp,
    fetch,
    one_route_config,
    url,
)


@pytest.fixture(name="idp")
async def _invalid_client_idp(aiohttp_server: ServerFactory) -> SwitchableIdp:
    """The token endpoint answers 401 invalid_client until a test switches it."""
    idp = SwitchableIdp(mode="invalid_client")
    idp.url = await token_endpoint(aiohttp_server, idp.token)
    return idp


async def readyz(client: aiohttp.ClientSession, admin: tuple[str, int]) -> tuple[int, dict[str, Any]]:
    async with client.get(url(admin, "/readyz")) as response:
        return response.status, await response.json()


async def test_invalid_client_is_not_retried_per_request_and_fails_readyz(
    idp: SwitchableIdp, upstream: EchoUpstream
) -> None:
    async with serving(one_route_config(idp, upstream)) as listening, aiohttp.ClientSession() as client:
        assert listening.admin is not None
        answers = [await fetch(client, url(listening.proxy, f"/billing/{i}")) for i in range(20)]
        status, body = await readyz(client, listening.admin)
    assert {(a.status, a.body["error"]) for a in answers} == {(503, "token_unavailable")}
    assert all("invalid_client" in a.body["message"] for a in answers)
    assert all(int(a.headers["Retry-After"]) >= 60 for a in answers)  # a long, permanent-failure backoff
    assert idp.received == 1
    assert status == 503
    assert body["profiles"]["billing"]["reason"] == "permanent_failure"
    assert body["profiles"]["billing"]["last_error"] == "invalid_client"


async def test_rotated_secret_file_recovers_from_invalid_client_without_a_restart(
    idp: SwitchableIdp, upstream: EchoUpstream, tmp_path: Path
) -> None:
    secret_file = tmp_path / "client-secret"
    secret_file.write_text("revoked-secret")
    config = one_route_config(idp, upstream, client={"id": "relay-client", "secret_file": str(secret_file)})
    config["server"]["secret_check_interval"] = 0.05
    async with serving(config) as listening, aiohttp.ClientSession() as client:
        assert listening.admin is not None
        assert (await fetch(client, url(listening.proxy, "/billing/a"))).status == 503
        assert (await readyz(client, listening.admin))[0] == 503
        idp.mode = "ok"
        secret_file.write_text("rotated-secret")
        answers: list[Answer] = []

        async def served() -> bool:
            answers.append(await fetch(client, url(listening.proxy, "/billing/b")))
            return answers[-1].status == 200

        await eventually(served, limit=5, interval=0.05)  # far below the old key's 300 s permanent backoff
        assert answers[-1].body["authorization"] == "Bearer tok-1"
        assert (await readyz(client, listening.admin))[0] == 200
