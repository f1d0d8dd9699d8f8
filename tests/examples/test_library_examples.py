"""examples/library: each script runs as ``python examples/library/X.py`` against a real dev IdP (started here,
in process, on 127.0.0.1), configured only through the documented ``TOKENRELAY_EXAMPLE_*`` variables; its output
shows the expected outcome and never the client secret or a token."""

from __future__ import annotations

import ast
import asyncio
import json
import os
import re
import stat
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.examples.support import EXAMPLES, clean_env
from tokenrelay.devidp import DevIdpConfig, DevStack, SigningKey, generate_signing_key, start_dev_stack

LIBRARY = EXAMPLES / "library"
SECRET = "library-example-secret"
FINGERPRINT = re.compile(r"\b[0-9a-f]{8}\b")
StackFactory = Callable[[int], Awaitable[DevStack]]


@dataclass(frozen=True, slots=True)
class Run:
    returncode: int
    stdout: str
    stderr: str

    def assert_nothing_leaked(self) -> None:
        """No secret, and nothing shaped like a JWT (the dev IdP's tokens), on either stream."""
        for stream in (self.stdout, self.stderr):
            assert SECRET not in stream
            assert "eyJ" not in stream


@pytest.fixture(scope="module")
def signing_key() -> SigningKey:
    return generate_signing_key()  # RSA generation is slow: once per module


@pytest.fixture
async def dev_idp(signing_key: SigningKey) -> AsyncIterator[StackFactory]:
    """Start dev IdPs (with the sample API) whose tokens live ``expires_in`` seconds; closed after the test."""
    stacks: list[DevStack] = []

    async def start(expires_in: int = 3600) -> DevStack:
        config = DevIdpConfig(expires_in=expires_in, signing_key=signing_key)
        stacks.append(await start_dev_stack(config=config, client_secret=SECRET))
        return stacks[-1]

    yield start
    for stack in stacks:
        await stack.close()


async def run_example(script: str, stack: DevStack | None, **env: str) -> Run:
    """``python examples/library/<script>`` with the example variables pointing at ``stack``."""
    variables = {"TOKENRELAY_EXAMPLE_CLIENT_SECRET": SECRET} | env
    if stack is not None:
        variables["TOKENRELAY_EXAMPLE_TOKEN_HOST"] = stack.idp_url
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(LIBRARY / script),
        env=clean_env(variables),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return Run(process.returncode, stdout.decode(), stderr.decode())


def issued(stack: DevStack) -> list[str]:
    """Fingerprints of the tokens the dev IdP issued, oldest first."""
    return [record.fingerprint for record in stack.idp.recent]


async def test_basic_gets_a_token_and_shows_only_its_fingerprint(dev_idp: StackFactory) -> None:
    stack = await dev_idp(3600)
    run = await run_example("basic.py", stack)
    assert run.returncode == 0, run.stderr
    assert issued(stack) == [FINGERPRINT.search(run.stdout.splitlines()[0])[0]]  # type: ignore[index]
    assert "scope:      sample.read" in run.stdout
    assert "expired now? False" in run.stdout
    run.assert_nothing_leaked()


async def test_basic_reports_a_refused_client_without_a_traceback(dev_idp: StackFactory) -> None:
    stack = await dev_idp(3600)
    run = await run_example("basic.py", stack, TOKENRELAY_EXAMPLE_CLIENT_SECRET="wrong-" + SECRET)
    assert run.returncode == 1
    assert "the token endpoint refused: HTTP 401 invalid_client" in run.stderr
    assert "Traceback" not in run.stderr
    assert "wrong-" not in run.stdout + run.stderr
    assert issued(stack) == []


def repeated_parts(script: Path) -> list[str | None]:
    """The source of what every script repeats to stand alone: ``config_from_env``, ``TOKEN_PARAMS`` and the
    ``__main__`` block."""
    source = script.read_text(encoding="utf-8")
    return [
        ast.get_source_segment(source, node)
        for node in ast.parse(source).body
        if (isinstance(node, ast.FunctionDef) and node.name == "config_from_env")
        or (isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "TOKEN_PARAMS")
        or (isinstance(node, ast.If) and ast.unparse(node.test) == "__name__ == '__main__'")
    ]


def test_examples_repeat_their_shared_lines_identically() -> None:
    # Each script stands alone (README.md), so a fix to these lines must reach every copy.
    scripts = sorted(LIBRARY.glob("*.py"))
    expected = repeated_parts(scripts[0])
    assert len(scripts) == 4
    assert len(expected) == 3
    for script in scripts[1:]:
        assert repeated_parts(script) == expected, script.name


async def test_examples_without_a_secret_say_which_variable_to_set() -> None:
    run = await run_example("basic.py", None, TOKENRELAY_EXAMPLE_CLIENT_SECRET="")
    assert run.returncode == 1
    assert "set TOKENRELAY_EXAMPLE_CLIENT_SECRET" in run.stderr


