"""The chart's one user-settable admin key, ``config.admin.readiness``: carried into the ConfigMap, nothing else.

The chart owns the admin listener's address (the probes and the Service point at it), so the helper rebuilds
``admin`` from ``service.adminPort`` and carries ``readiness`` over; the schema refuses every other admin key.
Rendered with Helm's own engine (the ``render`` fixture), skipped where the Helm SDK is missing, except in CI.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml

from tests.deploy.helpers import CHART, Rendered, require
from tokenrelay.settings import Settings

Render = Callable[[dict[str, Any]], Rendered]


def _config(rendered: Rendered) -> dict[str, Any]:
    (config_map,) = rendered["ConfigMap"]
    config = yaml.safe_load(config_map["data"]["config.yaml"])
    assert isinstance(config, dict)
    return config


@pytest.mark.parametrize("mode", ["startup", "strict", "lenient"])
def test_readiness_is_carried_into_the_config_map(render: Render, mode: str) -> None:
    config = _config(render({"config": {"admin": {"readiness": mode}}}))
    assert config["admin"]["readiness"] == mode
    assert Settings.model_validate(config).admin.readiness == mode


def test_admin_address_stays_the_charts_when_readiness_is_set(render: Render) -> None:
    config = _config(
        render({"config": {"admin": {"readiness": "lenient"}}, "service": {"port": 8080, "adminPort": 9555}})
    )
    assert config["admin"] == {"host": "0.0.0.0", "port": 9555, "readiness": "lenient"}
    assert config["listen"] == {"host": "0.0.0.0", "port": 8080}


@pytest.mark.parametrize("values", [{}, {"config": {"admin": {}}}], ids=["no-admin", "empty-admin"])
def test_without_readiness_the_admin_section_is_only_the_address(render: Render, values: dict[str, Any]) -> None:
    """No ``readiness`` key is invented: the tokenrelay default (``startup``) applies."""
    config = _config(render(values))
    assert config["admin"] == {"host": "0.0.0.0", "port": 9901}
    assert Settings.model_validate(config).admin.readiness == "startup"


@pytest.mark.parametrize(
    ("admin", "complaint"),
    [
        ({"host": "127.0.0.1"}, "'host' not allowed"),
        ({"port": 9000}, "'port' not allowed"),
        ({"enabled": False}, "'enabled' not allowed"),
        ({"readiness": "strict", "host": "127.0.0.1"}, "'host' not allowed"),
        ({"readiness": "eventually"}, "/config/admin/readiness"),
    ],
    ids=["host", "port", "enabled", "host-beside-readiness", "unknown-mode"],
)
def test_other_admin_keys_and_unknown_modes_are_rejected_by_the_schema(
    render: Render, admin: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(Exception, match="schema") as raised:
        render({"config": {"admin": admin}})
    assert "/config/admin" in str(raised.value)
    assert complaint in str(raised.value)


def test_chart_with_readiness_passes_strict_lint() -> None:
    helm_python = require("helm_python")
    result = helm_python.lint(str(CHART), {"config": {"admin": {"readiness": "strict"}}}, strict=True)
    assert result["errors"] == []
    assert [m for m in result["messages"] if m["severity"] > 1] == []  # 1 = INFO
