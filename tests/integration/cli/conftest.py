"""Fixtures for the CLI tests: the command as a subprocess, a counting token endpoint and an echoing upstream."""

from __future__ import annotations

import os

import pytest

# Fixtures, registered here by importing them (see tests/shared_fixtures.py).
from tests.integration.runtime.runtime_support import echo_upstream as echo_upstream
from tests.integration.runtime.runtime_support import fake_idp as fake_idp


@pytest.fixture(name="cli_env")
def _cli_env() -> dict[str, str]:
    """The subprocess environment: ours without any ``TOKENRELAY_*`` variable, plus unbuffered output."""
    env = {name: value for name, value in os.environ.items() if not name.upper().startswith("TOKENRELAY_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env
