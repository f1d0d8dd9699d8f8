"""Helpers for the examples' tests: where the examples are, a clean environment, ``check-config`` as a subprocess.

Every example config is checked by the real CLI (``python -m tokenrelay check-config FILE``) in a child process
whose environment holds no ``TOKENRELAY_*`` variable of the developer's shell, only what the test gives it: the
config's ``TOKENRELAY_*`` overrides are part of what is being tested (the image sets some of them).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
DOCKERFILE = REPO / "Dockerfile"
#: A stand-in client secret for configs that read one from a file or the environment (never a real one).
STAND_IN_SECRET = "stand-in-secret-for-check-config"


@dataclass(frozen=True, slots=True)
class CheckResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def config(self) -> dict[str, Any]:
        """The effective configuration ``check-config`` printed (YAML, secrets redacted)."""
        assert self.returncode == 0, self.stderr
        loaded = yaml.safe_load(self.stdout)
        assert isinstance(loaded, dict)
        return loaded


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any ``TOKENRELAY_*`` variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("TOKENRELAY_")}
    env.update(extra or {})
    return env


def check_config(path: Path, env: Mapping[str, str] | None = None) -> CheckResult:
    """Run ``tokenrelay check-config path`` as the CLI runs it."""
    result = subprocess.run(
        [sys.executable, "-m", "tokenrelay", "check-config", str(path)],
        env=clean_env(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return CheckResult(result.returncode, result.stdout, result.stderr)


def with_local_secret_files(config: Mapping[str, Any], directory: Path) -> Path:
    """A copy of ``config`` in ``directory`` whose ``client.secret_file`` paths point at stand-in files there.

    ``check-config`` reads every secret source (a missing file is an error by design: better at check time than at
    the first request), and the examples name paths that exist only in a pod (``/var/run/secrets/...``).
    """
    copied = yaml.safe_load(yaml.safe_dump(dict(config)))
    for name, profile in copied.get("profiles", {}).items():
        client = profile["client"]
        if "secret_file" in client:
            secret = directory / f"{name}.secret"
            secret.write_text(STAND_IN_SECRET)
            client["secret_file"] = str(secret)
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(copied, sort_keys=False))
    return path


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def image_env_and_cmd() -> tuple[dict[str, str], list[str]]:
    """The ``ENV`` variables and the ``CMD`` of the Dockerfile's final stage (what every container starts with)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    final_stage = re.split(r"^FROM\s", text, flags=re.MULTILINE)[-1]
    env: dict[str, str] = {}
    cmd: list[str] = []
    for line in final_stage.splitlines():
        instruction, _, rest = line.strip().partition(" ")
        if instruction == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                env[key] = value
        elif instruction == "CMD":
            cmd = yaml.safe_load(rest)  # the exec form is a JSON array, and JSON is YAML
    return env, cmd
