"""``tokenrelay demo``: the whole relay, working, in one process on loopback, with nothing to configure.

It starts the development authorization server and its protected sample API (``tokenrelay.devidp``), builds a
:class:`~tokenrelay.settings.Settings` in code (one profile for the dev IdP's demo client, one route ``/api/`` ->
the sample API), and starts the proxy through :func:`tokenrelay.server.serve`, the code path ``tokenrelay
serve`` uses, so the demo shows the real proxy rather than a re-enactment. Then it sends a few requests through
and tells what happened, with every number read from a real counter (the IdP's ``/_dev/stats``, the sample API's
``/_sample/stats``, the proxy's ``/metrics`` and ``/tokens``):

1. 20 concurrent requests without credentials all succeed, and the IdP saw exactly one token request;
2. the sample API received ``Authorization: Bearer <token>`` (shown as a fingerprint: tokens are never printed);
3. the token is revoked at the IdP: the upstream answers 401, the proxy refreshes once and replays, the client
   still gets 200, and the IdP has seen two token requests;
4. the proxy's ``/tokens`` summary.

Every port is 0 (ephemeral) and every listener is loopback, so the demo never collides with anything and is
never reachable from elsewhere. ``--keep-running`` leaves everything up and prints ``curl`` commands until
Ctrl-C. The exit status is 0 when every step behaved as expected, else 1 with what went wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Sequence
from typing import Any, Final, TextIO

import aiohttp

from tokenrelay.demo_support import EXIT_FAILED, PROFILE, DemoContext, Endpoints, Narrator, metric_value
from tokenrelay.devidp.clients import DEMO_SCOPES
from tokenrelay.devidp.server import DevStack, start_dev_stack
from tokenrelay.grant.errors import ConfigError
from tokenrelay.server import Listening, StartupError, serve
from tokenrelay.settings import Settings, build_settings

__all__ = ["CONCURRENT_REQUESTS", "PROFILE", "ROUTE", "demo_settings", "main", "metric_value", "run_demo"]

#: The route the demo configures (the profile is :data:`tokenrelay.demo_support.PROFILE`).
ROUTE: Final = "api"
CONCURRENT_REQUESTS: Final = 20
#: Bound on the scripted part: the demo takes about a second; anything near this is a hang.
SCRIPT_TIMEOUT: Final = 30.0
#: Bound on starting the proxy (binding two loopback sockets and compiling one profile).
STARTUP_TIMEOUT: Final = 10.0

#: What stops the demo short (reported as a failure, exit 1): a bad config, a port, the network, a hang.
_RUN_ERRORS: Final = (ConfigError, StartupError, OSError, aiohttp.ClientError, TimeoutError, RuntimeError)


def main(argv: Sequence[str] | None = None, *, keep_running: bool = False) -> int:
    """Run the demo; returns the exit status. ``argv`` takes ``--keep-running`` / ``--serve`` (``None``: none).

    ``tokenrelay demo`` calls ``main()``; ``python -m tokenrelay.demo --keep-running`` reaches the flag too.
    """
    parser = argparse.ArgumentParser(prog="tokenrelay demo", description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--keep-running",
        "--serve",
        action="store_true",
        help="after the demo, keep the IdP, the sample API and the proxy up (with curl commands) until Ctrl-C",
    )
    args = parser.parse_args(list(argv or ()))
    from tokenrelay.log import configure_logging

    # The narrative goes to stdout; the proxy's own log lines (warnings and errors only) to stderr.
    configure_logging("warning", "console", stream=sys.stderr)
    try:
        return asyncio.run(run_demo(keep_running=keep_running or args.keep_running))
    except KeyboardInterrupt:
        return EXIT_FAILED
    except BrokenPipeError:
        # stdout was closed early (``tokenrelay demo | head``): no traceback, and no second error at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED


def demo_settings(stack: DevStack) -> Settings:
    """The proxy's configuration for ``stack``: one profile (the demo client), one route ``/api/`` -> sample API.

    Listeners are given as flags (the highest-priority source), so they are always loopback on ephemeral
    ports; everything else is the lowest-priority source, so ``TOKENRELAY_*`` variables still apply as they do
    for ``serve`` (``TOKENRELAY_LOG__LEVEL=debug`` shows the proxy's log). ``prefetch`` is off, so the first
    proxied request is what triggers the token request and the single-flight is visible.
    """
    if stack.api_url is None:
        raise ValueError("the demo needs the dev stack's sample API")
    embedded: dict[str, Any] = {
        "server": {"shutdown_grace": 2.0},
        "profiles": {
            PROFILE: {
                "client": {"id": stack.client_id, "secret": stack.client_secret},
                "auth": {"token_host": stack.idp_url, "token_path": "/token"},
                "scope": [DEMO_SCOPES[0]],
                "prefetch": False,
            }
        },
        "routes": [
            {
                "name": ROUTE,
                "match": {"path_prefix": "/api/"},
                "upstream": stack.api_url,
                "strip_prefix": True,
                "profile": PROFILE,
            }
        ],
    }
    loopback = {"host": "127.0.0.1", "port": 0}
    return build_settings(embedded, listen=dict(loopback), admin={**loopback, "enabled": True})


async def run_demo(*, keep_running: bool = False, out: TextIO | None = None) -> int:
    """Start everything, run the script, print the story to ``out`` (stdout); returns the exit status."""
    narrator = Narrator(out if out is not None else sys.stdout)
    stack = await start_dev_stack()
    try:
        settings = demo_settings(stack)
        stop = asyncio.Event()
        ready: asyncio.Future[Listening] = asyncio.get_running_loop().create_future()
        server = asyncio.create_task(serve(settings, stop=stop, on_ready=ready.set_result))
        try:
            listening = await _started(server, ready)
            endpoints = Endpoints.of(stack, listening)
            narrator.intro(endpoints)
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
                context = DemoContext(endpoints, session, narrator)
                await _script(context, stack, server)
            if keep_running and narrator.ok:
                narrator.how_to_try(endpoints)
                await server  # serve() turns Ctrl-C / SIGTERM into a graceful stop
        finally:
            stop.set()
            await _finished(server)
    except _RUN_ERRORS as exc:
        narrator.fail(f"the demo could not run: {type(exc).__name__}: {exc}")
    finally:
        await stack.close()
    return narrator.conclude()


async def _started(server: asyncio.Task[None], ready: asyncio.Future[Listening]) -> Listening:
    """The proxy's bound addresses, or the startup failure raised here."""
    async with asyncio.timeout(STARTUP_TIMEOUT):
        waiting: set[asyncio.Future[Any]] = {server, ready}
        done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    if ready in done:
        return ready.result()
    server.result()  # raises why serve() ended
    raise RuntimeError("the proxy stopped before it was ready")


async def _finished(server: asyncio.Task[None]) -> None:
    """Wait for the proxy's graceful stop (bounded); a startup error was already reported by ``_started``."""
    with contextlib.suppress(*_RUN_ERRORS):
        await asyncio.wait_for(server, STARTUP_TIMEOUT)


async def _script(context: DemoContext, stack: DevStack, server: asyncio.Task[None]) -> None:
    """The four scripted steps, each checked against the counters; bounded in time."""
    narrator = context.narrator
    async with asyncio.timeout(SCRIPT_TIMEOUT):
        first: str | None = None
        await _step_single_flight(context)
        if narrator.ok:
            first = await _step_header_injected(context)
        if narrator.ok:
            await _step_forced_refresh(context, stack, first)
        await _step_tokens(context)  # also after a failure: the cache status often says why
    if server.done():
        narrator.fail("the proxy stopped during the demo")


async def _step_single_flight(context: DemoContext) -> None:
    narrator = context.narrator
    narrator.step(f"{CONCURRENT_REQUESTS} concurrent requests through the proxy, without any credentials")
    narrator.command(f"GET {context.endpoints.proxy}/api/hello  (x{CONCURRENT_REQUESTS}, at once)")
    statuses = await asyncio.gather(*(context.proxy_get("/api/hello") for _ in range(CONCURRENT_REQUESTS)))
    ok = sum(1 for status, _ in statuses if status == 200)
    if not narrator.check(ok == CONCURRENT_REQUESTS, f"{ok} of {CONCURRENT_REQUESTS} answered 200"):
        narrator.say("first failure: " + _describe(*next(answer for answer in statuses if answer[0] != 200)))
    token_requests = await context.idp_token_requests()
    narrator.check(
        token_requests == 1,
        f"the IdP saw {token_requests} token request{'s' if token_requests != 1 else ''} for all of them "
        "(the other requests waited for that one fetch)",
    )
    fetches = metric_value(await context.metrics(), "tokenrelay_token_fetches_total", profile=PROFILE, outcome="ok")
    narrator.say(f'proxy metric tokenrelay_token_fetches_total{{profile="{PROFILE}",outcome="ok"}} = {fetches:g}')


def _describe(status: int, body: object) -> str:
    """A proxy or upstream answer in one line: status, error code and message (never a token: none is in it)."""
    if not isinstance(body, dict):
        return f"HTTP {status}"
    error, message = body.get("error"), body.get("message") or body.get("error_description")
    return f"HTTP {status} {error}: {message}" if error else f"HTTP {status}"


async def _step_header_injected(context: DemoContext) -> str | None:
    narrator = context.narrator
    narrator.step("what the sample API received")
    narrator.command(f"GET {context.endpoints.proxy}/api/echo/whoami  (the client sends no Authorization)")
    status, body = await context.proxy_get("/api/echo/whoami")
    authorization = body.get("authorization") if isinstance(body, dict) else None
    seen = authorization.get("fingerprint") if isinstance(authorization, dict) else None
    issued = await context.idp_last_issued()
    narrator.check(
        status == 200 and seen is not None,
        f"the sample API received 'Authorization: Bearer <token {seen}>' and answered {status}",
    )
    narrator.check(seen is not None and seen == issued, f"that is the token the IdP issued (fingerprint {issued})")
    narrator.say("(tokens are shown only as fingerprints: the first 8 hex characters of their SHA-256)")
    return issued


async def _step_forced_refresh(context: DemoContext, stack: DevStack, first: str | None) -> None:
    narrator = context.narrator
    narrator.step("the token is revoked at the IdP: the upstream answers 401, the proxy refreshes and replays")
    revoked = stack.idp.revoke_recent()
    narrator.say(f"revoked {revoked} token{'s' if revoked != 1 else ''} at the IdP (fingerprint {first})")
    narrator.command(f"GET {context.endpoints.proxy}/api/hello")
    status, body = await context.proxy_get("/api/hello")
    now = body.get("token_fingerprint") if isinstance(body, dict) else None
    narrator.check(status == 200, f"the client got {status}, with the new token {now}")
    rejected = (await context.api_stats()).get("unauthorized_by_reason", {}).get("revoked", 0)
    narrator.check(rejected == 1, f"the sample API rejected the revoked token {rejected} time(s) with 401")
    replays = metric_value(await context.metrics(), "tokenrelay_replays_total", route=ROUTE)
    narrator.check(replays == 1, f"the proxy replayed {replays:g} request(s) with a fresh token")
    token_requests = await context.idp_token_requests()
    narrator.check(token_requests == 2, f"the IdP has now seen {token_requests} token requests in total")
    narrator.check(now is not None and now != first, "the new token is not the revoked one")


async def _step_tokens(context: DemoContext) -> None:
    narrator = context.narrator
    narrator.step("the proxy's token cache (admin API)")
    narrator.command(f"GET {context.endpoints.admin}/tokens")
    entries = await context.tokens()
    for entry in entries:
        narrator.say(
            f"profile {entry.get('profile')}: token {entry.get('fingerprint')}, expires in "
            f"{entry.get('expires_in')} s, fetched {entry.get('fetches_ok')} time(s), "
            f"cache hits {entry.get('hits')}, misses {entry.get('misses')}"
        )
    ours = [entry for entry in entries if entry.get("profile") == PROFILE]
    if narrator.ok:  # after an earlier failure the count means nothing
        narrator.check(len(ours) == 1 and ours[0].get("fetches_ok") == 2, "one cached token, fetched twice in all")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
