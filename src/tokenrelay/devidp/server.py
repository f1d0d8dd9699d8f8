"""Running the dev IdP (and the sample API) on real sockets: for ``tokenrelay demo``, ``dev-idp`` and tests.

:func:`start_dev_stack` binds (port 0 picks a free port), fixes the issuer to the bound URL, and returns a
:class:`DevStack` with the URLs, the state objects and the demo client's credentials; ``await stack.close()``.
:func:`run_dev_idp` is the blocking CLI entry point: it serves until SIGINT/SIGTERM, then shuts down cleanly.
The dev IdP refuses a non-loopback address unless told ``allow_non_loopback=True``: it is not an
authorization server to expose.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from aiohttp import web

from tokenrelay.devidp.clients import DEMO_CLIENT_ID, demo_client, load_clients_file, resolve_demo_secret
from tokenrelay.devidp.config import DevIdpConfig
from tokenrelay.devidp.idp import create_idp_app
from tokenrelay.devidp.keys import load_signing_key
from tokenrelay.devidp.sample_api import SAMPLE_API_STATE, SampleApiState, create_sample_api
from tokenrelay.devidp.state import DEV_IDP_STATE, DevIdpState

__all__ = ["DevStack", "NonLoopbackError", "check_loopback", "print_banner", "run_dev_idp", "start_dev_stack"]


class NonLoopbackError(ValueError):
    """The dev IdP was asked to listen on an address other hosts can reach."""


@dataclass(frozen=True, slots=True)
class DevStack:
    """A running dev IdP (and sample API). ``client_secret`` is the demo client's; it is not in the repr."""

    idp_url: str
    api_url: str | None
    idp: DevIdpState
    api: SampleApiState | None
    client_id: str
    client_secret: str = field(repr=False)
    _runners: tuple[web.AppRunner, ...] = field(repr=False, default=())

    @property
    def token_url(self) -> str:
        """The token endpoint URL."""
        return f"{self.idp_url}/token"

    async def close(self) -> None:
        """Stop serving (the sample API first, so nothing it fetches from the IdP fails mid-shutdown)."""
        for runner in reversed(self._runners):
            await runner.cleanup()


def check_loopback(host: str, *, allow_non_loopback: bool = False) -> None:
    """Refuse an address that is not loopback (``localhost``, 127.0.0.0/8, ``::1``) unless explicitly allowed."""
    if allow_non_loopback or host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False  # a host name other than localhost: do not guess what it resolves to
    if not loopback:
        raise NonLoopbackError(
            f"the dev IdP is a development tool and will not listen on {host!r}; "
            "use 127.0.0.1 / ::1, or pass allow_non_loopback=True if you really mean it"
        )


async def _serve(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_port = runner.addresses[0][1]
    display = f"[{host}]" if ":" in host else host
    return runner, f"http://{display}:{bound_port}"


async def start_dev_stack(
    host: str = "127.0.0.1",
    idp_port: int = 0,
    api_port: int | None = None,
    *,
    config: DevIdpConfig | None = None,
    client_secret: str | None = None,
    with_sample_api: bool = True,
    required_scope: str | None = None,
    allow_non_loopback: bool = False,
) -> DevStack:
    """Start the dev IdP, and the sample API in front of its keys unless ``with_sample_api=False``.

    ``api_port=None`` (or 0) picks a free port. ``config`` defaults to the demo client alone; the demo client is
    added to a given config unless it already has a client with that id. ``client_secret`` (else
    ``$TOKENRELAY_DEV_IDP_SECRET``, else random) is the demo client's secret, returned on the stack.
    """
    check_loopback(host, allow_non_loopback=allow_non_loopback)
    secret = resolve_demo_secret(client_secret)
    config = _with_demo_client(config or DevIdpConfig(), secret)
    idp_app = create_idp_app(config)
    idp_runner, idp_url = await _serve(idp_app, host, idp_port)
    idp_state = idp_app[DEV_IDP_STATE]
    if idp_state.issuer is None:
        idp_state.issuer = idp_url
    if not with_sample_api:
        return DevStack(idp_url, None, idp_state, None, DEMO_CLIENT_ID, secret, (idp_runner,))
    api_app = create_sample_api(
        idp_state.issuer, idp_state.key, config.default_audience, revocation=idp_state, required_scope=required_scope
    )
    try:
        api_runner, api_url = await _serve(api_app, host, api_port or 0)
    except BaseException:
        await idp_runner.cleanup()
        raise
    runners = (idp_runner, api_runner)
    return DevStack(idp_url, api_url, idp_state, api_app[SAMPLE_API_STATE], DEMO_CLIENT_ID, secret, runners)


def _with_demo_client(config: DevIdpConfig, secret: str) -> DevIdpConfig:
    if config.client(DEMO_CLIENT_ID) is not None:
        return config
    return replace(config, clients=(demo_client(secret), *config.clients))


def print_banner(stack: DevStack) -> None:
    """What ``tokenrelay dev-idp`` prints once at start: where it listens and the demo client's credentials."""
    lines = [
        "tokenrelay dev IdP (development only: in-memory, key generated at start, not for production)",
        f"  issuer:         {stack.idp_url}",
        f"  token endpoint: {stack.token_url}",
        f"  discovery:      {stack.idp_url}/.well-known/oauth-authorization-server",
        f"  client_id:      {stack.client_id}",
        f"  client_secret:  {stack.client_secret}",
    ]
    if stack.api_url:
        lines.append(f"  sample API:     {stack.api_url}/hello")
    print("\n".join(lines), flush=True)


def run_dev_idp(
    host: str = "127.0.0.1",
    port: int = 0,
    clients_file: str | Path | None = None,
    *,
    client_secret: str | None = None,
    expires_in: int = 300,
    include_expires_in: bool = True,
    with_sample_api: bool = False,
    allow_non_loopback: bool = False,
    signing_key_file: str | Path | None = None,
    on_ready: Callable[[DevStack], None] = print_banner,
) -> None:
    """Serve the dev IdP until SIGINT/SIGTERM (blocking). ``on_ready`` gets the running stack once, and by
    default prints the URLs and the demo client's secret to stdout. Raises ``ConfigError`` for a bad clients
    file and :class:`NonLoopbackError` for a non-loopback ``host``, before binding anything.
    ``signing_key_file`` (an RSA private key PEM) keeps the ``kid`` stable across restarts."""
    check_loopback(host, allow_non_loopback=allow_non_loopback)
    clients = load_clients_file(clients_file) if clients_file is not None else ()
    key = load_signing_key(Path(signing_key_file).read_bytes()) if signing_key_file is not None else None
    config = DevIdpConfig(
        clients=clients, expires_in=expires_in, include_expires_in=include_expires_in, signing_key=key
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            _run(host, port, config, client_secret, with_sample_api, allow_non_loopback, on_ready),
        )


async def _run(
    host: str,
    port: int,
    config: DevIdpConfig,
    client_secret: str | None,
    with_sample_api: bool,
    allow_non_loopback: bool,
    on_ready: Callable[[DevStack], None],
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    if sys.platform != "win32":
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
    stack = await start_dev_stack(
        host,
        port,
        config=config,
        client_secret=client_secret,
        with_sample_api=with_sample_api,
        allow_non_loopback=allow_non_loopback,
    )
    try:
        on_ready(stack)
        await stop.wait()
    finally:
        await stack.close()
