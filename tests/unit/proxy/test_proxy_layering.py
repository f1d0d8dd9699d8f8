"""Layering of the proxy: it uses the token cache, the grant core and the configuration schema, and is used by
the application; it never reaches up into what assembles it (app, server, runtime, CLI, admin, demo, dev IdP).
Every import counts, type-only and function-local ones too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import tokenrelay.proxy
from tests.unit.import_graph import tokenrelay_imports, within

PROXY = Path(tokenrelay.proxy.__file__).parent
#: The modules that assemble or drive the proxy; importing one from ``proxy/`` would make the arrows point up.
ABOVE = (
    "tokenrelay.app",
    "tokenrelay.server",
    "tokenrelay.runtime",
    "tokenrelay.reload",
    "tokenrelay.cli",
    "tokenrelay.admin",
    "tokenrelay.demo",
    "tokenrelay.devidp",
    "tokenrelay.config_loader",
    "tokenrelay.secrets",
    "tokenrelay.__main__",
)


@pytest.mark.parametrize("path", sorted(PROXY.glob("*.py")), ids=lambda p: p.name)
def test_the_proxy_does_not_import_what_assembles_it(path: Path) -> None:
    upward = sorted(module for module in tokenrelay_imports(path) if within(module, ABOVE))
    assert upward == [], f"{path.name} imports {upward}"


def test_the_rule_sees_lazy_imports(tmp_path: Path) -> None:
    """The checker itself: an import inside a function is found (so the rule above can fail)."""
    module = tmp_path / "m.py"
    module.write_text("def f() -> None:\n    import tokenrelay.runtime\n")
    assert tokenrelay_imports(module) == {"tokenrelay.runtime"}
