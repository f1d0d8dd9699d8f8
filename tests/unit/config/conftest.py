"""Fixtures for the config tests: a clean ``TOKENRELAY_*`` environment and a config-file writer."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

WriteConfig = Callable[[str, str], Path]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees a ``TOKENRELAY_*`` variable it did not set itself."""
    for name in list(os.environ):
        if name.upper().startswith("TOKENRELAY_"):
            monkeypatch.delenv(name)


@pytest.fixture(name="write_config")
def _write_config(tmp_path: Path) -> WriteConfig:
    """Write ``text`` to ``tmp_path/name`` and return the path."""

    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write
