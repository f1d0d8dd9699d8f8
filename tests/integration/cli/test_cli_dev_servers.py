"""``tokenrelay dev-idp --issuer`` and ``tokenrelay sample-api`` as subprocesses: the shape examples/compose runs
(an IdP reached by another name than the address it binds, a sample API checking tokens over HTTP JWKS), plus
the dev servers' clients-file errors, logging, and the non-loopback guard."""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest

from tests.integration.cli.cli_support import free_port, run_cli

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

SECRET = "cli-dev-servers-secret"


@asynccontextmanager
async def running(*args: str, env: dict[str, str], until: str) -> AsyncIterator[tuple[dict[str, str], list[str]]]:
    """Run the CLI until its banner shows ``until``; yields the banner and, after SIGTERM, its stderr lines."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tokenrelay", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stderr is not None
    banner: dict[str, str] = {}
    stderr: list[str] = []
    try:
        while until not in banner:
            line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
            assert line, f"{args[0]} exited before its banner: {(await process.stderr.read()).decode()}"
            key, sep, value = line.strip().partition(": ")
            if sep:
                banner[key] = value.strip()
        yield banner, stderr
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 10)
        stderr.extend(err.decode().splitlines())
        assert process.returncode == 0, err.decode()


async def get_token(http: aiohttp.ClientSession, token_url: str, secret: str = SECRET) -> tuple[int, Any]:
    headers = {"Authorization": "Basic " + base64.b64encode(f"demo-client:{secret}".encode()).decode()}
    async with http.post(token_url, data={"grant_type": "client_credentials"}, headers=headers) as response:
        return response.status, await response.json()


def dev_env(cli_env: dict[str, str]) -> dict[str, str]:
    return {**cli_env, "TOKENRELAY_DEV_IDP_SECRET": SECRET}


def dev_idp_args(port: int, *extra: str) -> Sequence[str]:
    return ("dev-idp", "--port", str(port), "--issuer", f"http://localhost:{port}", *extra)


async def test_dev_idp_advertises_the_issuer_given_with_issuer(cli_env: dict[str, str]) -> None:
    """Discovery, tokens and the banner name ``--issuer``; the banner also says where it really listens."""
    port = free_port()
    issuer = f"http://localhost:{port}"
    async with (
        running(*dev_idp_args(port), env=dev_env(cli_env), until="client_secret") as (banner, _),
        aiohttp.ClientSession() as http,
    ):
        async with http.get(f"http://127.0.0.1:{port}/.well-known/oauth-authorization-server") as response:
            metadata = await response.json()
        status, body = await get_token(http, f"http://127.0.0.1:{port}/token")
    assert (metadata["issuer"], metadata["token_endpoint"]) == (issuer, f"{issuer}/token")
    assert status == 200
    assert jwt.decode(body["access_token"], options={"verify_signature": False})["iss"] == issuer
    assert (banner["issuer"], banner["token endpoint"]) == (issuer, f"{issuer}/token")
    assert banner["listening on"] == f"http://127.0.0.1:{port}"


async def test_sample_api_checks_tokens_against_the_dev_idps_jwks(cli_env: dict[str, str]) -> None:
    """``sample-api --issuer --jwks-url`` accepts the dev IdP's token and rejects anything else."""
    idp_port, api_port = free_port(), free_port()
    issuer = f"http://localhost:{idp_port}"
    api_args = ("sample-api", "--port", str(api_port), "--issuer", issuer, "--jwks-url", f"{issuer}/jwks")
    async with (
        running(*dev_idp_args(idp_port), env=dev_env(cli_env), until="client_secret"),
        running(*api_args, env=cli_env, until="audience") as (banner, _),
        aiohttp.ClientSession() as http,
    ):
        _, body = await get_token(http, f"http://127.0.0.1:{idp_port}/token")
        hello = f"http://127.0.0.1:{api_port}/hello"
        async with http.get(hello, headers={"Authorization": f"Bearer {body['access_token']}"}) as response:
            assert response.status == 200
            assert (await response.json())["hello"] == "demo-client"
        async with http.get(hello, headers={"Authorization": "Bearer not-a-jwt"}) as response:
            assert response.status == 401
    assert (banner["listening on"], banner["issuer"]) == (f"http://127.0.0.1:{api_port}", issuer)


async def test_sample_api_refuses_a_non_loopback_host_without_the_flag(cli_env: dict[str, str]) -> None:
    args = ("--issuer", "http://idp:9000", "--jwks-url", "http://idp:9000/jwks")
    result = await run_cli("sample-api", "--host", "0.0.0.0", *args, env=cli_env)
    assert result.status == 2
    assert "--allow-non-loopback" in result.stderr
    assert "Traceback" not in result.stderr


async def test_dev_idp_with_duplicate_clients_in_its_file_exits_2_naming_the_problem(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """A clients file that only fails once its clients are put together is still a clean configuration error."""
    path = tmp_path / "clients.yaml"
    path.write_text("clients:\n  - {client_id: twin, client_secret: a}\n  - {client_id: twin, client_secret: b}\n")
    result = await run_cli("dev-idp", "--clients-file", path, env=cli_env)
    assert result.status == 2
    assert result.stderr.startswith(f"tokenrelay dev-idp: invalid clients file {path}")
    assert "duplicate client ids" in result.stderr
    assert "Traceback" not in result.stderr


async def test_dev_idp_with_an_unreadable_clients_file_exits_2(tmp_path: Path, cli_env: dict[str, str]) -> None:
    path = tmp_path / "clients.yaml"
    path.write_bytes(b"\xff\xfe\x00 not utf-8")
    result = await run_cli("dev-idp", "--clients-file", path, env=cli_env)
    assert result.status == 2
    assert "not UTF-8" in result.stderr
    assert "Traceback" not in result.stderr


async def test_dev_idp_logs_json_lines_on_stderr_with_log_format_json(cli_env: dict[str, str]) -> None:
    """``--log-format json``: a refused token request is one JSON log line on stderr, stdout keeps the banner."""
    port = free_port()
    args = dev_idp_args(port, "--log-format", "json", "--log-level", "info")
    async with running(*args, env=dev_env(cli_env), until="client_secret") as (_, stderr):
        async with aiohttp.ClientSession() as http:
            status, _ = await get_token(http, f"http://127.0.0.1:{port}/token", secret="wrong")
        assert status == 401
    events = [json.loads(line) for line in stderr if line.startswith("{")]
    refused = [event for event in events if event["event"] == "token request refused"]
    assert len(refused) == 1
    assert refused[0]["level"] == "info"
    assert "wrong" not in json.dumps(refused[0])
