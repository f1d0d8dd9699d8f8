"""The request id is context for every line logged while a request is handled, not only for the access line."""

from __future__ import annotations

import io
import json

import aiohttp
import pytest
from aiohttp import web

from tests.integration.proxy.proxy_helpers import MakeProxy, Upstream
from tests.shared_fixtures import restore_logging as restore_logging  # autouse: undo configure_logging
from tokenrelay.log import configure_logging


@pytest.fixture(name="log_output")
def _log_output() -> io.StringIO:
    """JSON logging into a buffer for one test; ``restore_logging`` (autouse) puts the previous setup back."""
    out = io.StringIO()
    configure_logging("info", "json", stream=out, cache_loggers=False)
    return out


async def test_lines_logged_during_a_request_carry_its_id(
    make_proxy: MakeProxy, upstream: Upstream, session: aiohttp.ClientSession, log_output: io.StringIO
) -> None:
    """The replay's ``token_rejected`` line (which passes no id itself) names the request, as the access line does."""

    async def respond(request: web.BaseRequest) -> web.StreamResponse:
        if request.headers.get("Authorization") == "Bearer tok-1":
            return web.Response(status=401, text="expired")
        return web.Response(text="fine")

    upstream.respond = respond
    proxy = await make_proxy()
    async with session.get(proxy.make_url("/x"), headers={"X-Request-Id": "rid-ctx-1"}) as response:
        assert response.status == 200
    lines = [json.loads(line) for line in log_output.getvalue().splitlines()]
    by_event = {line["event"]: line for line in lines}
    assert by_event["token_rejected"]["request_id"] == "rid-ctx-1"
    assert by_event["request"]["request_id"] == "rid-ctx-1"
