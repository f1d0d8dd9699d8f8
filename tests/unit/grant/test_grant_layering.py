"""Layering rules of the grant core that a reviewer would otherwise have to re-check by hand."""

from __future__ import annotations

import ast
from pathlib import Path

import tokenrelay.grant
from tests.unit.import_graph import tokenrelay_imports, within

GRANT = Path(tokenrelay.grant.__file__).parent


def _runtime_imports(path: Path) -> set[str]:
    """Top-level modules imported at runtime (imports under ``if TYPE_CHECKING:`` are left out)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module.split(".")[0] if node.level == 0 else node.module)
            if node.module.startswith("tokenrelay."):
                found.add(node.module)
    return found


def test_only_transport_imports_aiohttp() -> None:
    importers = sorted(p.name for p in GRANT.glob("*.py") if "aiohttp" in _runtime_imports(p))
    assert importers == ["transport.py"]


def test_the_grant_core_knows_nothing_of_the_proxy_or_the_cache() -> None:
    for path in GRANT.glob("*.py"):
        imports = _runtime_imports(path)
        assert not any(name.startswith(("tokenrelay.proxy", "tokenrelay.tokens")) for name in imports), path.name


def test_the_grant_core_knows_nothing_of_the_application_above_it() -> None:
    """Only itself and the leaf ``fingerprints`` helper: no settings, metrics, logging set-up, runtime, CLI."""
    for path in GRANT.glob("*.py"):
        allowed = ("tokenrelay.grant", "tokenrelay.fingerprints")
        outside = {module for module in tokenrelay_imports(path) if not within(module, allowed)}
        assert not outside, (path.name, outside)
