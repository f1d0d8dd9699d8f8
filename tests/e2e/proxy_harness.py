"""tokenrelay itself as a user runs it, against the end-to-end authorization server: the CLI as a subprocess.

* :func:`relay_config` writes what a user writes: a config file whose profiles take their credentials from a
  ``secret_file``, a ``secret_env`` variable and a ``private_key_file`` (plus one inline secret, so redaction by
  ``check-config`` is exercised), one route per profile to the protected API, RFC 8707 ``resource`` params.
* :func:`start_relay` runs ``python -m tokenrelay serve --config FILE`` on 127.0.0.1 port 0, learns the bound
  ports from its ``serving`` log line, and returns a :class:`Relay`; :meth:`Relay.stop` sends SIGTERM.
  Its stdout/stderr go to files, so a test can assert that no secret and no token ever appeared there.
* :func:`capture_tokens` lets a test see the raw tokens the protected API received (kept in memory, never
  printed): to revoke one at the provider, and to prove that none of them leaked into the proxy's output.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from tests.e2e.harness import AUTHORIZATION_METHOD, OidcProvider

STARTUP_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
#: How long ``/readyz`` is polled for the expected answer (a token request to the local provider takes ms).
READY_TIMEOUT = 10.0
#: The environment variable the ``post`` profile reads its secret from.
POST_SECRET_ENV = "E2E_RELAY_POST_SECRET"
#: A JWS/JWT in compact form: base64url header (``{"`` -> ``ey``), a dot, a payload.
JWT_LIKE = re.compile(r"ey[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")


@dataclass(frozen=True, slots=True)
class Profile:
    """One profile of the generated config: its name (= route name, path ``/<name>/``), client and resource."""

    name: str
    auth_method: str
    resource: str
    discovery: bool = True


@dataclass(frozen=True, slots=True)
class RelayConfig:
    """A written config file, the environment ``serve`` needs with it, and every credential it involves."""

    path: Path
    env: Mapping[str, str] = field(repr=False)
    credentials: tuple[str, ...] = field(repr=False)


def relay_config(
    workdir: Path,
    provider: OidcProvider,
    api_url: str,
    profiles: tuple[Profile, ...],
    *,
    wrong_secret: bool = False,
    log_level: str = "info",
    **profile_options: Any,
) -> RelayConfig:
    """Write a config file for ``profiles``; ``profile_options`` go into every profile (``prefetch=False``).

    Secret sources by method: ``client_secret_basic`` -> ``secret_file`` (mode 0600), ``client_secret_post`` ->
    ``secret_env``, ``private_key_jwt`` -> ``private_key_file``, ``client_secret_jwt`` -> inline ``secret``.
    ``wrong_secret`` writes a secret the provider does not know into the ``secret_file``.
    """
    env: dict[str, str] = {}
    credentials: list[str] = []
    sections: dict[str, Any] = {}
    for profile in profiles:
        client = _client_section(workdir, provider, profile, env, credentials, wrong_secret=wrong_secret)
        sections[profile.name] = {
            "client": client,
            "auth": _auth_section(provider, profile),
            "options": {"authorization_method": AUTHORIZATION_METHOD[profile.auth_method]},
            "scope": "api:read",
            "resource": [profile.resource],
            **profile_options,
        }
    config = {
        "listen": {"host": "127.0.0.1", "port": 0},
        "admin": {"host": "127.0.0.1", "port": 0},
        "log": {"level": log_level, "format": "json"},
        "server": {"shutdown_grace": 2.0},
        "profiles": sections,
        "routes": [_route(profile.name, api_url) for profile in profiles],
    }
    path = workdir / "tokenrelay.yaml"
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML; the loader reads .yaml
    return RelayConfig(path, env, tuple(credentials))


def _client_section(
    workdir: Path,
    provider: OidcProvider,
    profile: Profile,
    env: dict[str, str],
    credentials: list[str],
    *,
    wrong_secret: bool,
) -> dict[str, Any]:
    client = provider.client(profile.auth_method)
    section: dict[str, Any] = {"id": client.client_id}
    if client.secret is not None:
        credentials.append(client.secret)
    if profile.auth_method == "client_secret_basic":
        secret_file = _private_file(workdir / f"{profile.name}.secret")
        secret = client.secret or ""
        secret_file.write_text(f"not-{secret}" if wrong_secret else f"{secret}\n")
        section["secret_file"] = str(secret_file)
    elif profile.auth_method == "client_secret_post":
        env[POST_SECRET_ENV] = client.secret or ""
        section["secret_env"] = POST_SECRET_ENV
    elif profile.auth_method == "private_key_jwt":
        assert client.private_key_pem is not None
        # The whole PEM, and each line of its body: a partial key in a log is a leak too.
        credentials.append(client.private_key_pem)
        credentials.extend(line for line in client.private_key_pem.splitlines() if len(line) >= 32)
        key_file = _private_file(workdir / f"{profile.name}.key.pem")
        key_file.write_text(client.private_key_pem)
        section |= {"private_key_file": str(key_file), "key_id": client.key_id}
    else:
        section["secret"] = client.secret
    return section


def _private_file(path: Path) -> Path:
    path.touch(mode=0o600)
    return path


def _auth_section(provider: OidcProvider, profile: Profile) -> dict[str, Any]:
    """Discovery from the issuer, or the token endpoint spelled out (both ways meet a real server)."""
    if profile.discovery:
        return {"issuer": provider.issuer}
    token_path = provider.token_endpoint.removeprefix(provider.issuer)
    return {"token_host": provider.issuer, "token_path": token_path}


def _route(name: str, api_url: str) -> dict[str, Any]:
    return {
        "name": name,
        "match": {"path_prefix": f"/{name}/"},
        "upstream": api_url,
        "strip_prefix": True,
        "profile": name,
    }


def cli_env(extra: Mapping[str, str] = {}) -> dict[str, str]:
    """This process's environment without ``TOKENRELAY_*`` overrides, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("TOKENRELAY_")}
    return {**env, **extra}


