"""Loading and decoding the simple-oauth2 capture vectors (format: reference §12), and the capture server.

Shared by the vector replay test; kept out of ``conftest.py`` so it stays small.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web

REPO = Path(__file__).resolve().parents[3]
DEFAULT_VECTORS = REPO.parent / "shared" / "reference" / "vectors-sample.json"


def vectors_path() -> Path | None:
    """``$TOKENRELAY_VECTORS``, else ``../shared/reference/vectors-sample.json`` beside the clone."""
    configured = os.environ.get("TOKENRELAY_VECTORS")
    path = Path(configured) if configured else DEFAULT_VECTORS
    return path if path.is_file() else None


def load_vectors() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    path = vectors_path()
    if path is None:
        return {}, []
    document = json.loads(path.read_text(encoding="utf-8"))
    return document["meta"], document["vectors"]


# --- value decoding ------------------------------------------------------------------------------------


class _Omit:
    """A JavaScript ``undefined``: the key is left out on the Python side (reference §13, last item)."""


OMIT = _Omit()


def substitute(value: Any, placeholders: dict[str, str]) -> Any:
    """Replace ``{{BASE}}``-style placeholders in every string of ``value``."""
    if isinstance(value, str):
        for name, replacement in placeholders.items():
            value = value.replace(name, replacement)
        return value
    if isinstance(value, list):
        return [substitute(item, placeholders) for item in value]
    if isinstance(value, dict):
        return {key: substitute(item, placeholders) for key, item in value.items()}
    return value


def decode_input(value: Any) -> Any:
    """An input value: ``$undefined`` becomes :data:`OMIT` (dropped from dicts), ``$date`` a datetime."""
    if isinstance(value, dict):
        if value.get("$undefined") is True:
            return OMIT
        if "$date" in value and isinstance(value["$date"], str):
            return datetime.fromisoformat(value["$date"].replace("Z", "+00:00"))
        decoded = {key: decode_input(item) for key, item in value.items()}
        return {key: item for key, item in decoded.items() if item is not OMIT}
    if isinstance(value, list):
        return [decode_input(item) for item in value]
    return value


def decode_args(args: list[Any]) -> list[Any]:
    """Positional arguments; a trailing ``undefined`` argument is simply not passed."""
    decoded = [decode_input(arg) for arg in args]
    while decoded and decoded[-1] is OMIT:
        decoded.pop()
    return [None if arg is OMIT else arg for arg in decoded]


def node_config_to_python(config: Any) -> Any:
    """The Node config with the one unit change: ``http.timeout`` is seconds here, milliseconds in Wreck."""
    decoded = decode_input(config)
    if isinstance(decoded, dict) and isinstance(decoded.get("http"), dict):
        http = dict(decoded["http"])
        if isinstance(http.get("timeout"), int | float):
            http["timeout"] = http["timeout"] / 1000
        decoded = {**decoded, "http": http}
    return None if decoded is OMIT else decoded


# --- the capture servers -------------------------------------------------------------------------------


@dataclass
class Captured:
    server: str
    method: str
    target: str
    header_pairs: list[tuple[str, str]]
    body: bytes


@dataclass
class CaptureServers:
    """Two capture servers sharing one queue of canned responses, like the Node capture harness."""

    responses: list[dict[str, Any]] = field(default_factory=list)
    requests: list[Captured] = field(default_factory=list)
    runners: list[web.BaseRunner] = field(default_factory=list)
    bases: dict[str, str] = field(default_factory=dict)

    def handler(self, name: str) -> Any:
        async def handle(request: web.BaseRequest) -> web.StreamResponse:
            body = await request.read()
            pairs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers]
            self.requests.append(Captured(name, request.method, request.raw_path, pairs, body))
            if not self.responses:
                return web.Response(status=599, text="no canned response left")
            canned = self.responses.pop(0)
            if canned.get("delay_ms"):
                await asyncio.sleep(canned["delay_ms"] / 1000)
            return web.Response(
                status=canned["status"],
                reason=canned.get("reason"),
                headers=canned.get("headers", {}),
                body=canned.get("body", "").encode("utf-8"),
            )

        return handle

    async def start(self, name: str) -> str:
        server = web.Server(self.handler(name))
        runner = web.ServerRunner(server)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.runners.append(runner)
        port = runner.addresses[0][1]
        self.bases[name] = f"http://127.0.0.1:{port}"
        return self.bases[name]

    async def stop(self) -> None:
        for runner in self.runners:
            await runner.cleanup()


def dead_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def placeholders_for(bases: dict[str, str], dead: int) -> dict[str, str]:
    host = bases["BASE"].removeprefix("http://")
    host2 = bases["BASE2"].removeprefix("http://")
    dead_host = f"127.0.0.1:{dead}"
    return {
        "{{BASE}}": bases["BASE"],
        "{{HOST}}": host,
        "{{BASE2}}": bases["BASE2"],
        "{{HOST2}}": host2,
        "{{DEAD_BASE}}": f"http://{dead_host}",
        "{{DEAD_HOST}}": dead_host,
    }


class FrozenClock:
    """A wall clock frozen at a vector's ``now_ms`` (moved for ``expired`` vectors)."""

    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> float:
        return self.now_ms / 1000
