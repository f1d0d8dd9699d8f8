"""Helpers for the packaging checks: where things are, and importing the tools."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "tokenrelay"


def require(module: str) -> Any:
    """Import a packaging tool; in CI a missing tool is a failure, elsewhere a loud skip."""
    try:
        return __import__(module)
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"{module} is not installed: run scripts/test (it installs the packaging tools)")


Rendered = dict[str, list[dict[str, Any]]]


def values_file(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict)
    return loaded
