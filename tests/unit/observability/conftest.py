"""Fixtures for the observability unit tests: logging is process-global, so every test gets it back untouched."""

from __future__ import annotations

from tests.shared_fixtures import restore_logging as restore_logging  # autouse: undo configure_logging
