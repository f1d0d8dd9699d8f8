"""What ``tokenrelay demo``'s steps use: where things listen, how the story is told, how counters are read.

Kept apart from :mod:`tokenrelay.demo` (which starts everything and runs the steps) so that each module has one
job: this one knows nothing about starting servers, only about telling and checking what they did. Every number
the demo prints is read over HTTP from a real counter (the dev IdP's ``/_dev/stats``, the sample API's
``/_sample/stats``, the proxy's ``/metrics`` and ``/tokens``), never from the demo's own bookkeeping.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TextIO

import aiohttp

if TYPE_CHECKING:
    from tokenrelay.devidp.server import DevStack
    from tokenrelay.server import Listening

__all__ = ["EXIT_FAILED", "EXIT_OK", "PROFILE", "DemoContext", "Endpoints", "Narrator", "metric_value"]

#: The profile the demo configures.
PROFILE: Final = "demo"
EXIT_OK: Final = 0
EXIT_FAILED: Final = 1


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Base URLs of the four listeners (all loopback, ephemeral ports)."""

    proxy: str
    admin: str
    idp: str
    api: str

    @classmethod
    def of(cls, stack: DevStack, listening: Listening) -> Endpoints:
        if listening.admin is None or stack.api_url is None:
            raise RuntimeError("the demo needs the admin listener and the sample API")
        return cls(_url(listening.proxy), _url(listening.admin), stack.idp_url, stack.api_url)


def _url(address: tuple[str, int]) -> str:
    host, port = address
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@dataclass(slots=True)
class Narrator:
    """Prints the story and keeps score: every ``check`` that fails makes the exit status 1."""

    out: TextIO
    failures: list[str] = field(default_factory=list)
    steps: int = 0

    @property
    def ok(self) -> bool:
        return not self.failures

    def _print(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def intro(self, endpoints: Endpoints) -> None:
        self._print("tokenrelay demo: a dev authorization server, a protected sample API and the proxy, on loopback")
        for what, url in (
            ("dev IdP (client credentials, JWT access tokens, JWKS, discovery)", endpoints.idp),
            ("sample API (validates the IdP's tokens)", endpoints.api),
            (f"proxy (route /api/ -> sample API, profile {PROFILE!r})", endpoints.proxy),
            ("proxy admin (/healthz /readyz /metrics /tokens)", endpoints.admin),
        ):
            self._print(f"  {what + ':':<68} {url}")

    def step(self, title: str) -> None:
        self.steps += 1
        self._print()
        self._print(f"{self.steps}. {title}")

    def command(self, text: str) -> None:
        self._print(f"   > {text}")

    def say(self, text: str) -> None:
        self._print(f"     {text}")

    def check(self, passed: bool, text: str) -> bool:
        """Report one expectation; a failed one is remembered for the summary and the exit status."""
        self._print(f"   [{'ok' if passed else 'FAILED'}] {text}")
        if not passed:
            self.failures.append(text)
        return passed

    def fail(self, text: str) -> None:
        self._print(f"   [FAILED] {text}")
        self.failures.append(text)

    def how_to_try(self, endpoints: Endpoints) -> None:
        self._print()
        self._print("Everything keeps running; try it by hand (Ctrl-C stops it):")
        for command in (
            f"curl -s {endpoints.proxy}/api/hello",
            f"curl -s {endpoints.proxy}/api/echo/anything?x=1",
            f"curl -s {endpoints.admin}/tokens",
            f"curl -s {endpoints.admin}/readyz",
            f"curl -s {endpoints.admin}/metrics",
            f"curl -s {endpoints.idp}/_dev/stats",
            f"curl -s -X POST {endpoints.idp}/_dev/revoke-recent -H 'Content-Type: application/json' -d '{{}}'",
            f"curl -s {endpoints.api}/_sample/stats",
        ):
            self._print(f"  {command}")

    def conclude(self) -> int:
        self._print()
        if self.ok:
            self._print("demo finished: every step behaved as expected")
            return EXIT_OK
        self._print(f"demo FAILED: {len(self.failures)} expectation(s) not met:")
        for failure in self.failures:
            self._print(f"  - {failure}")
        return EXIT_FAILED


@dataclass(frozen=True, slots=True)
class DemoContext:
    """The running endpoints, one client session, and the narrator; reads the real counters over HTTP."""

    endpoints: Endpoints
    session: aiohttp.ClientSession
    narrator: Narrator

    async def proxy_get(self, path: str) -> tuple[int, object]:
        """GET through the proxy, with no credentials; returns the status and the JSON body (or ``None``)."""
        async with self.session.get(self.endpoints.proxy + path) as response:
            body = await response.json(content_type=None) if response.content_type == "application/json" else None
            return response.status, body

    async def _json(self, url: str) -> Any:
        async with self.session.get(url) as response:
            response.raise_for_status()
            return await response.json(content_type=None)

    async def idp_token_requests(self) -> int:
        stats = await self._json(f"{self.endpoints.idp}/_dev/stats")
        return int(stats["totals"]["token_requests"])

    async def idp_last_issued(self) -> str | None:
        """The fingerprint of the token the IdP issued last (``/_dev/stats`` shows fingerprints only)."""
        recent = (await self._json(f"{self.endpoints.idp}/_dev/stats")).get("recent_tokens") or []
        return str(recent[-1]["token"]) if recent else None

    async def api_stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = await self._json(f"{self.endpoints.api}/_sample/stats")
        return stats

    async def metrics(self) -> str:
        async with self.session.get(f"{self.endpoints.admin}/metrics") as response:
            response.raise_for_status()
            return await response.text()

    async def tokens(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = (await self._json(f"{self.endpoints.admin}/tokens")).get("tokens", [])
        return entries


_SAMPLE: Final = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL: Final = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def metric_value(exposition: str, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``, in Prometheus text exposition (0 if none)."""
    total = 0.0
    for line in exposition.splitlines():
        match = _SAMPLE.match(line)
        if match is None or match.group(1) != name:
            continue
        found = dict(_LABEL.findall(match.group(2) or ""))
        if all(found.get(key) == value for key, value in labels.items()):
            total += float(match.group(3))
    return total
