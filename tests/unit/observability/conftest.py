"""Fixtures for the observability unit tests: logging is process-global, so every test gets it back untouched."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog

_AIOHTTP_LOGGERS = ("aiohttp.access", "aiohttp.server", "aiohttp.client", "aiohttp.web", "aiohttp.internal")


@pytest.fixture(autouse=True, name="_restore_logging")
def _restore_logging_fixture() -> Iterator[None]:
    """Undo ``configure_logging``: root handlers and level, aiohttp loggers, structlog config and context."""
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
