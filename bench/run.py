"""CPU per request and added latency: tokenrelay against a naive static-token proxy, one run on loopback.

Every process gets its own port on 127.0.0.1: the backends (upstream API + token endpoint), the naive proxy, and
tokenrelay (``tokenrelay serve`` with a generated config, all default features on: access log, metrics, request
ids, 401 replay buffering). The load generator is this process. CPU is read from /proc for the proxy process only
(user + system time over the measured phase), so the load generator's own cost does not count; latency is
measured at the client, and "added" means minus the median of the same load sent straight to the upstream.

Both proxies run on the same event loop: uvloop when it is importable (``tokenrelay serve`` uses it then), else
asyncio's. Put uvloop on ``PYTHONPATH`` to compare with it, leave it out to compare without.

On a shared machine one run is noisy (the kernel's loopback work lands in the proxy's system time, and other
processes steal the cores), so ``--repeat N`` measures the proxies N times, interleaved, and reports medians.

Usage: python bench/run.py [--requests 20000] [--concurrency 32] [--body-bytes 0] [--repeat 1] [--json out.json]
Bounded: each phase stops after --requests requests or --max-seconds, whichever comes first.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp
import yaml

HERE = Path(__file__).resolve().parent
TOKEN = "bench-token-0123456789abcdef"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Phase:
    name: str
    requests: int
    errors: int
    seconds: float
    cpu_seconds: float | None
    user_seconds: float | None
    p50_ms: float
    p99_ms: float

    @property
    def cpu_us_per_request(self) -> float | None:
        return None if self.cpu_seconds is None else self.cpu_seconds / self.requests * 1e6

    @property
    def user_us_per_request(self) -> float | None:
        return None if self.user_seconds is None else self.user_seconds / self.requests * 1e6


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> tuple[float, float]:
    """``(user + system, user)`` CPU seconds of one process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    user, system = int(fields[11]), int(fields[12])
    return (user + system) / CLOCK_TICKS, user / CLOCK_TICKS


def start(args: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)  # type: ignore[call-overload]


async def wait_ready(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as response:
                    if response.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up in {timeout} s")


async def load(
    url: str, *, requests: int, concurrency: int, body: bytes, max_seconds: float
) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    remaining = requests
    deadline = time.monotonic() + max_seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal remaining, errors
            while remaining > 0 and time.monotonic() < deadline:
                remaining -= 1
                started = time.perf_counter()
                method = "POST" if body else "GET"
                try:
                    async with session.request(method, url, data=body or None) as response:
                        await response.read()
                        if response.status != 200:
                            errors += 1
                except aiohttp.ClientError:  # counted, like a non-200: one failure must not end the run
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors


async def measure(name: str, url: str, pid: int | None, options: argparse.Namespace) -> Phase:
    body = b"x" * options.body_bytes
    await load(url, requests=min(2000, options.requests), concurrency=options.concurrency, body=body, max_seconds=20)
    before = cpu_seconds(pid) if pid else None
    started = time.perf_counter()
    latencies, errors = await load(
        url, requests=options.requests, concurrency=options.concurrency, body=body, max_seconds=options.max_seconds
    )
    elapsed = time.perf_counter() - started
    after = cpu_seconds(pid) if pid else None
    cpu, user = (after[0] - before[0], after[1] - before[1]) if after and before else (None, None)
    if len(latencies) < 2:
        raise SystemExit(f"{name}: {errors} of {errors + len(latencies)} requests failed; nothing to measure")
    cuts = statistics.quantiles(latencies, n=100)
    return Phase(name, len(latencies), errors, elapsed, cpu, user, cuts[49] * 1e3, cuts[98] * 1e3)


def tokenrelay_config(directory: Path, port: int, admin_port: int, upstream_port: int, token_port: int) -> Path:
    config = {
        "listen": {"host": "127.0.0.1", "port": port},
        "admin": {"host": "127.0.0.1", "port": admin_port},
        "profiles": {
            "bench": {
                "client": {"id": "bench-client", "secret": "bench-secret"},
                "auth": {"token_host": f"http://127.0.0.1:{token_port}", "token_path": "/token"},
            }
        },
        "routes": [
            {
                "name": "bench",
                "match": {"path_prefix": "/"},
                "upstream": f"http://127.0.0.1:{upstream_port}/",
                "profile": "bench",
            }
        ],
    }
    path = directory / "tokenrelay.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def start_tokenrelay(
    config: Path, log_path: Path, options: argparse.Namespace, src: str | None
) -> subprocess.Popen[bytes]:
    """``tokenrelay serve``, its log to a file (as in production: a file or pipe, not a TTY); ``src`` goes first on
    ``PYTHONPATH`` (a copy of ``src/`` with the previous code, for an A/B of two tokenrelay processes)."""
    env = dict(os.environ)
    args = options.tokenrelay_arg if src is None else [*options.tokenrelay_arg, *options.baseline_arg]
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "tokenrelay", "serve", "--config", str(config), *args],
            stdout=log, stderr=log, env=env,
        )  # fmt: skip


def event_loop() -> str:
    """The loop both proxies run on: uvloop when importable (as ``tokenrelay serve`` decides), else asyncio."""
    return "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"


