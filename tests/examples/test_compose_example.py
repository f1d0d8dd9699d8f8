"""examples/compose: Docker Compose cannot run on the build machines (no engine), so its structure is checked:
one image built from the repo's Dockerfile, commands the CLI accepts, ports, health checks and dependencies that
agree with each other, and a mounted tokenrelay config that passes ``check-config`` as the container sees it."""

from __future__ import annotations

import argparse
import functools
import ipaddress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.examples.support import EXAMPLES, REPO, CheckResult, check_config, image_env_and_cmd, load_yaml
from tokenrelay.cli import build_parser

COMPOSE_DIR = EXAMPLES / "compose"


@functools.cache
def _compose() -> dict[str, Any]:
    loaded = load_yaml(COMPOSE_DIR / "compose.yaml")
    assert isinstance(loaded, dict)
    return loaded


def _service(name: str) -> dict[str, Any]:
    service: dict[str, Any] = _compose()["services"][name]
    return service


def _flag(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def _published(name: str) -> dict[int, str]:
    """Container port -> host address of each published port (``HOST:HOSTPORT:CONTAINERPORT``)."""
    published = {}
    for spec in _service(name).get("ports", []):
        host, _, container = spec.rpartition(":")
        published[int(container)] = host.rpartition(":")[0]
    return published


def _healthcheck_url(name: str) -> Any:
    test = _service(name)["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python3"]
    (url,) = [part.split("'")[1] for part in test[-1].split("urlopen(")[1:]]
    return urlsplit(url)


def _image_tokenrelay_env() -> dict[str, str]:
    return {k: v for k, v in image_env_and_cmd()[0].items() if k.startswith("TOKENRELAY_")}


def _config_mount() -> tuple[Path, str]:
    for volume in _service("tokenrelay")["volumes"]:
        source, target, *_ = volume.split(":")
        if target.startswith("/etc/tokenrelay/"):
            return (COMPOSE_DIR / source).resolve(), target
    raise AssertionError("no config mount")


@pytest.fixture(scope="module")
def checked() -> CheckResult:
    """``check-config`` of the mounted file with the image's ENV and the service's environment."""
    source, _ = _config_mount()
    return check_config(source, _image_tokenrelay_env() | _service("tokenrelay")["environment"])


def test_compose_runs_the_three_services() -> None:
    assert set(_compose()["services"]) == {"dev-idp", "sample-api", "tokenrelay"}


@pytest.mark.parametrize("name", ["dev-idp", "sample-api", "tokenrelay"])
def test_compose_service_uses_the_image_built_from_the_repo_dockerfile(name: str) -> None:
    service = _service(name)
    build = service["build"]
    assert (COMPOSE_DIR / build["context"]).resolve() == REPO
    assert (COMPOSE_DIR / build["context"] / build["dockerfile"]).resolve() == REPO / "Dockerfile"
    assert service["image"] == _service("tokenrelay")["image"]


@pytest.mark.parametrize("name", ["dev-idp", "sample-api", "tokenrelay"])
def test_compose_service_is_hardened(name: str) -> None:
    service = _service(name)
    assert service["read_only"] is True
    assert service["cap_drop"] == ["ALL"]
    assert "/tmp" in service["tmpfs"]
    assert "no-new-privileges:true" in service["security_opt"]


@pytest.mark.parametrize("name", ["dev-idp", "sample-api"])
def test_compose_service_command_is_accepted_by_the_cli(name: str) -> None:
    command = _service(name)["command"]
    args = build_parser().parse_args(command)  # argparse exits (fails the test) on an unknown flag
    assert args.command == name
    assert args.host == "0.0.0.0"
    assert args.port == int(_flag(command, "--port"))


def test_compose_tokenrelay_runs_the_image_command_on_the_mounted_config() -> None:
    _, cmd = image_env_and_cmd()
    assert "command" not in _service("tokenrelay")
    args: argparse.Namespace = build_parser().parse_args(cmd)
    assert args.command == "serve"
    source, target = _config_mount()
    assert str(args.config) == target
    assert source == COMPOSE_DIR / "tokenrelay.yaml"


def test_compose_tokenrelay_config_passes_check_config(checked: CheckResult) -> None:
    assert checked.returncode == 0, checked.stderr
    assert [route["name"] for route in checked.config["routes"]] == ["sample"]


def test_compose_ports_are_published_on_host_loopback_only() -> None:
    for name in _compose()["services"]:
        assert set(_published(name).values()) <= {"127.0.0.1"}


def test_compose_tokenrelay_publishes_its_listeners_and_checks_readiness(checked: CheckResult) -> None:
    listen, admin = checked.config["listen"], checked.config["admin"]
    assert (listen["host"], admin["host"]) == ("0.0.0.0", "0.0.0.0")  # reachable from outside the container
    assert set(_published("tokenrelay")) == {listen["port"], admin["port"]}
    url = _healthcheck_url("tokenrelay")
    assert (url.hostname, url.port, url.path) == ("127.0.0.1", admin["port"], "/readyz")


@pytest.mark.parametrize(
    ("name", "path"), [("dev-idp", "/.well-known/oauth-authorization-server"), ("sample-api", "/_sample/stats")]
)
def test_compose_dev_service_healthcheck_targets_its_own_port(name: str, path: str) -> None:
    url = _healthcheck_url(name)
    assert (url.hostname, url.port, url.path) == ("127.0.0.1", int(_flag(_service(name)["command"], "--port")), path)


def test_compose_dependencies_wait_for_health() -> None:
    for name, service in _compose()["services"].items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert condition == {"condition": "service_healthy"}, name
            assert "healthcheck" in _service(dependency)


def test_compose_addresses_agree_between_services(checked: CheckResult) -> None:
    idp_command, api_command = _service("dev-idp")["command"], _service("sample-api")["command"]
    issuer = urlsplit(_flag(idp_command, "--issuer"))
    assert (issuer.hostname, issuer.port) == ("dev-idp", int(_flag(idp_command, "--port")))
    assert _flag(api_command, "--issuer") == _flag(idp_command, "--issuer")
    assert _flag(api_command, "--jwks-url") == f"{_flag(idp_command, '--issuer')}/jwks"
    (profile,) = checked.config["profiles"].values()
    assert profile["auth"]["token_host"] == _flag(idp_command, "--issuer")
    (route,) = checked.config["routes"]
    upstream = urlsplit(route["upstream"])
    assert (upstream.hostname, upstream.port) == ("sample-api", int(_flag(api_command, "--port")))


def test_compose_both_sides_share_the_dev_client_secret(checked: CheckResult) -> None:
    (profile,) = checked.config["profiles"].values()
    tokenrelay_env = _service("tokenrelay")["environment"]
    idp_env = _service("dev-idp")["environment"]
    assert profile["client"]["id"] == "demo-client"
    assert tokenrelay_env[profile["client"]["secret_env"]] == idp_env["TOKENRELAY_DEV_IDP_SECRET"]


def test_compose_tokenrelay_admits_exactly_the_compose_network(checked: CheckResult) -> None:
    (subnet,) = [entry["subnet"] for entry in _compose()["networks"]["dev"]["ipam"]["config"]]
    allowed = [ipaddress.ip_network(network) for network in checked.config["access"]["allow_clients"]]
    assert allowed == [ipaddress.ip_network(subnet)]
    assert checked.config["access"]["open"] is False
    assert all(service["networks"] == ["dev"] for service in _compose()["services"].values())
