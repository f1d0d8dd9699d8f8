"""Fixtures for the runtime tests: a clean environment, a counting token endpoint, an echoing upstream."""

from __future__ import annotations

# Fixtures, registered here by importing them (see tests/shared_fixtures.py).
from tests.integration.runtime.runtime_support import echo_upstream as echo_upstream
from tests.integration.runtime.runtime_support import fake_idp as fake_idp
from tests.shared_fixtures import clean_environment as clean_environment
