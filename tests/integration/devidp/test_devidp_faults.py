"""Fault injection (``/_dev/faults``) and counters (``/_dev/stats``) on a real dev IdP."""

from __future__ import annotations

import json
import time

import aiohttp
import pytest
from structlog.testing import capture_logs

from .support import POST_ID, POST_SECRET, Idp

TOKEN_FORM = {"grant_type": "client_credentials", "client_id": POST_ID, "client_secret": POST_SECRET}


async def set_faults(http: aiohttp.ClientSession, idp: Idp, spec: object) -> aiohttp.ClientResponse:
    async with http.post(f"{idp.url}/_dev/faults", json=spec) as response:
        await response.read()
        return response


async def token_status(http: aiohttp.ClientSession, idp: Idp) -> tuple[int, bytes]:
    async with http.post(idp.token_url, data=TOKEN_FORM) as response:
        return response.status, await response.read()


async def test_fail_next_two_gives_two_503s_then_success(http: aiohttp.ClientSession, idp: Idp) -> None:
    await set_faults(http, idp, {"fail_next": 2})
    statuses = [(await token_status(http, idp))[0] for _ in range(3)]
    assert statuses == [503, 503, 200]


async def test_fault_error_body_is_an_rfc6749_error_object(http: aiohttp.ClientSession, idp: Idp) -> None:
    await set_faults(http, idp, {"fail_next": 1, "status": 500})
    async with http.post(idp.token_url, data=TOKEN_FORM) as response:
        assert response.status == 500
        assert (await response.json())["error"] == "temporarily_unavailable"


async def test_garbage_fault_answers_200_with_unparseable_body(http: aiohttp.ClientSession, idp: Idp) -> None:
    await set_faults(http, idp, {"fail_next": 1, "status": 200, "body": "garbage"})
    status, body = await token_status(http, idp)
    assert status == 200
    assert b"access_token" not in body
    assert not body.startswith(b"{")


async def test_delay_only_fault_slows_a_successful_answer(http: aiohttp.ClientSession, idp: Idp) -> None:
    await set_faults(http, idp, {"fail_next": 1, "status": 200, "delay": 0.3})
    started = time.monotonic()
    status, body = await token_status(http, idp)
    assert status == 200
    assert b"access_token" in body
    assert time.monotonic() - started >= 0.3


async def test_reset_drops_pending_faults(http: aiohttp.ClientSession, idp: Idp) -> None:
    await set_faults(http, idp, {"fail_next": 5})
    await set_faults(http, idp, {"reset": True})
    assert (await token_status(http, idp))[0] == 200


@pytest.mark.parametrize(
    "spec",
    [{"fail_next": -1}, {"fail_next": 1, "status": 42}, {"fail_next": 1, "body": "html"}, {"oops": 1}, [1]],
)
async def test_invalid_fault_spec_is_400(http: aiohttp.ClientSession, idp: Idp, spec: object) -> None:
    response = await set_faults(http, idp, spec)
    assert response.status == 400
    assert idp.state.stats()["faults_pending"] == 0


async def test_stats_count_requests_by_client_and_outcome(http: aiohttp.ClientSession, idp: Idp) -> None:
    await set_faults(http, idp, {"fail_next": 1})
    await token_status(http, idp)
    await token_status(http, idp)
    async with http.post(idp.token_url, data={**TOKEN_FORM, "client_secret": "wrong"}):
        pass
    async with http.post(idp.token_url, data={**TOKEN_FORM, "client_id": "nobody"}):
        pass
    async with http.get(f"{idp.url}/_dev/stats") as response:
        stats = await response.json()
    assert stats["token_requests"] == {
        "-": {"fault": 1},
        POST_ID: {"issued": 1, "invalid_client": 1},
        "(unknown)": {"invalid_client": 1},
    }
    assert stats["totals"] == {"token_requests": 4, "tokens_issued": 1, "revocations": 0, "faults_served": 1}


async def test_delete_stats_zeroes_counters(http: aiohttp.ClientSession, idp: Idp) -> None:
    await token_status(http, idp)
    async with http.delete(f"{idp.url}/_dev/stats") as response:
        assert (await response.json())["totals"]["token_requests"] == 0


async def test_logs_show_token_fingerprints_never_tokens_or_secrets(http: aiohttp.ClientSession, idp: Idp) -> None:
    with capture_logs() as logs:
        _, body = await token_status(http, idp)
    text = repr(logs)
    assert any(entry["event"] == "token issued" for entry in logs)
    assert POST_SECRET not in text
    assert json.loads(body)["access_token"] not in text
