"""Layering of the token cache: it sits between the proxy and the grant core and knows neither the proxy nor the
application (settings, metrics, logging set-up, runtime) above it. Every import counts, type-only ones too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import tokenrelay.tokens
from tests.unit.import_graph import tokenrelay_imports, within

TOKENS = Path(tokenrelay.tokens.__file__).parent
#: What the cache may build on: itself, the grant core, and the leaf helper that fingerprints credentials.
ALLOWED = ("tokenrelay.tokens", "tokenrelay.grant", "tokenrelay.fingerprints")


@pytest.mark.parametrize("path", sorted(TOKENS.glob("*.py")), ids=lambda p: p.name)
def test_the_cache_imports_only_itself_the_grant_core_and_fingerprints(path: Path) -> None:
    outside = sorted(module for module in tokenrelay_imports(path) if not within(module, ALLOWED))
    assert outside == [], f"{path.name} imports {outside}"


def test_the_rule_sees_imports_under_type_checking(tmp_path: Path) -> None:
    """The checker itself: a type-only import of the settings is found (so the rule above can fail)."""
    module = tmp_path / "m.py"
    module.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from tokenrelay.settings import X\n")
    assert tokenrelay_imports(module) == {"tokenrelay.settings"}
