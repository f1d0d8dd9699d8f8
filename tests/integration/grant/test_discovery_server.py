"""Discovery against real HTTP servers on 127.0.0.1: the computed URLs hit the routes real servers publish.

The fetch here is deliberately minimal (plain aiohttp, try each URL in order) so these tests pin
:mod:`tokenrelay.grant.discovery` alone; the grant core's own fetch through its transport is tested with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tokenrelay.grant.discovery import MetadataCache, ServerMetadata, metadata_urls, parse_metadata
from tokenrelay.grant.errors import TokenResponseError

AiohttpServer = Callable[[web.Application], Awaitable[TestServer]]


async def discover(issuer: str) -> ServerMetadata:
    """Try the RFC 8414 URL, then the OIDC one; the first 200 is validated against ``issuer``."""
    async with aiohttp.ClientSession() as session:
        for url in metadata_urls(issuer):
            async with session.get(url, allow_redirects=False) as answer:
                if answer.status == 200:
                    return parse_metadata(await answer.json(), expected_issuer=issuer)
    raise LookupError(f"no metadata for {issuer}")


async def serve_metadata(
    aiohttp_server: AiohttpServer, path: str, document: Callable[[web.Request], dict[str, Any]]
) -> tuple[TestServer, list[str]]:
    """A server publishing ``document`` at ``path`` only; it records every path requested in the list returned."""
    hits: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.json_response(document(request))

    app = web.Application()
    app.router.add_get(path, handler)
    return await aiohttp_server(app), hits


def doc_for(issuer_path: str) -> Callable[[web.Request], dict[str, Any]]:
    def document(request: web.Request) -> dict[str, Any]:
        origin = f"http://{request.host}"
        return {
            "issuer": origin + issuer_path,
            "token_endpoint": f"{origin}{issuer_path}/token",
            "jwks_uri": f"{origin}{issuer_path}/jwks",
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        }

    return document


async def test_rfc8414_server_with_a_path_issuer_is_found_at_the_path_inserted_url(
    aiohttp_server: AiohttpServer,
) -> None:
    server, hits = await serve_metadata(
        aiohttp_server, "/.well-known/oauth-authorization-server/tenant1", doc_for("/tenant1")
    )
    issuer = str(server.make_url("/tenant1"))

    found = await discover(issuer)

    assert found.issuer == issuer
    assert found.token_endpoint == issuer + "/token"
    assert found.token_endpoint_auth_methods_supported == ("private_key_jwt",)
    assert hits == ["/.well-known/oauth-authorization-server/tenant1"]


async def test_oidc_only_server_is_found_at_the_appended_url_after_the_rfc8414_one_fails(
    aiohttp_server: AiohttpServer,
) -> None:
    server, hits = await serve_metadata(
        aiohttp_server, "/realms/dev/.well-known/openid-configuration", doc_for("/realms/dev")
    )
    issuer = str(server.make_url("/realms/dev/"))

    with pytest.raises(TokenResponseError, match="differ only in a trailing '/'"):
        await discover(issuer)
    found = await discover(issuer.rstrip("/"))

    assert found.jwks_uri == issuer + "jwks"
    assert hits == ["/realms/dev/.well-known/openid-configuration"] * 2


async def test_server_announcing_another_issuer_is_refused(aiohttp_server: AiohttpServer) -> None:
    server, _ = await serve_metadata(
        aiohttp_server, "/.well-known/oauth-authorization-server/tenant1", doc_for("/tenant2")
    )

    with pytest.raises(TokenResponseError, match="does not match the configured issuer") as info:
        await discover(str(server.make_url("/tenant1")))

    assert info.value.payload["issuer"].endswith("/tenant2")


async def test_cache_sends_one_request_for_many_concurrent_callers(aiohttp_server: AiohttpServer) -> None:
    server, hits = await serve_metadata(aiohttp_server, "/.well-known/oauth-authorization-server", doc_for(""))
    issuer = str(server.make_url("")).rstrip("/")
    cache = MetadataCache(ttl=60)

    results = await asyncio.wait_for(
        asyncio.gather(*(cache.get(issuer, lambda: discover(issuer)) for _ in range(20))), timeout=10
    )

    assert len(hits) == 1
    assert {r.token_endpoint for r in results} == {issuer + "/token"}
