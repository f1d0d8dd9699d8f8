"""Live reconfiguration: SIGHUP, an optional config-file watch, and the credential-rotation check.

Three triggers, one path: load the file (with the same environment and flags as at startup), compile it, swap
it (``RuntimeHolder.reload``). A file that does not load or compile is logged with every bad path and the old
runtime keeps serving. The file watch and the rotation check poll ``stat`` (cheap, works on every filesystem
and through Kubernetes' symlink swaps, unlike inotify on a ConfigMap mount); their intervals are read from the
current settings on every round, so a reload can change them. An unexpected failure in one round (a bug, not a
bad file) is logged by its type (``config_reload_failed``, ``credential_check_failed``) and the loops go on: a
watch that died silently would leave a rotated secret unnoticed until the next restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import structlog

from tokenrelay.config_loader import load_settings
from tokenrelay.grant.errors import ConfigError
from tokenrelay.runtime import RuntimeHolder

__all__ = ["ReloadController"]

_log: Final = structlog.get_logger("tokenrelay.config")

_StatKey = tuple[int, int, int, int] | None


class ReloadController:
    """Runs the reload triggers for one ``RuntimeHolder``; ``start()`` then ``aclose()``."""

    def __init__(self, holder: RuntimeHolder, *, config_path: Path | None, flags: Mapping[str, Any]) -> None:
        self._holder = holder
        self._path = config_path
        self._flags = dict(flags)
        self._tasks: list[asyncio.Task[None]] = []
        self._lock = asyncio.Lock()
        self._signal_installed = False
        self._pending: set[asyncio.Task[bool]] = set()

    def start(self) -> None:
        """Install the SIGHUP handler (where the platform has one) and start the polling loops."""
        loop = asyncio.get_running_loop()
        if self._path is not None:
            with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
                loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
                self._signal_installed = True
            baseline = _stat_key(self._path)  # one stat at startup, before any change can slip past the watch
            self._tasks.append(asyncio.create_task(self._watch_config(baseline), name="tokenrelay-config-watch"))
        self._tasks.append(asyncio.create_task(self._watch_credentials(), name="tokenrelay-credential-watch"))

    async def aclose(self) -> None:
        """Remove the signal handler and stop the loops and any reload in progress."""
        if self._signal_installed:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            self._signal_installed = False
        tasks = [*self._tasks, *self._pending]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    async def reload_from_file(self) -> bool:
        """Load the config file again and swap it in; ``False`` (old config kept) when it is rejected."""
        if self._path is None:
            return False
        async with self._lock:
            try:
                settings = await asyncio.to_thread(load_settings, self._path, flags=self._flags)
            except ConfigError as exc:
                self._holder.reload_failed(exc)
                return False
            except Exception as exc:  # the old config keeps serving, the loop lives on
                _log.error("config_reload_failed", error=type(exc).__name__, path=str(self._path))
                return False
            try:
                await self._holder.reload(settings)
            except ConfigError:
                return False
            except Exception as exc:  # a bug must not end the watch loop that called us
                _log.error("config_reload_failed", error=type(exc).__name__, path=str(self._path))
                return False
            return True

    def _on_sighup(self) -> None:
        _log.info("config_reload_requested", trigger="SIGHUP", path=str(self._path))
        task = asyncio.create_task(self.reload_from_file())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _watch_config(self, last: _StatKey) -> None:
        assert self._path is not None
        while True:
            server = self._holder.current.settings.server
            await asyncio.sleep(server.watch_interval)
            if not server.watch_config:
                continue
            current = await asyncio.to_thread(_stat_key, self._path)
            if current != last and current is not None:
                last = current
                _log.info("config_reload_requested", trigger="file_changed", path=str(self._path))
                await self.reload_from_file()

    async def _watch_credentials(self) -> None:
        while True:
            await asyncio.sleep(self._holder.current.settings.server.secret_check_interval)
            async with self._lock:
                try:
                    await self._holder.check_rotation()
                except Exception as exc:  # one bad round must not end rotation checks
                    _log.error("credential_check_failed", error=type(exc).__name__)


def _stat_key(path: Path) -> _StatKey:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
