"""``admin.readiness``: the ``/readyz`` mode as a config key, ``startup`` by default, a typo refused at startup."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tokenrelay.config_loader import format_config_error, load_settings
from tokenrelay.grant.errors import ConfigError

WriteConfig = Callable[[str, str], Path]


def test_readiness_defaults_to_startup(write_config: WriteConfig) -> None:
    assert load_settings(write_config("relay.yaml", "admin: {port: 9901}\n")).admin.readiness == "startup"


@pytest.mark.parametrize("mode", ["startup", "strict", "lenient"])
def test_each_readiness_mode_loads_from_the_file(write_config: WriteConfig, mode: str) -> None:
    assert load_settings(write_config("relay.yaml", f"admin: {{readiness: {mode}}}\n")).admin.readiness == mode


def test_readiness_can_be_set_from_the_environment(write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    """``TOKENRELAY_ADMIN__READINESS`` overrides the file, like every nested key."""
    monkeypatch.setenv("TOKENRELAY_ADMIN__READINESS", "lenient")
    assert load_settings(write_config("relay.yaml", "admin: {readiness: strict}\n")).admin.readiness == "lenient"


def test_unknown_readiness_mode_names_the_path_and_the_allowed_modes(write_config: WriteConfig) -> None:
    """What ``check-config`` and ``serve`` print for a typo: the dotted path, then the three valid values."""
    path = write_config("relay.yaml", "admin: {readiness: strickt}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.paths == ("admin.readiness",)
    (line,) = format_config_error(caught.value).splitlines()[1:]
    assert line.strip().startswith("admin.readiness:")
    assert all(f"'{mode}'" in line for mode in ("startup", "strict", "lenient"))
