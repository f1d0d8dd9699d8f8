"""Serving: both listeners, signals, and a graceful drain with a deadline (after uvicorn's ``Server``).

``serve`` runs startup (compile, bind), then waits for SIGTERM/SIGINT, then shuts down in this order: ``/readyz``
starts answering 503 ``draining`` (so a load balancer stops sending traffic), the proxy listener stops accepting,
requests in flight get up to ``server.shutdown_grace`` to finish (aiohttp's runner cancels what remains, and we log
how many requests that cut), the services close (pools, cache), and the admin listener goes last so ``/healthz``
answers while the proxy drains. A second signal during the drain skips the rest of the grace period. ``run`` is the
blocking entry point the CLI uses; uvloop is used when it is installed (the ``speed`` extra).

The proxy listener is aiohttp's low-level ``web.Server`` (:func:`~tokenrelay.app.create_proxy_server`), not an
``Application``: a catch-all router and middleware would add per-request work for nothing (see
``docs/performance.md``). The services live in :func:`~tokenrelay.app.proxy_services` around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import signal
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import structlog
from aiohttp import web

from tokenrelay.app import InFlight, Services, create_admin_listener_app, create_proxy_server, proxy_services
from tokenrelay.config_loader import exposure_problems
from tokenrelay.grant.errors import ConfigError
from tokenrelay.heap import freeze_startup_heap
from tokenrelay.settings import Settings

__all__ = ["EXIT_OK", "EXIT_STARTUP", "Listening", "StartupError", "run", "serve"]

EXIT_OK: Final = 0
#: Startup failed for a reason other than the configuration (e.g. the port is taken).
EXIT_STARTUP: Final = 3

_log: Final = structlog.get_logger("tokenrelay.server")
_SIGNALS: Final = (signal.SIGTERM, signal.SIGINT)


class StartupError(Exception):
    """A listener could not be started (address in use, permission denied)."""


@dataclass(frozen=True, slots=True)
class Listening:
    """Where the listeners are bound (ports resolved when 0 was asked for)."""

    proxy: tuple[str, int]
    admin: tuple[str, int] | None


def run(settings: Settings, *, config_path: Path | None = None, flags: Mapping[str, Any] | None = None) -> int:
    """Serve until SIGTERM/SIGINT (blocking); returns the exit status. Raises ``ConfigError``/``StartupError``."""
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(serve(settings, config_path=config_path, flags=flags, freeze_heap=True))
    return EXIT_OK


async def serve(
    settings: Settings,
    *,
    config_path: Path | None = None,
    flags: Mapping[str, Any] | None = None,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[Listening], None] | None = None,
    freeze_heap: bool = False,
) -> None:
    """Start both listeners, wait for ``stop`` (or SIGTERM/SIGINT), then drain and close.

    Signals are captured from the start, so a SIGTERM during startup still ends in an orderly shutdown. Raises
    ``ConfigError`` before anything is created or bound when a listener would be exposed beyond loopback without
    an access policy: ``load_settings`` checks that for the CLI, but embedding code may build its settings itself.

    ``freeze_heap`` excludes what startup left from the garbage collector's walks once the listeners are up
    (:func:`tokenrelay.heap.freeze_startup_heap`): ``run`` sets it, as the process is then tokenrelay's own; code
    that embeds ``serve`` in a process of its own decides for that process.
    """
    problems = exposure_problems(settings)
    if problems:
        raise ConfigError(problems)
    stop = stop or asyncio.Event()
    force = asyncio.Event()
    grace = settings.server.shutdown_grace
    admin_runner: web.AppRunner | None = None
    with _captured_signals(stop, force):
        try:
            async with proxy_services(settings, config_path=config_path, flags=flags) as services:
                proxy_runner = web.ServerRunner(create_proxy_server(services, access_log=None), shutdown_timeout=grace)
                await proxy_runner.setup()
                try:
                    admin_runner = await _admin_runner(services, settings)
                    listening = await _start_sites(settings, proxy_runner, admin_runner)
                    services.reloader.start()
                    services.holder.prefetch(services.holder.current)
                    frozen = freeze_startup_heap() if freeze_heap else None
                    proxy, admin = _url(listening.proxy), _url(listening.admin)
                    _log.info("serving", proxy=proxy, admin=admin, frozen_objects=frozen)
                    if on_ready is not None:
                        on_ready(listening)
                    await stop.wait()
                    await _drain(proxy_runner, services.in_flight, grace, force)
                finally:
                    if proxy_runner.server is not None:  # not drained: startup failed after setup
                        await proxy_runner.cleanup()
            # the services are closed here (pools, cache); the admin listener goes last
        finally:
            if admin_runner is not None:
                await admin_runner.cleanup()
    _log.info("stopped")


async def _admin_runner(services: Services, settings: Settings) -> web.AppRunner | None:
    if not settings.admin.enabled:
        return None
    runner = web.AppRunner(create_admin_listener_app(services, settings), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    return runner


async def _start_sites(
    settings: Settings, proxy_runner: web.BaseRunner, admin_runner: web.AppRunner | None
) -> Listening:
    proxy_site = web.TCPSite(proxy_runner, settings.listen.host, settings.listen.port)
    proxy = await _start(proxy_site, "listen")
    admin = None
    if admin_runner is not None:
        admin = await _start(web.TCPSite(admin_runner, settings.admin.host, settings.admin.port), "admin")
    return Listening(proxy=proxy, admin=admin)


async def _start(site: web.TCPSite, section: str) -> tuple[str, int]:
    try:
        await site.start()
    except OSError as exc:
        raise StartupError(f"cannot listen on {site.name} ({section}.host/{section}.port): {exc.strerror}") from exc
    server = site._server
    sockets = getattr(server, "sockets", None) or ()
    host, port = sockets[0].getsockname()[:2] if sockets else ("?", 0)
    return str(host), int(port)


async def _drain(proxy_runner: web.BaseRunner, in_flight: InFlight, grace: float, force: asyncio.Event) -> None:
    """Stop accepting and let requests in flight finish, within ``grace`` or until a second signal.

    aiohttp's runner closes the listener, closes idle keep-alive connections, waits up to ``grace`` for the
    handlers and cancels the rest; alongside it we watch the in-flight count to log what the deadline cut.
    """
    in_flight.start_draining()  # readiness fails first, before anything closes
    _log.info("shutdown_started", grace=grace, in_flight=in_flight.count)
    cleanup = asyncio.create_task(proxy_runner.cleanup())
    forced = asyncio.create_task(force.wait())
    idle = asyncio.create_task(in_flight.wait_idle())
    await asyncio.wait({idle, forced}, timeout=grace, return_when=asyncio.FIRST_COMPLETED)
    if in_flight.count:
        _log.warning("shutdown_cancelling", in_flight=in_flight.count, forced=force.is_set())
    if force.is_set():
        cleanup.cancel()
    await asyncio.wait({cleanup})
    for task in (forced, idle):
        task.cancel()
    if not cleanup.cancelled():
        cleanup.result()  # a failure while closing the listener is not swallowed
    _log.info("shutdown_drained")


@contextlib.contextmanager
def _captured_signals(stop: asyncio.Event, force: asyncio.Event) -> Iterator[None]:
    """SIGTERM/SIGINT set ``stop``; a second one sets ``force``. Handlers are removed afterwards."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []

    def on_signal(signum: signal.Signals) -> None:
        if stop.is_set():
            force.set()
        else:
            _log.info("signal_received", signal=signum.name)
            stop.set()

    if sys.platform != "win32":
        for signum in _SIGNALS:
            with contextlib.suppress(RuntimeError, ValueError):
                loop.add_signal_handler(signum, on_signal, signum)
                installed.append(signum)
    try:
        yield
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        uvloop = importlib.import_module("uvloop")  # optional speed-up (the ``speed`` extra)
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def _url(address: tuple[str, int] | None) -> str | None:
    if address is None:
        return None
    host, port = address
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
