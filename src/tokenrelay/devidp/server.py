"""Running the dev IdP (and the sample API) on real sockets: for ``tokenrelay demo``, ``dev-idp`` and tests.

:func:`start_dev_stack` binds (port 0 picks a free port), fixes the issuer to the bound URL, and returns a
:class:`DevStack` with the URLs, the state objects and the demo client's credentials; ``await stack.close()``.
:func:`run_dev_idp` is the blocking CLI entry point: it serves until SIGINT/SIGTERM, then shuts down cleanly;
:func:`run_sample_api` does the same for the sample API alone, checking tokens against a JWKS fetched over HTTP
(a dev IdP in another process or container). Both refuse a non-loopback address unless told
``allow_non_loopback=True``: they are development tools, not servers to expose.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from aiohttp import web

from tokenrelay.devidp.clients import (
    DEFAULT_AUDIENCE,
    DEMO_CLIENT_ID,
    demo_client,
    load_clients_file,
    resolve_demo_secret,
)
from tokenrelay.devidp.config import DevIdpConfig
from tokenrelay.devidp.idp import create_idp_app
from tokenrelay.devidp.keys import load_signing_key
from tokenrelay.devidp.sample_api import SAMPLE_API_STATE, SampleApiState, create_sample_api
from tokenrelay.devidp.state import DEV_IDP_STATE, DevIdpState
from tokenrelay.grant.errors import ConfigError, FieldError
from tokenrelay.grant.urls import is_loopback_host

__all__ = [
    "DevStack",
    "NonLoopbackError",
    "SampleApi",
    "check_loopback",
    "print_banner",
    "print_sample_api_banner",
    "run_dev_idp",
    "run_sample_api",
    "start_dev_stack",
    "start_sample_api",
]


#: What the CLI entry points run: a dev IdP stack or a sample API alone.
_Running = TypeVar("_Running", "DevStack", "SampleApi")


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


@dataclass(frozen=True, slots=True)
class SampleApi:
    """A running sample API on its own (see :func:`start_sample_api`); ``await api.close()``."""

    url: str
    state: SampleApiState
    _runner: web.AppRunner = field(repr=False)

    async def close(self) -> None:
        """Stop serving (and close the JWKS client)."""
        await self._runner.cleanup()


def check_loopback(host: str, *, allow_non_loopback: bool = False, what: str = "the dev IdP") -> None:
    """Refuse an address that is not loopback (``localhost``, 127.0.0.0/8, ``::1``) unless explicitly allowed."""
    if not allow_non_loopback and not is_loopback_host(host):
        raise NonLoopbackError(
            f"{what} is a development tool and will not listen on {host!r}; "
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


async def start_sample_api(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    issuer: str,
    jwks_url: str,
    audience: str = DEFAULT_AUDIENCE,
    allow_non_loopback: bool = False,
) -> SampleApi:
    """Start the sample API alone: tokens must carry ``issuer`` and ``audience`` and verify against the keys at
    ``jwks_url`` (fetched on first use and on an unknown ``kid``). No revocation check: that needs the IdP's state."""
    check_loopback(host, allow_non_loopback=allow_non_loopback, what="the sample API")
    app = create_sample_api(issuer, jwks_url, audience)
    runner, url = await _serve(app, host, port)
    return SampleApi(url, app[SAMPLE_API_STATE], runner)


def _with_demo_client(config: DevIdpConfig, secret: str) -> DevIdpConfig:
    if config.client(DEMO_CLIENT_ID) is not None:
        return config
    return replace(config, clients=(demo_client(secret), *config.clients))


def print_banner(stack: DevStack) -> None:
    """What ``tokenrelay dev-idp`` prints once at start: where it listens and the demo client's credentials.

    The URLs are the advertised issuer's (``--issuer``), which is the bound URL unless one was given.
    """
    issuer = stack.idp.issuer or stack.idp_url
    lines = [
        "tokenrelay dev IdP (development only: in-memory, key generated at start, not for production)",
        f"  issuer:         {issuer}",
        f"  token endpoint: {issuer}/token",
        f"  discovery:      {issuer}/.well-known/oauth-authorization-server",
        f"  client_id:      {stack.client_id}",
        f"  client_secret:  {stack.client_secret}",
    ]
    if issuer != stack.idp_url:
        lines.insert(4, f"  listening on:   {stack.idp_url}")
    if stack.api_url:
        lines.append(f"  sample API:     {stack.api_url}/hello")
    print("\n".join(lines), flush=True)


