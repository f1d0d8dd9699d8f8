"""examples/local-dev: the laptop configs pass ``check-config``, listen on loopback only, and keep secrets out."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from tests.examples.support import EXAMPLES, CheckResult, check_config, load_yaml

LOCAL_DEV = EXAMPLES / "local-dev"
CONFIGS = sorted(LOCAL_DEV.glob("*.yaml"))
SECRETS = {"BILLING_CLIENT_SECRET": "billing-stand-in-secret", "CRM_CLIENT_SECRET": "crm-stand-in-secret"}


@functools.cache
def _checked(path: Path) -> CheckResult:
    """``check-config`` with the secrets set, once per file (a subprocess each)."""
    return check_config(path, SECRETS)


def test_local_dev_has_the_two_documented_configs() -> None:
    assert [p.name for p in CONFIGS] == ["http-proxy.yaml", "tokenrelay.yaml"]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_local_dev_config_passes_check_config(path: Path) -> None:
    result = _checked(path)
    assert result.returncode == 0, result.stderr
    assert result.config["routes"]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_local_dev_listeners_are_loopback_only(path: Path) -> None:
    config = _checked(path).config
    assert config["listen"]["host"] == "127.0.0.1"
    assert config["admin"]["host"] == "127.0.0.1"
    assert config["access"]["open"] is False


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_local_dev_secrets_come_from_the_environment_not_the_file(path: Path) -> None:
    for profile in load_yaml(path)["profiles"].values():
        assert set(profile["client"]) == {"id", "secret_env"}
    result = _checked(path)
    assert not any(secret in result.stdout + result.stderr for secret in SECRETS.values())


def test_local_dev_config_without_its_secret_variable_is_refused_with_the_field_path() -> None:
    result = check_config(LOCAL_DEV / "tokenrelay.yaml", {"BILLING_CLIENT_SECRET": "x"})
    assert result.returncode == 2
    assert "profiles.crm.client.secret_env" in result.stderr


def test_http_proxy_config_matches_upstream_hosts_so_absolute_form_requests_are_routed() -> None:
    # Forward-proxy (HTTP_PROXY) requests only match routes that name a host.
    routes = _checked(LOCAL_DEV / "http-proxy.yaml").config["routes"]
    for route in routes:
        assert route["match"]["host"]
        assert route["upstream"] == f"https://{route['match']['host']}/"
