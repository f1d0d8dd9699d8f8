"""The CLI's one-shot commands as subprocesses: check-config, token, --version, and serve's refusals."""

from __future__ import annotations

import socket
from pathlib import Path

import yaml

from tests.integration.cli.cli_support import run_cli
from tests.integration.runtime.runtime_support import FakeIdp, Upstream, relay_config

SECRET = "relay-secret-value"
EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "config"

BAD_CONFIG = """\
listen: {port: 99999}
profiles:
  billing:
    client: {id: abc, secret: relay-secret-value}
    auth: {token_host: "not a url"}
routes:
  - {name: r1, match: {path_prefix: nope}, upstream: "http://127.0.0.1:1", profile: billing}
"""


def write(tmp_path: Path, config: dict[str, object] | str, name: str = "relay.yaml") -> Path:
    path = tmp_path / name
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
    return path


async def test_check_config_prints_every_bad_path_and_exits_2(tmp_path: Path, cli_env: dict[str, str]) -> None:
    """A bad file: exit 2, one line per bad field on stderr, no traceback, no secret."""
    result = await run_cli("check-config", write(tmp_path, BAD_CONFIG), env=cli_env)
    assert result.status == 2
    for path in ("listen.port", "profiles.billing.auth.token_host", "routes.0.match"):
        assert f"  {path}: " in result.stderr
    assert "Traceback" not in result.stderr
    assert SECRET not in result.stderr + result.stdout


async def test_check_config_prints_the_effective_config_redacted(
    tmp_path: Path, cli_env: dict[str, str], idp: FakeIdp, upstream: Upstream
) -> None:
    """A good file: exit 0 and the effective config as YAML, the secret replaced by ``***``."""
    result = await run_cli("check-config", write(tmp_path, relay_config(idp, upstream)), env=cli_env)
    assert result.status == 0, result.stderr
    printed = yaml.safe_load(result.stdout)
    assert printed["profiles"]["billing"]["client"]["secret"] == "***"
    assert printed["routes"][0]["name"] == "billing"
    assert SECRET not in result.stdout + result.stderr


async def test_check_config_shows_env_overrides(tmp_path: Path, cli_env: dict[str, str]) -> None:
    """The printed config is the effective one: environment overrides included."""
    env = {**cli_env, "TOKENRELAY_LISTEN__PORT": "9444"}
    result = await run_cli("check-config", write(tmp_path, "listen: {port: 8100}\n"), env=env)
    assert result.status == 0, result.stderr
    assert yaml.safe_load(result.stdout)["listen"]["port"] == 9444


async def test_example_configs_are_valid(cli_env: dict[str, str]) -> None:
    """Every shipped example passes check-config (with the environment variables it documents)."""
    env = {**cli_env, "BILLING_CLIENT_SECRET": "example-secret", "RELAY_API_KEY": "k" * 32}
    examples = sorted(EXAMPLES.glob("*.yaml"))
    assert examples, "examples/config/*.yaml is missing"
    for example in examples:
        result = await run_cli("check-config", example, env=env)
        assert result.status == 0, f"{example.name}: {result.stderr}"


async def test_token_prints_a_fresh_token_on_stdout(
    tmp_path: Path, cli_env: dict[str, str], idp: FakeIdp, upstream: Upstream
) -> None:
    """``token PROFILE`` prints exactly the access token on stdout."""
    result = await run_cli("token", "billing", "--config", write(tmp_path, relay_config(idp, upstream)), env=cli_env)
    assert (result.status, result.stdout) == (0, "tok-1\n"), result.stderr
    assert idp.issued == 1


async def test_token_failure_goes_to_stderr_with_exit_1(
    tmp_path: Path, cli_env: dict[str, str], idp: FakeIdp, upstream: Upstream
) -> None:
    """An IdP refusal: exit 1, the endpoint's error on stderr, nothing on stdout, no secret anywhere."""
    idp.reject = True
    result = await run_cli("token", "billing", "--config", write(tmp_path, relay_config(idp, upstream)), env=cli_env)
    assert (result.status, result.stdout) == (1, "")
    assert "invalid_client" in result.stderr
    assert SECRET not in result.stderr


async def test_token_for_an_unknown_profile_names_the_known_ones(
    tmp_path: Path, cli_env: dict[str, str], idp: FakeIdp, upstream: Upstream
) -> None:
    """A profile that is not configured is a usage error (exit 2) listing the profiles there are."""
    result = await run_cli("token", "ghost", "--config", write(tmp_path, relay_config(idp, upstream)), env=cli_env)
    assert result.status == 2
    assert "'ghost'" in result.stderr
    assert "billing" in result.stderr


async def test_serve_without_config_points_to_demo_and_examples(cli_env: dict[str, str]) -> None:
    """``serve`` needs a config; the message says how to get started instead."""
    result = await run_cli("serve", env=cli_env)
    assert result.status == 2
    assert "tokenrelay demo" in result.stderr
    assert "examples/config/" in result.stderr


async def test_serve_refuses_an_exposed_listener_without_access_policy(
    tmp_path: Path, cli_env: dict[str, str], idp: FakeIdp, upstream: Upstream
) -> None:
    """``--host 0.0.0.0`` without allow_clients/api_keys/open: exit 2 with the reason; nothing is served."""
    config = write(tmp_path, relay_config(idp, upstream))
    result = await run_cli("serve", "--config", config, "--host", "0.0.0.0", env=cli_env)
    assert result.status == 2
    assert "listen.host" in result.stderr
    assert "access.allow_clients" in result.stderr
    assert "Traceback" not in result.stderr


async def test_version_flag(cli_env: dict[str, str]) -> None:
    """``--version`` prints the program name and version."""
    result = await run_cli("--version", env=cli_env)
    assert result.status == 0
    assert result.stdout.startswith("tokenrelay ")


async def test_help_lists_every_command(cli_env: dict[str, str]) -> None:
    """``--help`` works without importing the serving stack, and lists the five commands."""
    result = await run_cli("--help", env=cli_env)
    assert result.status == 0
    for command in ("serve", "check-config", "token", "dev-idp", "demo"):
        assert command in result.stdout


async def test_serve_with_the_port_taken_exits_3(
    tmp_path: Path, cli_env: dict[str, str], idp: FakeIdp, upstream: Upstream
) -> None:
    """A listener that cannot bind is a startup failure (exit 3) with the reason, not a traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write(tmp_path, relay_config(idp, upstream))
        result = await run_cli("serve", "--config", config, "--port", str(port), "--admin-port", "0", env=cli_env)
    assert result.status == 3
    assert "cannot listen" in result.stderr
    assert "Traceback" not in result.stderr
