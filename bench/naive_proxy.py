"""The baseline: a ~60-line streaming aiohttp reverse proxy that injects one static token.

It does what every hand-rolled token-injecting proxy does and nothing more: no token lifecycle, no routing table,
no access control, no metrics, no 401 replay. tokenrelay's per-request CPU is compared against it.
Usage: python bench/naive_proxy.py PORT UPSTREAM_URL TOKEN [asyncio|uvloop]
"""

from __future__ import annotations

import sys

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

HOP_BY_HOP = frozenset(
    h.lower()
    for h in ("Connection", "Keep-Alive", "Proxy-Connection", "TE", "Transfer-Encoding", "Upgrade", "Trailer", "Host")
)


def make_app(upstream: str, token: str) -> web.Application:
    app = web.Application()
    authorization = f"Bearer {token}"

    async def on_startup(app: web.Application) -> None:
        connector = aiohttp.TCPConnector(limit=1000)
        app["session"] = aiohttp.ClientSession(connector=connector, auto_decompress=False)

    async def on_cleanup(app: web.Application) -> None:
        await app["session"].close()

    async def handle(request: web.Request) -> web.StreamResponse:
        headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP)
        headers["Authorization"] = authorization
        body = request.content if request.body_exists else None
        async with app["session"].request(
            request.method, upstream + request.raw_path, headers=headers, data=body, allow_redirects=False
        ) as upstream_response:
            response = web.StreamResponse(status=upstream_response.status)
            for key, value in upstream_response.headers.items():
                if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                    response.headers.add(key, value)
            if upstream_response.content_length is not None:
                response.content_length = upstream_response.content_length
            await response.prepare(request)
            async for chunk in upstream_response.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    app.router.add_route("*", "/{tail:.*}", handle)
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app


if __name__ == "__main__":
    port, upstream, token = int(sys.argv[1]), sys.argv[2].rstrip("/"), sys.argv[3]
    loop = None
    if sys.argv[4:5] == ["uvloop"]:  # the loop tokenrelay runs on when uvloop is installed: compare like with like
        import uvloop

        loop = uvloop.new_event_loop()
    web.run_app(make_app(upstream, token), host="127.0.0.1", port=port, access_log=None, print=None, loop=loop)
