"""The README's "every key, with its default" block stays true: every key is there, every default is the code's.

The block is documentation people copy from; a key added to the settings without a README line, or a default
changed in code but not in the README, fails here instead of misleading a reader.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from tokenrelay.settings import (
    AccessSettings,
    AdminSettings,
    ListenSettings,
    LogSettings,
    ProfileSettings,
    RouteSettings,
    ServerSettings,
)

README = Path(__file__).resolve().parents[3] / "README.md"


def _reference() -> dict[str, Any]:
    text = README.read_text(encoding="utf-8")
    found = re.search(r"Every key, with its default:\n\n```yaml\n(.*?)\n```", text, re.DOTALL)
    assert found is not None, "README.md lost its configuration reference block"
    loaded = yaml.safe_load(found.group(1))
    assert isinstance(loaded, dict)
    return loaded


REFERENCE = _reference()
SECTIONS: dict[str, type[BaseModel]] = {
    "listen": ListenSettings,
    "admin": AdminSettings,
    "access": AccessSettings,
    "log": LogSettings,
    "server": ServerSettings,
}


@pytest.mark.parametrize("section", SECTIONS)
def test_every_key_of_a_section_is_documented(section: str) -> None:
    assert set(REFERENCE[section]) == set(SECTIONS[section].model_fields)


@pytest.mark.parametrize("section", SECTIONS)
def test_every_documented_default_is_the_codes(section: str) -> None:
    model = SECTIONS[section]
    assert model.model_validate(REFERENCE[section]) == model()


def test_every_profile_key_is_documented() -> None:
    (profile,) = REFERENCE["profiles"].values()
    assert set(profile) == set(ProfileSettings.model_fields)


def test_every_route_key_is_documented_with_the_codes_defaults() -> None:
    (route,) = REFERENCE["routes"]
    assert set(route) == set(RouteSettings.model_fields)
    documented = RouteSettings.model_validate(route | {"match": {"path_prefix": "/"}, "profile": None})
    defaults = RouteSettings.model_validate(
        {"name": route["name"], "match": {"path_prefix": "/"}, "upstream": route["upstream"], "profile": None}
    )
    assert documented == defaults


@pytest.mark.parametrize("key", ["refresh_before_expiry", "default_expires_in", "prefetch", "scope", "resource"])
def test_documented_profile_defaults_are_the_codes(key: str) -> None:
    (profile,) = REFERENCE["profiles"].values()
    minimal = {"client": {"id": "c", "secret": "s"}, "auth": {"token_host": "https://idp.example"}}
    documented = ProfileSettings.model_validate(minimal | {key: profile[key]}).model_dump()[key]
    assert documented == ProfileSettings.model_fields[key].get_default(call_default_factory=True)
