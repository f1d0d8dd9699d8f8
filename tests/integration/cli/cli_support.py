"""Running ``python -m tokenrelay`` as a subprocess from async tests, and waiting for its listeners."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml


@dataclass(frozen=True)
class Result:
    status: int
    stdout: str
    stderr: str


async def run_cli(*args: str | Path, env: dict[str, str], limit: float = 30.0) -> Result:
    """Run the CLI to completion without blocking the loop (the test's servers keep answering)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tokenrelay",
        *map(str, args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), limit)
    assert process.returncode is not None
    return Result(process.returncode, stdout.decode(), stderr.decode())


async def spawn_serve(
    tmp_path: Path, config: Mapping[str, Any], env: dict[str, str], *args: str, stdout: int, stderr: int
) -> tuple[asyncio.subprocess.Process, Path]:
    """Write ``config`` to ``tmp_path/relay.yaml`` and start ``python -m tokenrelay serve --config`` on it with
    ``args``; returns at once (see :func:`wait_until_healthy`) with the process and the config file's path."""
    path = tmp_path / "relay.yaml"
    path.write_text(yaml.safe_dump(dict(config)))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tokenrelay", "serve", "--config", str(path), *args, stdout=stdout, stderr=stderr, env=env
    )
    return process, path


def free_port() -> int:
    """A port that was free a moment ago (a subprocess listener cannot report a port-0 binding back easily)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def wait_until_healthy(admin_port: int, process: asyncio.subprocess.Process, limit: float = 20.0) -> None:
    """Poll the admin ``/healthz`` until it answers; fail early if the process exits."""
    deadline = asyncio.get_running_loop().time() + limit
    async with aiohttp.ClientSession() as client:
        while asyncio.get_running_loop().time() < deadline:
            if process.returncode is not None:
                raise AssertionError(f"tokenrelay exited early with {process.returncode}")
            try:
                async with client.get(f"http://127.0.0.1:{admin_port}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("tokenrelay did not become healthy in time")
