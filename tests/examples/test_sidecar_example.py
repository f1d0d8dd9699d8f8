"""examples/sidecar: a valid Kubernetes manifest whose tokenrelay container is hardened, loopback-only, and reads
its client secret from a mounted Secret; the config it carries passes ``check-config`` as the container sees it."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.deploy.helpers import require
from tests.examples.support import (
    EXAMPLES,
    CheckResult,
    check_config,
    image_env_and_cmd,
    load_yaml,
    with_local_secret_files,
)
from tokenrelay.cli import build_parser

SIDECAR = EXAMPLES / "sidecar"
KUBE_VERSIONS = ("1.29.0", "1.33.0")
PROBES = ("startupProbe", "livenessProbe", "readinessProbe")


def _documents() -> dict[str, dict[str, Any]]:
    docs = [doc for doc in yaml.safe_load_all((SIDECAR / "deployment.yaml").read_text()) if doc]
    by_kind = {doc["kind"]: doc for doc in docs}
    assert len(by_kind) == len(docs), "one document of each kind"
    return by_kind


def _pod() -> dict[str, Any]:
    pod: dict[str, Any] = _documents()["Deployment"]["spec"]["template"]["spec"]
    return pod


def _tokenrelay() -> dict[str, Any]:
    containers: list[dict[str, Any]] = [c for c in _pod()["initContainers"] if c["name"] == "tokenrelay"]
    (container,) = containers
    return container


def _container_env() -> dict[str, str]:
    return {item["name"]: item["value"] for item in _tokenrelay().get("env", [])}


def _checked_as_in_the_container(directory: Path) -> CheckResult:
    """``check-config`` with what the container's process sees: the image's ENV, then the pod's env on top."""
    image_env, _ = image_env_and_cmd()
    env = {k: v for k, v in image_env.items() if k.startswith("TOKENRELAY_")} | _container_env()
    return check_config(with_local_secret_files(load_yaml(SIDECAR / "tokenrelay.yaml"), directory), env)


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> CheckResult:
    return _checked_as_in_the_container(tmp_path_factory.mktemp("sidecar"))


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_sidecar_manifests_validate_against_kubernetes_schemas(kube_version: str) -> None:
    kubernetes_validate = require("kubernetes_validate")
    documents = _documents()
    assert set(documents) == {"Secret", "ConfigMap", "Deployment"}
    for doc in documents.values():
        kubernetes_validate.validate(doc, kube_version, strict=True)


def test_sidecar_config_map_holds_exactly_the_config_file_next_to_it() -> None:
    assert _documents()["ConfigMap"]["data"]["config.yaml"] == (SIDECAR / "tokenrelay.yaml").read_text()


def test_sidecar_config_passes_check_config_with_the_container_environment(checked: CheckResult) -> None:
    assert checked.returncode == 0, checked.stderr
    assert [route["name"] for route in checked.config["routes"]] == ["orders"]


def test_sidecar_listeners_stay_on_the_pod_loopback_despite_the_image_defaults(checked: CheckResult) -> None:
    image_env, _ = image_env_and_cmd()
    assert image_env["TOKENRELAY_LISTEN__HOST"] == "0.0.0.0"  # what the container env must override
    assert checked.config["listen"]["host"] == "127.0.0.1"
    assert checked.config["admin"]["host"] == "127.0.0.1"
    assert "ports" not in _tokenrelay()


def test_sidecar_app_reaches_tokenrelay_on_localhost(checked: CheckResult) -> None:
    (app,) = _pod()["containers"]
    urls = [item["value"] for item in app["env"] if item["value"].startswith("http://")]
    port = checked.config["listen"]["port"]
    prefix = checked.config["routes"][0]["match"]["path_prefix"]
    assert urls == [f"http://127.0.0.1:{port}{prefix}"]