async def test_examples_fall_back_to_the_dev_idp_secret_variable(dev_idp: StackFactory) -> None:
    stack = await dev_idp(3600)
    run = await run_example("basic.py", stack, TOKENRELAY_EXAMPLE_CLIENT_SECRET="", TOKENRELAY_DEV_IDP_SECRET=SECRET)
    assert run.returncode == 0, run.stderr
    assert len(issued(stack)) == 1


async def test_cached_token_reuses_one_token_while_it_is_outside_the_window(dev_idp: StackFactory) -> None:
    stack = await dev_idp(3600)
    run = await run_example("cached_token.py", stack)
    assert run.returncode == 0, run.stderr
    (fingerprint,) = issued(stack)
    assert [f"call {n}: using token {fingerprint}" for n in (1, 2, 3)] == run.stdout.splitlines()[:3]
    assert "1 token request(s) for 3 calls" in run.stdout
    assert "note:" not in run.stdout
    run.assert_nothing_leaked()


async def test_cached_token_refetches_when_tokens_live_shorter_than_the_window(dev_idp: StackFactory) -> None:
    stack = await dev_idp(300)  # the dev IdP's default lifetime: inside simple-oauth2's 300 s window
    run = await run_example("cached_token.py", stack)
    assert run.returncode == 0, run.stderr
    assert len(issued(stack)) == 3
    assert "3 token request(s) for 3 calls" in run.stdout
    assert "use a window shorter than the token lifetime" in run.stdout


async def test_cached_token_window_is_configurable_for_short_lived_tokens(dev_idp: StackFactory) -> None:
    stack = await dev_idp(300)
    run = await run_example("cached_token.py", stack, TOKENRELAY_EXAMPLE_EXPIRATION_WINDOW="60")
    assert "1 token request(s) for 3 calls" in run.stdout
    assert len(issued(stack)) == 1


async def test_store_and_restore_fetches_once_then_restores_without_a_request(
    dev_idp: StackFactory, tmp_path: Path
) -> None:
    stack = await dev_idp(3600)
    token_file = tmp_path / "token.json"
    first = await run_example("store_and_restore.py", stack, TOKENRELAY_EXAMPLE_TOKEN_FILE=str(token_file))
    second = await run_example("store_and_restore.py", stack, TOKENRELAY_EXAMPLE_TOKEN_FILE=str(token_file))
    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    (fingerprint,) = issued(stack)
    assert first.stdout.startswith(f"fetched new token {fingerprint}")
    assert second.stdout.startswith(f"restored stored token {fingerprint}")
    assert "no token request" in second.stdout
    first.assert_nothing_leaked()
    second.assert_nothing_leaked()


async def test_store_and_restore_writes_the_token_owner_only_with_its_expiry(
    dev_idp: StackFactory, tmp_path: Path
) -> None:
    stack = await dev_idp(3600)
    token_file = tmp_path / "token.json"
    await run_example("store_and_restore.py", stack, TOKENRELAY_EXAMPLE_TOKEN_FILE=str(token_file))
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    stored = json.loads(token_file.read_text())
    expires_at = datetime.fromisoformat(stored["expires_at"])
    assert timedelta(minutes=59) < expires_at - datetime.now(UTC) <= timedelta(hours=1)
    assert os.listdir(tmp_path) == ["token.json"]  # no temporary file left behind


async def test_store_and_restore_replaces_a_stored_token_that_expires_within_the_window(
    dev_idp: StackFactory, tmp_path: Path
) -> None:
    stack = await dev_idp(3600)
    token_file = tmp_path / "token.json"
    soon = (datetime.now(UTC) + timedelta(seconds=30)).isoformat()
    token_file.write_text(json.dumps({"access_token": "stale", "token_type": "Bearer", "expires_at": soon}))
    run = await run_example("store_and_restore.py", stack, TOKENRELAY_EXAMPLE_TOKEN_FILE=str(token_file))
    assert run.stdout.startswith("fetched new token")
    assert json.loads(token_file.read_text())["access_token"] != "stale"
    assert len(issued(stack)) == 1


async def test_microservice_serves_concurrent_requests_with_one_token_request(dev_idp: StackFactory) -> None:
    stack = await dev_idp(3600)
    assert stack.api_url is not None
    run = await run_example("microservice.py", stack, TOKENRELAY_EXAMPLE_API_URL=stack.api_url)
    assert run.returncode == 0, run.stderr
    (fingerprint,) = issued(stack)
    answers = [line for line in run.stdout.splitlines() if line.startswith("request ")]
    assert len(answers) == 5
    assert all(f"API answered 200 hello=demo-client (token {fingerprint})" in line for line in answers)
    assert "1 token request(s) for 5 concurrent requests" in run.stdout
    run.assert_nothing_leaked()


async def test_microservice_without_an_api_still_shares_one_token(dev_idp: StackFactory) -> None:
    stack = await dev_idp(3600)
    run = await run_example("microservice.py", stack)
    assert run.returncode == 0, run.stderr
    (fingerprint,) = issued(stack)
    assert run.stdout.count(f"would call the API with token {fingerprint}") == 5
