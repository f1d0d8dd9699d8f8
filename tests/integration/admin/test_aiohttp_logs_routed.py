"""aiohttp's own log records from a real server come out through tokenrelay's pipeline, redacted."""

from __future__ import annotations

import io
import json

from aiohttp import web

from tests.integration.admin.conftest import ClientFactory
from tokenrelay.log import configure_logging

SECRET = "leaky-upstream-token-1b2c3d"


async def test_an_unhandled_handler_error_is_logged_as_redacted_json(aiohttp_client: ClientFactory) -> None:
    """aiohttp.server logs the traceback of a failing handler: one JSON line, credential masked, no access line."""
    out = io.StringIO()
    configure_logging("info", "json", stream=out, cache_loggers=False)

    async def failing(_: web.Request) -> web.Response:
        raise RuntimeError(f"upstream said: Authorization: Bearer {SECRET}")

    app = web.Application()
    app.router.add_get("/", failing)
    client = await aiohttp_client(app)
    assert (await client.get("/")).status == 500
    await client.close()
    lines = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
    assert SECRET not in out.getvalue()
    (line,) = lines
    assert (line["logger"], line["level"]) == ("aiohttp.server", "error")
    assert "RuntimeError: upstream said: Authorization: Bearer ***" in line["exception"]
