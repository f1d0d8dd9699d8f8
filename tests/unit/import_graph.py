"""What a source file imports from tokenrelay, for the layering tests of each package (grant, tokens, proxy)."""

from __future__ import annotations

import ast
from pathlib import Path


def tokenrelay_imports(path: Path) -> set[str]:
    """Every ``tokenrelay`` module ``path`` imports, wherever the statement stands.

    Imports under ``if TYPE_CHECKING:`` and inside functions count: a type-only import is still a dependency a
    reader must follow, and a lazy one is still a cycle waiting to happen.
    """
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "tokenrelay")
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            module = node.module or ""
            if module.split(".")[0] == "tokenrelay":
                found.add(module)
    return found


def within(module: str, packages: tuple[str, ...]) -> bool:
    """Whether ``module`` is one of ``packages`` or inside one of them (``a.b`` is in ``a``, ``ab`` is not)."""
    return any(module == package or module.startswith(package + ".") for package in packages)