def print_sample_api_banner(api: SampleApi) -> None:
    """What ``tokenrelay sample-api`` prints once at start: where it listens and what tokens it accepts."""
    lines = [
        "tokenrelay sample API (development only: checks tokens of the dev IdP)",
        f"  listening on:   {api.url}",
        f"  hello:          {api.url}/hello",
        f"  issuer:         {api.state.issuer}",
        f"  audience:       {api.state.audience}",
    ]
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
    issuer: str | None = None,
    on_ready: Callable[[DevStack], None] = print_banner,
) -> None:
    """Serve the dev IdP until SIGINT/SIGTERM (blocking). ``on_ready`` gets the running stack once, and by
    default prints the URLs and the demo client's secret to stdout. Raises ``ConfigError`` for a bad clients
    file and :class:`NonLoopbackError` for a non-loopback ``host``, before binding anything.
    ``signing_key_file`` (an RSA private key PEM) keeps the ``kid`` stable across restarts. ``issuer`` is the
    URL advertised in discovery and put in tokens (default: the bound URL), for when clients reach the IdP by
    another name than the address it binds (``http://dev-idp:9000`` in a container network)."""
    check_loopback(host, allow_non_loopback=allow_non_loopback)
    key = load_signing_key(Path(signing_key_file).read_bytes()) if signing_key_file is not None else None
    config = replace(
        _clients_config(clients_file),
        issuer=issuer,
        expires_in=expires_in,
        include_expires_in=include_expires_in,
        signing_key=key,
    )

    async def start() -> DevStack:
        return await start_dev_stack(
            host,
            port,
            config=config,
            client_secret=client_secret,
            with_sample_api=with_sample_api,
            allow_non_loopback=allow_non_loopback,
        )

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_until_stopped(start, on_ready))


def _clients_config(clients_file: str | Path | None) -> DevIdpConfig:
    """A config with the clients file's clients; every problem with the file is a ``ConfigError`` (exit 2 in
    the CLI), including the ones only found once the clients are put together (duplicate ids)."""
    if clients_file is None:
        return DevIdpConfig()
    prefix = f"invalid clients file {clients_file}"
    try:
        return DevIdpConfig(clients=load_clients_file(clients_file))
    except ConfigError:
        raise
    except UnicodeDecodeError as exc:
        raise ConfigError("the file is not UTF-8 text", prefix=prefix) from exc
    except ValueError as exc:
        raise ConfigError([FieldError("clients", str(exc))], prefix=prefix) from exc


def run_sample_api(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    issuer: str,
    jwks_url: str,
    audience: str = DEFAULT_AUDIENCE,
    allow_non_loopback: bool = False,
    on_ready: Callable[[SampleApi], None] = print_sample_api_banner,
) -> None:
    """Serve the sample API alone until SIGINT/SIGTERM (blocking); see :func:`start_sample_api`. Raises
    :class:`NonLoopbackError` for a non-loopback ``host`` before binding anything."""
    check_loopback(host, allow_non_loopback=allow_non_loopback, what="the sample API")

    async def start() -> SampleApi:
        return await start_sample_api(
            host, port, issuer=issuer, jwks_url=jwks_url, audience=audience, allow_non_loopback=allow_non_loopback
        )

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_until_stopped(start, on_ready))


async def _serve_until_stopped(start: Callable[[], Awaitable[_Running]], on_ready: Callable[[_Running], None]) -> None:
    """Start, report, wait for SIGINT/SIGTERM, close: the shared shape of both CLI entry points."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    if sys.platform != "win32":
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
    running = await start()
    try:
        on_ready(running)
        await stop.wait()
    finally:
        await running.close()
