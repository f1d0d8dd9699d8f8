"""Fixtures that several test folders need, written once and registered only where they are imported.

A conftest (or test module) that imports one of these registers it as if it were written there: same name, same
scope, autouse or not. The folders that do not import it are unaffected, which is why these do not live in the
root ``conftest.py``: an autouse fixture there would reach every test of the suite.

Import them with a redundant alias (``import clean_environment as clean_environment``): the name is used by pytest,
not by the importing module, and the alias tells linters the import is meant.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest
import structlog

#: aiohttp's loggers that ``configure_logging`` routes through structlog (levels changed, some disabled).
_AIOHTTP_LOGGERS = ("aiohttp.access", "aiohttp.server", "aiohttp.client", "aiohttp.web", "aiohttp.internal")


@pytest.fixture(autouse=True, name="_clean_environment")
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``TOKENRELAY_*`` variable from the outside (``TOKENRELAY_ADMIN__READINESS``!) changes what is loaded."""
    for name in list(os.environ):
        if name.upper().startswith("TOKENRELAY_"):
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True, name="_restore_logging")
def restore_logging() -> Iterator[None]:
    """Undo ``configure_logging``: root handlers and level, aiohttp loggers, structlog config and context.

    Logging is process-global, so a test that configures it would otherwise change what every later test sees.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    saved = {name: (logging.getLogger(name).level, logging.getLogger(name).disabled) for name in _AIOHTTP_LOGGERS}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, (saved_level, disabled) in saved.items():
        logging.getLogger(name).setLevel(saved_level)
        logging.getLogger(name).disabled = disabled
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