async def main(options: argparse.Namespace) -> int:
    ports = {name: free_port() for name in ("upstream", "token", "naive", "relay", "admin", "relay_b", "admin_b")}
    processes: list[subprocess.Popen[bytes]] = []
    loop = event_loop()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            processes.append(
                start([sys.executable, str(HERE / "backends.py"), str(ports["upstream"]), str(ports["token"])])
            )
            upstream = f"http://127.0.0.1:{ports['upstream']}"
            await wait_ready(upstream + "/ping")
            naive = start([sys.executable, str(HERE / "naive_proxy.py"), str(ports["naive"]), upstream, TOKEN, loop])
            processes.append(naive)
            config = tokenrelay_config(Path(tmp), ports["relay"], ports["admin"], ports["upstream"], ports["token"])
            relay = start_tokenrelay(config, Path(tmp) / "tokenrelay.log", options, None)
            processes.append(relay)
            baseline = None
            if options.baseline_src:  # the same config on its own ports, with another source tree first on the path
                (Path(tmp) / "b").mkdir()
                config_b = tokenrelay_config(
                    Path(tmp) / "b", ports["relay_b"], ports["admin_b"], ports["upstream"], ports["token"]
                )
                baseline = start_tokenrelay(config_b, Path(tmp) / "baseline.log", options, options.baseline_src)
                processes.append(baseline)
                await wait_ready(f"http://127.0.0.1:{ports['relay_b']}/ping")
            await wait_ready(f"http://127.0.0.1:{ports['naive']}/ping")
            await wait_ready(f"http://127.0.0.1:{ports['relay']}/ping")
            phases = [await measure("direct (no proxy)", upstream + "/items?page=1", None, options)]
            for _ in range(options.repeat):  # interleaved, so a burst of load elsewhere hits both proxies alike
                phases.append(
                    await measure("naive proxy", f"http://127.0.0.1:{ports['naive']}/items?page=1", naive.pid, options)
                )
                relay_url = f"http://127.0.0.1:{ports['relay']}/items?page=1"
                if baseline is None:
                    phases.append(await measure("tokenrelay", relay_url, relay.pid, options))
                    continue
                baseline_url = f"http://127.0.0.1:{ports['relay_b']}/items?page=1"
                if options.concurrent_ab:  # both loaded at once: a burst of load elsewhere hits both alike
                    phases += await asyncio.gather(
                        measure("tokenrelay", relay_url, relay.pid, options),
                        measure("baseline", baseline_url, baseline.pid, options),
                    )
                else:
                    phases.append(await measure("tokenrelay", relay_url, relay.pid, options))
                    phases.append(await measure("baseline", baseline_url, baseline.pid, options))
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=10)
    summary = report(phases, options, loop)
    if options.json:
        Path(options.json).write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if all(p.errors == 0 for p in phases) else 1


def report(phases: list[Phase], options: argparse.Namespace, loop: str) -> dict[str, object]:
    """Print the table (every phase, then the medians) and return the same figures for ``--json``."""
    direct = phases[0]
    print(
        f"{options.requests} requests per phase, concurrency {options.concurrency}, body {options.body_bytes} B, "
        f"loop {loop}, load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"{'phase':<20}{'req/s':>10}{'CPU µs/req':>12}{'user µs':>9}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'added p50 ms':>14}{'errors':>8}"
    )
    for phase in phases:
        cpu = f"{phase.cpu_us_per_request:.0f}" if phase.cpu_us_per_request is not None else "-"
        user = f"{phase.user_us_per_request:.0f}" if phase.user_us_per_request is not None else "-"
        print(
            f"{phase.name:<20}{phase.requests / phase.seconds:>10.0f}{cpu:>12}{user:>9}{phase.p50_ms:>9.2f}"
            f"{phase.p99_ms:>9.2f}{phase.p50_ms - direct.p50_ms:>14.2f}{phase.errors:>8}"
        )
    names = ("naive proxy", "tokenrelay", "baseline") if options.baseline_src else ("naive proxy", "tokenrelay")
    medians = {name: _medians([p for p in phases if p.name == name], direct) for name in names}
    naive, relay = medians["naive proxy"]["cpu_us"], medians["tokenrelay"]["cpu_us"]
    ratio = relay / naive if naive else None
    if options.repeat > 1:
        for name, figures in medians.items():
            print(
                f"median {name:<13}{figures['cpu_us']:>22.0f}{figures['user_us']:>9.0f}"
                f"{'':>18}{figures['added_p50_ms']:>14.2f}"
            )
    if ratio is not None:
        print(f"tokenrelay / naive CPU per request: {ratio:.2f}x (target <= 1.20x)")
    if options.baseline_src and naive:
        print(f"baseline / naive CPU per request: {medians['baseline']['cpu_us'] / naive:.2f}x")
    return {
        "requests": options.requests,
        "concurrency": options.concurrency,
        "body_bytes": options.body_bytes,
        "loop": loop,
        "tokenrelay_args": options.tokenrelay_arg,
        "phases": [{**asdict(p), "cpu_us_per_request": p.cpu_us_per_request} for p in phases],
        "medians": medians,
        "cpu_ratio": ratio,
    }


def _medians(phases: list[Phase], direct: Phase) -> dict[str, float]:
    return {
        "cpu_us": statistics.median(p.cpu_us_per_request or 0.0 for p in phases),
        "user_us": statistics.median(p.user_us_per_request or 0.0 for p in phases),
        "added_p50_ms": statistics.median(p.p50_ms - direct.p50_ms for p in phases),
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--body-bytes", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=120.0)
    parser.add_argument("--repeat", type=int, default=1, help="measure each proxy N times, interleaved; report medians")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument(
        "--baseline-src", metavar="DIR", help="also run a tokenrelay from this source tree (A/B), interleaved"
    )
    parser.add_argument(
        "--baseline-arg", action="append", default=[], help="extra argument for the baseline's `tokenrelay serve`"
    )
    parser.add_argument(
        "--concurrent-ab", action="store_true", help="with --baseline-src: load both tokenrelays at the same time"
    )
    parser.add_argument("--tokenrelay-arg", action="append", default=[], help="extra argument for `tokenrelay serve`")
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
