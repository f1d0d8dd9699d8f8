"""The runner: ``start_dev_stack`` on real ports, the loopback guard, the demo secret, clients files, Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import traceback
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tokenrelay.devidp.clients import DEMO_CLIENT_ID, SECRET_ENV, DevClient, load_clients_file
from tokenrelay.devidp.config import DevIdpConfig
from tokenrelay.devidp.keys import SigningKey
from tokenrelay.devidp.server import DevStack, NonLoopbackError, check_loopback, run_dev_idp, start_dev_stack
from tokenrelay.grant.errors import ConfigError

from .support import ClientKey, basic_header

SRC = Path(__file__).resolve().parents[3] / "src"


@pytest.fixture
async def stack(signing_key: SigningKey) -> AsyncIterator[DevStack]:
    started = await start_dev_stack(config=DevIdpConfig(signing_key=signing_key), client_secret="fixed-secret")
    yield started
    await started.close()


async def test_stack_serves_a_token_the_sample_api_accepts(stack: DevStack) -> None:
    assert stack.api_url is not None
    headers = {"Authorization": basic_header(stack.client_id, stack.client_secret)}
    async with aiohttp.ClientSession() as http:
        async with http.post(stack.token_url, data={"grant_type": "client_credentials"}, headers=headers) as got:
            token = (await got.json())["access_token"]
        async with http.get(f"{stack.api_url}/hello", headers={"Authorization": f"Bearer {token}"}) as response:
            assert response.status == 200
            assert (await response.json())["hello"] == DEMO_CLIENT_ID


async def test_stack_issuer_is_the_bound_url(stack: DevStack, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{stack.idp_url}/.well-known/oauth-authorization-server") as response:
        metadata = await response.json()
    assert stack.idp_url.startswith("http://127.0.0.1:")
    assert metadata["issuer"] == stack.idp_url
    assert metadata["token_endpoint"] == stack.token_url


async def test_stack_repr_hides_the_client_secret(stack: DevStack) -> None:
    assert "fixed-secret" not in repr(stack)


async def test_close_releases_the_port(signing_key: SigningKey) -> None:
    stack = await start_dev_stack(config=DevIdpConfig(signing_key=signing_key), with_sample_api=False)
    await stack.close()
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectionError):
            await http.get(stack.token_url)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1", "example.test", "::"])
async def test_non_loopback_host_is_refused(host: str) -> None:
    with pytest.raises(NonLoopbackError):
        await start_dev_stack(host)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"])
def test_loopback_hosts_pass_the_guard(host: str) -> None:
    check_loopback(host)


def test_non_loopback_refusal_can_be_overridden() -> None:
    check_loopback("0.0.0.0", allow_non_loopback=True)


async def test_demo_secret_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, signing_key: SigningKey) -> None:
    monkeypatch.setenv(SECRET_ENV, "from-env")
    stack = await start_dev_stack(config=DevIdpConfig(signing_key=signing_key), with_sample_api=False)
    await stack.close()
    assert stack.client_secret == "from-env"


async def test_demo_secret_is_random_by_default(monkeypatch: pytest.MonkeyPatch, signing_key: SigningKey) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)
    config = DevIdpConfig(signing_key=signing_key)
    first = await start_dev_stack(config=config, with_sample_api=False)
    second = await start_dev_stack(config=config, with_sample_api=False)
    await first.close()
    await second.close()
    assert len(first.client_secret) >= 32
    assert first.client_secret != second.client_secret


def test_clients_file_declares_secret_and_key_clients(tmp_path: Path, client_key: ClientKey) -> None:
    (tmp_path / "signer.jwks.json").write_text(json.dumps({"keys": [client_key.public_jwk]}))
    (tmp_path / "clients.yaml").write_text(
        "clients:\n"
        "  - client_id: billing\n"
        "    client_secret: s3cret\n"
        "    scopes: [invoices.read]\n"
        "    audience: https://billing.internal\n"
        "  - client_id: signer\n"
        "    auth_methods: [private_key_jwt]\n"
        "    jwks_file: signer.jwks.json\n"
    )
    billing, signer = load_clients_file(tmp_path / "clients.yaml")
    assert billing == DevClient(
        "billing", "s3cret", allowed_scopes=("invoices.read",), audience="https://billing.internal"
    )
    assert signer.jwks == (client_key.public_jwk,)


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("clients:\n  - client_id: a\n    auth_methods: [magic]\n", "clients.0.auth_methods.0"),
        ("clients:\n  - client_id: a\n    colour: blue\n", "clients.0.colour"),
        ("clients:\n  - client_id: a\n    auth_methods: [private_key_jwt]\n", "clients.0"),
    ],
)
def test_invalid_clients_file_is_a_config_error_with_the_field_path(tmp_path: Path, text: str, path: str) -> None:
    (tmp_path / "clients.yaml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_clients_file(tmp_path / "clients.yaml")
    assert path in caught.value.paths


@pytest.mark.parametrize(
    "text",
    [
        "clients:\n  - secret: hunter2\n    client_id: a\n    client_secret_env: X\n",
        "clients:\n  - client_id: a\n    secret: hunter2: [\n",
    ],
    ids=["invalid", "unparsable"],
)
def test_clients_file_errors_carry_no_secret_even_in_their_cause(tmp_path: Path, text: str) -> None:
    """Pydantic and YAML errors quote their input; the ConfigError neither shows nor chains them."""
    (tmp_path / "clients.yaml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_clients_file(tmp_path / "clients.yaml")
    shown = "".join(traceback.format_exception(caught.value))
    assert "hunter2" not in shown


def test_private_jwk_in_clients_file_is_refused(tmp_path: Path) -> None:
    jwk = {"kty": "RSA", "n": "AQAB", "e": "AQAB", "d": "secret"}
    (tmp_path / "clients.json").write_text(json.dumps({"clients": [{"client_id": "a", "jwk": jwk}]}))
    with pytest.raises(ConfigError, match="public key"):
        load_clients_file(tmp_path / "clients.json")


def test_run_dev_idp_refuses_non_loopback_before_binding() -> None:
    with pytest.raises(NonLoopbackError):
        run_dev_idp("0.0.0.0", 0)


async def test_run_dev_idp_serves_until_sigint_then_exits_cleanly() -> None:
    code = "from tokenrelay.devidp.server import run_dev_idp; run_dev_idp('127.0.0.1', 0)"
    env = {**os.environ, "PYTHONPATH": str(SRC), SECRET_ENV: "subprocess-secret"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    banner = b""
    while b"client_secret" not in banner:
        line = await asyncio.wait_for(process.stdout.readline(), timeout=20)
        assert line, "the dev IdP exited before printing its banner"
        banner += line
    process.send_signal(signal.SIGINT)
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=20)
    assert process.returncode == 0, stderr.decode()
    assert b"subprocess-secret" in banner
    assert b"Traceback" not in stderr
