"""docs/configuration.md documents every settings key, so the reference cannot silently fall behind the schema."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from tokenrelay.settings import ProfileSettings, RouteSettings, Settings

DOC = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"


def leaf_paths(model: type[BaseModel], prefix: str) -> list[str]:
    """Dotted paths of every field, descending into nested sections."""
    paths = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            paths.extend(leaf_paths(annotation, f"{prefix}{name}."))
        else:
            paths.append(f"{prefix}{name}")
    return paths


def test_every_section_key_is_documented() -> None:
    """Each ``listen``/``admin``/``access``/``log``/``server`` key appears by its full path."""
    text = DOC.read_text(encoding="utf-8")
    keys = [path for path in leaf_paths(Settings, "") if path.split(".")[0] not in ("profiles", "routes")]
    missing = [path for path in keys if f"`{path}`" not in text]
    assert keys
    assert missing == []


def test_every_route_key_is_documented() -> None:
    """Each ``routes[]`` key (nested ones included) appears in the reference."""
    text = DOC.read_text(encoding="utf-8")
    missing = [path for path in leaf_paths(RouteSettings, "routes[].") if path not in text]
    assert missing == []


def test_every_profile_key_is_documented() -> None:
    """Each profile-level key appears as ``profiles.<name>.<key>``."""
    text = DOC.read_text(encoding="utf-8")
    missing = [key for key in ProfileSettings.model_fields if f"profiles.<name>.{key}" not in text]
    assert missing == []