@dataclass(slots=True)
class Relay:
    """A running ``tokenrelay serve`` subprocess and where it listens."""

    process: subprocess.Popen[bytes]
    proxy_url: str
    admin_url: str
    stdout_path: Path
    stderr_path: Path

    def output(self) -> str:
        """Everything it wrote so far, stdout then stderr."""
        return self.stdout_path.read_text(errors="replace") + self.stderr_path.read_text(errors="replace")

    def events(self) -> list[dict[str, Any]]:
        """Its JSON log lines (stderr), parsed; other lines are skipped."""
        events = []
        for line in self.stderr_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    events.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return events

    async def stop(self, signum: signal.Signals = signal.SIGTERM) -> int:
        """Send ``signum`` and wait for the exit status (SIGKILL after :data:`STOP_TIMEOUT`)."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                await asyncio.to_thread(self.process.wait, STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return await asyncio.to_thread(self.process.wait)


async def start_relay(config: RelayConfig, workdir: Path) -> Relay:
    """Start ``python -m tokenrelay serve --config FILE`` and wait for its ``serving`` log line."""
    stdout_path, stderr_path = workdir / "relay.stdout", workdir / "relay.stderr"
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        process = await asyncio.to_thread(
            subprocess.Popen,
            [sys.executable, "-m", "tokenrelay", "serve", "--config", str(config.path)],
            env=cli_env(config.env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
    relay = Relay(process, "", "", stdout_path, stderr_path)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        serving = next((e for e in relay.events() if e.get("event") == "serving"), None)
        if serving is not None:
            relay.proxy_url, relay.admin_url = serving["proxy"], serving["admin"]
            return relay
        if process.poll() is not None:
            raise RuntimeError(f"tokenrelay serve exited with {process.returncode}: {relay.output()[-2000:]}")
        await asyncio.sleep(0.05)
    await relay.stop()
    raise RuntimeError(f"tokenrelay serve not listening after {STARTUP_TIMEOUT} s: {relay.output()[-2000:]}")


async def wait_for_readyz(
    session: aiohttp.ClientSession,
    relay: Relay,
    until: Callable[[int, dict[str, Any]], bool] = lambda status, _: status == 200,
) -> tuple[int, dict[str, Any]]:
    """Poll ``/readyz`` until ``until(status, body)``, for up to :data:`READY_TIMEOUT`; returns the last answer."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        async with session.get(f"{relay.admin_url}/readyz") as response:
            status, body = response.status, await response.json()
        if until(status, body) or time.monotonic() > deadline:
            return status, body
        await asyncio.sleep(0.05)


async def run_cli(*args: str, env: Mapping[str, str] = {}) -> subprocess.CompletedProcess[str]:
    """``python -m tokenrelay ARGS`` to completion, off the event loop (bounded)."""
    command = [sys.executable, "-m", "tokenrelay", *args]
    return await asyncio.to_thread(
        subprocess.run, command, env=cli_env(env), capture_output=True, text=True, timeout=30, check=False
    )


def grants_logged(provider: OidcProvider, client_id: str) -> int:
    """How many tokens the provider issued to ``client_id`` so far (its own ``grant.success`` log events)."""
    count = 0
    for line in provider.log_path.read_text(errors="replace").splitlines():
        if line.startswith("{") and '"grant.success"' in line:
            event = json.loads(line)
            count += event.get("event") == "grant.success" and event.get("client_id") == client_id
    return count


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def capture_tokens(app: web.Application) -> list[str]:
    """Record every bearer token ``app`` receives, in memory, for revocation and leak checks; call before start."""
    tokens: list[str] = []

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token:
            tokens.append(token.strip())
        return await handler(request)

    app.middlewares.append(record)
    return tokens


def leaks(output: str, credentials: tuple[str, ...], tokens: list[str]) -> list[str]:
    """What in ``output`` must never be there: a credential, a token, or anything JWT-shaped (described)."""
    found = [f"credential #{i}" for i, secret in enumerate(credentials) if secret and secret in output]
    found += [f"token #{i}" for i, token in enumerate(tokens) if token in output]
    found += [f"JWT-like string at {m.start()}" for m in JWT_LIKE.finditer(output)]
    return found
