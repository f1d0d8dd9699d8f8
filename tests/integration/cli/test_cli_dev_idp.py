"""``tokenrelay dev-idp`` as a subprocess, used by ``tokenrelay token`` the way a developer would."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest
import yaml

from tests.integration.cli.cli_support import free_port, run_cli

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


async def read_banner(process: asyncio.subprocess.Process) -> dict[str, str]:
    """The ``key: value`` lines the dev IdP prints at start, up to the client secret."""
    assert process.stdout is not None
    banner: dict[str, str] = {}
    while "client_secret" not in banner:
        line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
        assert line, "dev-idp exited before printing its banner"
        key, sep, value = line.strip().partition(": ")
        if sep:
            banner[key] = value.strip()
    return banner


async def test_dev_idp_prints_its_endpoints_and_credentials_and_serves_tokens(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """The banner names issuer, token endpoint, client id and secret; ``token`` gets a token with them."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tokenrelay", "dev-idp", "--port", str(port),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=cli_env,
    )  # fmt: skip
    try:
        banner = await read_banner(process)
        assert banner["issuer"] == f"http://127.0.0.1:{port}"
        assert banner["token endpoint"] == f"http://127.0.0.1:{port}/token"
        config = {
            "profiles": {
                "dev": {
                    "client": {"id": banner["client_id"], "secret_env": "DEV_IDP_SECRET"},
                    "auth": {"issuer": banner["issuer"]},
                }
            }
        }
        path = tmp_path / "relay.yaml"
        path.write_text(yaml.safe_dump(config))
        env = {**cli_env, "DEV_IDP_SECRET": banner["client_secret"]}
        result = await run_cli("token", "dev", "--config", path, env=env)
        assert result.status == 0, result.stderr
        assert result.stdout.count(".") == 2  # a JWS compact token
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0


async def test_dev_idp_refuses_a_non_loopback_host(cli_env: dict[str, str]) -> None:
    """The dev IdP is a development tool: a non-loopback host is refused with exit 2."""
    result = await run_cli("dev-idp", "--host", "0.0.0.0", env=cli_env)
    assert result.status == 2
    assert "Traceback" not in result.stderr
