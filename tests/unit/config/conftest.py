"""Fixtures for the config tests: a clean ``TOKENRELAY_*`` environment and a config-file writer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.shared_fixtures import clean_environment as clean_environment  # autouse

WriteConfig = Callable[[str, str], Path]


@pytest.fixture(name="write_config")
def _write_config(tmp_path: Path) -> WriteConfig:
    """Write ``text`` to ``tmp_path/name`` and return the path."""

    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write
