"""examples/gateway: Helm values for an egress gateway. tests/deploy/test_helm_chart.py already lints and
schema-validates every ``examples/**/values*.yaml``; here: the config the chart renders from these values passes
``check-config``, and the values keep the promises of the README (two profiles and upstreams, an existing Secret,
NetworkPolicy on)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.deploy.helpers import CHART, require
from tests.examples.support import EXAMPLES, CheckResult, check_config, load_yaml, with_local_secret_files

VALUES = EXAMPLES / "gateway" / "values.yaml"
Rendered = dict[str, list[dict[str, Any]]]


@functools.cache
def _rendered() -> Rendered:
    helm_python = require("helm_python")
    files = helm_python.Chart.load(str(CHART)).render(load_yaml(VALUES), name="egress", namespace="egress")
    out: Rendered = {}
    for path, text in files.items():
        if not path.endswith("NOTES.txt"):
            for doc in yaml.safe_load_all(text):
                if doc:
                    out.setdefault(doc["kind"], []).append(doc)
    return out


def _rendered_config() -> dict[str, Any]:
    loaded = yaml.safe_load(_rendered()["ConfigMap"][0]["data"]["config.yaml"])
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> CheckResult:
    directory = tmp_path_factory.mktemp("gateway")
    return check_config(with_local_secret_files(_rendered_config(), directory))


def test_gateway_rendered_config_passes_check_config(checked: CheckResult) -> None:
    assert checked.returncode == 0, checked.stderr
    assert checked.config["listen"]["host"] == "0.0.0.0"


def test_gateway_has_two_profiles_and_two_upstreams(checked: CheckResult) -> None:
    config = checked.config
    assert len(config["profiles"]) == 2
    assert {route["profile"] for route in config["routes"]} == set(config["profiles"])
    assert len({urlsplit(route["upstream"]).hostname for route in config["routes"]}) == 2


def test_gateway_secrets_come_from_an_existing_secret_mounted_as_files() -> None:
    values = load_yaml(VALUES)
    assert values["secrets"]["existingSecret"]
    assert not values["secrets"].get("create")
    assert "Secret" not in _rendered()
    (deployment,) = _rendered()["Deployment"]
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["client-secrets"]["secret"]["secretName"] == values["secrets"]["existingSecret"]
    for profile in values["config"]["profiles"].values():
        assert set(profile["client"]) == {"id", "secret_file"}
        assert Path(profile["client"]["secret_file"]).parent == Path("/var/run/secrets/tokenrelay")


def test_gateway_network_policy_is_on_and_admits_only_labelled_clients() -> None:
    (policy,) = _rendered()["NetworkPolicy"]
    proxy_rule = policy["spec"]["ingress"][0]
    assert proxy_rule["ports"] == [{"port": "proxy", "protocol": "TCP"}]
    (source,) = proxy_rule["from"]
    assert source["podSelector"]["matchLabels"]
    assert source["namespaceSelector"]["matchLabels"]


def test_gateway_access_policy_does_not_rely_on_open(checked: CheckResult) -> None:
    # allow_clients is enforced by tokenrelay itself (proxy and admin listener), whatever the cluster's CNI does.
    assert checked.config["access"]["open"] is False
    assert checked.config["access"]["allow_clients"]
