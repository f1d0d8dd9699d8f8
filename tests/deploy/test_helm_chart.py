"""The Helm chart, rendered by Helm's own engine, linted strictly and validated against Kubernetes schemas."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.helpers import CHART, REPO, Rendered, require, values_file
from tokenrelay.settings import Settings

KUBE_VERSIONS = ("1.29.0", "1.33.0")
VALUES_FILES = sorted(CHART.glob("ci/*.yaml")) + sorted(REPO.glob("examples/**/values*.yaml"))
Render = Callable[[dict[str, Any]], Rendered]


def _container(rendered: Rendered) -> dict[str, Any]:
    (deployment,) = rendered["Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def _values_id(path: Path) -> str:
    return str(path.relative_to(REPO))


@pytest.mark.parametrize("values_path", [None, *VALUES_FILES], ids=lambda p: "defaults" if p is None else _values_id(p))
def test_chart_passes_strict_lint(values_path: Path | None) -> None:
    helm_python = require("helm_python")
    values = values_file(values_path) if values_path else {}
    result = helm_python.lint(str(CHART), values, strict=True)
    problems = [m for m in result["messages"] if m["severity"] > 1]  # 1 = INFO
    assert result["errors"] == []
    assert problems == []


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("values_path", [None, *VALUES_FILES], ids=lambda p: "defaults" if p is None else _values_id(p))
def test_every_manifest_validates_against_kubernetes_schemas(
    render: Render, values_path: Path | None, kube_version: str
) -> None:
    kubernetes_validate = require("kubernetes_validate")
    rendered = render(values_file(values_path) if values_path else {})
    checked = 0
    for kind, docs in rendered.items():
        if kind in ("NOTES", "ServiceMonitor"):  # a CRD: no schema in the Kubernetes set
            continue
        for doc in docs:
            kubernetes_validate.validate(doc, kube_version, strict=True)
            checked += 1
    assert checked >= 5


def test_pod_runs_non_root_with_read_only_root_and_no_capabilities(render: Render) -> None:
    rendered = render({})
    pod = rendered["Deployment"][0]["spec"]["template"]["spec"]
    container = _container(rendered)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    ctx = container["securityContext"]
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert "/tmp" in mounts  # the only writable place


def test_probes_hit_the_admin_port(render: Render) -> None:
    container = _container(render({}))
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"proxy": 8080, "admin": 9901}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}


def test_config_map_holds_a_valid_tokenrelay_config_listening_on_the_pod(render: Render) -> None:
    values = values_file(CHART / "ci" / "full-values.yaml")
    rendered = render(values)
    config = yaml.safe_load(rendered["ConfigMap"][0]["data"]["config.yaml"])
    assert config["listen"] == {"host": "0.0.0.0", "port": 8080}
    assert config["admin"] == {"host": "0.0.0.0", "port": 9901}
    settings = Settings.model_validate(config)
    assert [r.name for r in settings.routes] == ["billing"]
    assert _container(rendered)["args"] == ["serve", "--config", "/etc/tokenrelay/config.yaml"]


def test_client_secrets_are_mounted_as_files_not_env(render: Render) -> None:
    rendered = render(values_file(CHART / "ci" / "full-values.yaml"))
    container = _container(rendered)
    (secret,) = rendered["Secret"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["client-secrets"]["mountPath"] == "/var/run/secrets/tokenrelay"
    volumes = {v["name"]: v for v in rendered["Deployment"][0]["spec"]["template"]["spec"]["volumes"]}
    assert volumes["client-secrets"]["secret"]["secretName"] == secret["metadata"]["name"]
    assert "env" not in container
    assert "not-a-real-secret" not in rendered["ConfigMap"][0]["data"]["config.yaml"]


def test_existing_secret_is_mounted_and_no_secret_is_created(render: Render) -> None:
    rendered = render({"secrets": {"existingSecret": "my-idp-creds"}})
    assert "Secret" not in rendered
    volumes = {v["name"]: v for v in rendered["Deployment"][0]["spec"]["template"]["spec"]["volumes"]}
    assert volumes["client-secrets"]["secret"]["secretName"] == "my-idp-creds"


def test_config_change_rolls_the_pods(render: Render) -> None:
    def checksum(values: dict[str, Any]) -> str:
        annotations = render(values)["Deployment"][0]["spec"]["template"]["metadata"]["annotations"]
        return str(annotations["checksum/config"])

    base = checksum({})
    assert checksum({}) == base
    assert checksum({"config": {"log": {"level": "debug"}}}) != base


def test_network_policy_admits_only_labelled_clients_to_the_proxy_port(render: Render) -> None:
    (policy,) = render({})["NetworkPolicy"]
    proxy_rule = policy["spec"]["ingress"][0]
    assert proxy_rule["ports"] == [{"port": "proxy", "protocol": "TCP"}]
    assert proxy_rule["from"][0]["podSelector"] == {"matchLabels": {"tokenrelay.io/client": "true"}}
    assert "NetworkPolicy" not in render({"networkPolicy": {"enabled": False}})


def test_open_access_without_network_policy_warns_in_notes(render: Render) -> None:
    notes = render({"networkPolicy": {"enabled": False}})["NOTES"][0]["text"]
    assert "WARNING" in notes
    assert "WARNING" not in render({})["NOTES"][0]["text"]


def test_autoscaling_replaces_the_fixed_replica_count(render: Render) -> None:
    rendered = render({"autoscaling": {"enabled": True}})
    assert "replicas" not in rendered["Deployment"][0]["spec"]
    assert rendered["HorizontalPodAutoscaler"][0]["spec"]["maxReplicas"] == 10
    assert render({})["Deployment"][0]["spec"]["replicas"] == 2


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"service": {"port": "eighty"}}, "/service/port"),
        ({"config": {"listen": {"port": 1}}}, "'listen' not allowed"),
        ({"config": {"profiles": {"a": {"client": {"id": "x", "secret": "inline"}, "auth": {}}}}}, "client/secret"),
        ({"config": {"routes": [{"name": "r", "match": {}, "upstream": "http://u", "profile": None}]}}, "match"),
        ({"securityContext": {"allowPrivilegeEscalation": True}}, "allowPrivilegeEscalation"),
        ({"unknownKey": 1}, "'unknownKey' not allowed"),
    ],
)
def test_bad_values_are_rejected_by_the_schema(render: Render, values: dict[str, Any], complaint: str) -> None:
    with pytest.raises(Exception, match="schema") as raised:
        render(values)
    assert complaint in str(raised.value)