def test_sidecar_container_is_hardened_like_the_chart() -> None:
    pod = _pod()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    ctx = _tokenrelay()["securityContext"]
    assert (ctx["runAsUser"], ctx["runAsGroup"]) == (10001, 10001)
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in _tokenrelay()["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_sidecar_client_secret_is_a_mounted_secret_file_never_env_or_inline() -> None:
    config = load_yaml(SIDECAR / "tokenrelay.yaml")
    (profile,) = config["profiles"].values()
    secret_file = Path(profile["client"]["secret_file"])
    assert set(profile["client"]) == {"id", "secret_file"}
    mounts = {m["name"]: m for m in _tokenrelay()["volumeMounts"]}
    volumes = {v["name"]: v for v in _pod()["volumes"]}
    (name,) = [n for n, m in mounts.items() if m["mountPath"] == str(secret_file.parent)]
    assert mounts[name]["readOnly"] is True
    secret = _documents()["Secret"]
    assert volumes[name]["secret"]["secretName"] == secret["metadata"]["name"]
    assert secret_file.name in secret["stringData"]
    assert not any("secret" in item["name"].lower() for item in _tokenrelay()["env"])
    (app,) = _pod()["containers"]
    assert name not in {m["name"] for m in app.get("volumeMounts", [])}  # the app never sees the secret


def test_sidecar_config_is_mounted_where_the_serve_command_reads_it() -> None:
    args = build_parser().parse_args(_tokenrelay()["args"])
    mounts = {m["mountPath"]: m["name"] for m in _tokenrelay()["volumeMounts"]}
    volumes = {v["name"]: v for v in _pod()["volumes"]}
    volume = volumes[mounts[str(args.config.parent)]]
    assert volume["configMap"]["name"] == _documents()["ConfigMap"]["metadata"]["name"]
    assert args.config.name in _documents()["ConfigMap"]["data"]


def test_sidecar_probes_ask_the_admin_listener_on_loopback(checked: CheckResult) -> None:
    admin = f"http://127.0.0.1:{checked.config['admin']['port']}"
    probes = {kind: _tokenrelay()[kind]["exec"]["command"] for kind in PROBES}
    assert f"{admin}/healthz" in probes["livenessProbe"][-1]
    assert f"{admin}/readyz" in probes["readinessProbe"][-1]
    assert f"{admin}/readyz" in probes["startupProbe"][-1]


def test_sidecar_runs_as_a_native_sidecar_started_before_the_app() -> None:
    assert _tokenrelay()["restartPolicy"] == "Always"


async def _run_probe(command: list[str], admin_url: str) -> int:
    """Run an exec probe's Python with the admin URL pointed at a test server (``python3`` is the image's)."""
    assert command[:2] == ["python3", "-c"]
    code = command[2].replace("http://127.0.0.1:9901", admin_url)
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", code, stderr=asyncio.subprocess.DEVNULL)
    return await process.wait()


@pytest.mark.parametrize(("status", "succeeds"), [(200, True), (503, False)])
async def test_sidecar_exec_probe_fails_exactly_when_the_admin_endpoint_does(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]], status: int, succeeds: bool
) -> None:
    async def readyz(_: web.Request) -> web.Response:
        return web.json_response({"ready": status == 200}, status=status)

    app = web.Application()
    app.router.add_get("/readyz", readyz)
    server = await aiohttp_server(app)
    command = _tokenrelay()["readinessProbe"]["exec"]["command"]
    assert (await _run_probe(command, str(server.make_url("")).rstrip("/")) == 0) is succeeds


def test_sidecar_config_would_be_refused_with_the_image_defaults_alone(tmp_path: Path) -> None:
    # Why the container sets TOKENRELAY_*__HOST: the image's 0.0.0.0 without an access policy does not start.
    image_env, _ = image_env_and_cmd()
    env = {k: v for k, v in image_env.items() if k.startswith("TOKENRELAY_")}
    result = check_config(with_local_secret_files(load_yaml(SIDECAR / "tokenrelay.yaml"), tmp_path), env)
    assert result.returncode == 2
    assert "listen.host" in result.stderr
    assert "admin.host" in result.stderr
