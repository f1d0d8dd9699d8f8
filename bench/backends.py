"""The benchmark's upstream API and token endpoint, in one process so they cost the proxies nothing extra.

Usage: python bench/backends.py UPSTREAM_PORT TOKEN_PORT
"""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web

BODY = b'{"ok":true,"items":[1,2,3,4,5,6,7,8,9,10]}'


async def upstream(request: web.Request) -> web.Response:
    if request.body_exists:
        await request.read()
    return web.Response(body=BODY, content_type="application/json")


async def token(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response(
        {"access_token": "bench-token-0123456789abcdef", "token_type": "Bearer", "expires_in": 3600}
    )


async def main(upstream_port: int, token_port: int) -> None:
    api, idp = web.Application(), web.Application()
    api.router.add_route("*", "/{tail:.*}", upstream)
    idp.router.add_post("/token", token)
    runners = [web.AppRunner(api, access_log=None), web.AppRunner(idp, access_log=None)]
    for runner, port in zip(runners, (upstream_port, token_port), strict=True):
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
