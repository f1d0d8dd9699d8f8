"""``tokenrelay demo`` as a user runs it: a subprocess, embedded defaults, loopback, a story with real numbers.

The scripted run is started once per module (about a second) and its output checked by several tests, one
behaviour each. Every run fixes the dev IdP's demo-client secret through ``TOKENRELAY_DEV_IDP_SECRET`` so the
tests can prove it never appears in the output, in any encoding.
"""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote_plus

import pytest

from tokenrelay.demo import metric_value

RUN_TIMEOUT = 60.0
#: The demo client's secret for these runs: distinctive, so any leak is found by a plain substring search.
SECRET = "demo-secret:Zq8+/w%41 never-print-me"
#: A JWS/JWT in compact form: base64url header (``{"`` -> ``ey``), a dot, a payload.
JWT_LIKE = re.compile(r"ey[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")


@dataclass(frozen=True, slots=True)
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def demo_env(**extra: str) -> dict[str, str]:
    """The caller's environment without any ``TOKENRELAY_*`` setting, plus the fixed demo secret and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("TOKENRELAY_")}
    return {**env, "TOKENRELAY_DEV_IDP_SECRET": SECRET, "PYTHONUNBUFFERED": "1", **extra}


def run_demo(*args: str, **env: str) -> Run:
    done = subprocess.run(
        [sys.executable, "-m", "tokenrelay", "demo", *args],
        env=demo_env(**env),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def demo() -> Run:
    return run_demo()


def test_demo_exits_0_when_every_step_behaves(demo: Run) -> None:
    assert demo.returncode == 0, demo.output
    assert "demo finished: every step behaved as expected" in demo.stdout
    assert "[FAILED]" not in demo.stdout


def test_demo_reports_one_token_request_for_twenty_concurrent_requests(demo: Run) -> None:
    assert "[ok] 20 of 20 answered 200" in demo.stdout
    assert "[ok] the IdP saw 1 token request for all of them" in demo.stdout
    assert 'tokenrelay_token_fetches_total{profile="demo",outcome="ok"} = 1' in demo.stdout


def test_demo_shows_the_injected_header_as_the_issued_tokens_fingerprint(demo: Run) -> None:
    received = re.search(r"received 'Authorization: Bearer <token ([0-9a-f]{8})>' and answered 200", demo.stdout)
    issued = re.search(r"the token the IdP issued \(fingerprint ([0-9a-f]{8})\)", demo.stdout)

    assert received is not None, demo.stdout
    assert issued is not None, demo.stdout
    assert received.group(1) == issued.group(1)


def test_demo_shows_a_forced_refresh_and_replay_after_revocation(demo: Run) -> None:
    revoked = re.search(r"revoked 1 token at the IdP \(fingerprint ([0-9a-f]{8})\)", demo.stdout)
    fresh = re.search(r"\[ok\] the client got 200, with the new token ([0-9a-f]{8})", demo.stdout)

    assert revoked is not None, demo.stdout
    assert fresh is not None, demo.stdout
    assert revoked.group(1) != fresh.group(1)
    assert "[ok] the sample API rejected the revoked token 1 time(s) with 401" in demo.stdout
    assert "[ok] the proxy replayed 1 request(s) with a fresh token" in demo.stdout
    assert "[ok] the IdP has now seen 2 token requests in total" in demo.stdout


def test_demo_shows_the_token_cache_summary(demo: Run) -> None:
    assert re.search(r"profile demo: token [0-9a-f]{8}, expires in [0-9.]+ s, fetched 2 time\(s\)", demo.stdout)


def test_demo_output_contains_no_token_and_no_secret(demo: Run) -> None:
    basic = base64.b64encode(f"demo-client:{quote_plus(SECRET, safe='')}".encode()).decode()

    assert JWT_LIKE.findall(demo.output) == []
    for form in (SECRET, quote_plus(SECRET, safe=""), basic, "never-print-me"):
        assert form not in demo.output


def test_demo_exits_1_and_says_what_went_wrong() -> None:
    """A scope the demo client may not have (through the usual environment override) breaks step 1."""
    broken = run_demo(TOKENRELAY_PROFILES__DEMO__SCOPE="sample.not-granted")

    assert broken.returncode == 1, broken.output
    assert "[FAILED] 0 of 20 answered 200" in broken.stdout
    assert "HTTP 503 token_unavailable" in broken.stdout
    assert "invalid_scope" in broken.stdout
    assert "demo FAILED" in broken.stdout


@pytest.fixture
def kept_running() -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tokenrelay.demo", "--keep-running"],
        env=demo_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stdout is not None
        process.stdout.close()


def read_until(process: subprocess.Popen[str], marker: str, timeout: float = 30.0) -> str:
    assert process.stdout is not None
    deadline, lines = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if marker in line:
            return "".join(lines)
    raise AssertionError(f"{marker!r} not printed; got:\n{''.join(lines)}")


def test_demo_keep_running_serves_the_printed_urls_until_interrupted(kept_running: subprocess.Popen[str]) -> None:
    printed = read_until(kept_running, "curl -s http://127.0.0.1")
    proxy_url = re.search(r"curl -s (http://127\.0\.0\.1:\d+/api/hello)", printed)
    assert proxy_url is not None, printed

    with urllib.request.urlopen(proxy_url.group(1), timeout=10) as response:  # noqa: S310 (loopback URL)
        assert response.status == 200
    kept_running.send_signal(signal.SIGINT)

    assert kept_running.wait(timeout=15) == 0


def test_metric_value_sums_the_samples_with_matching_labels() -> None:
    exposition = (
        "# TYPE tokenrelay_token_fetches_total counter\n"
        'tokenrelay_token_fetches_total{profile="demo",outcome="ok"} 2\n'
        'tokenrelay_token_fetches_total{outcome="ok",profile="other"} 5\n'
        'tokenrelay_token_fetches_total{profile="demo",outcome="error"} 1\n'
        'tokenrelay_token_fetches_total_created{profile="demo",outcome="ok"} 9\n'
    )

    assert metric_value(exposition, "tokenrelay_token_fetches_total", profile="demo", outcome="ok") == 2
    assert metric_value(exposition, "tokenrelay_token_fetches_total", outcome="ok") == 7
    assert metric_value(exposition, "tokenrelay_replays_total") == 0
