"""``serve`` freezes the startup heap when asked (``run``, the CLI's entry point, asks), and only then."""

from __future__ import annotations

import gc
from collections.abc import Iterator, MutableMapping
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from tests.integration.runtime.runtime_support import FakeIdp, Upstream, relay_config
from tests.integration.serving_support import serving
from tokenrelay import server
from tokenrelay.settings import build_settings


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    """The test process is left as it was: nothing frozen before, nothing frozen after."""
    gc.unfreeze()
    yield
    gc.unfreeze()


Logs = list[MutableMapping[str, Any]]


async def _serve_once(idp: FakeIdp, upstream: Upstream, **options: Any) -> tuple[int, int, Logs]:
    """Start ``serve``, proxy one request, stop; the freeze count while serving and after the request."""
    with capture_logs() as logs:
        async with serving(relay_config(idp, upstream), **options) as listening:
            frozen = gc.get_freeze_count()
            host, port = listening.proxy
            async with (
                aiohttp.ClientSession() as client,
                client.get(f"http://{host}:{port}/billing/invoices") as answer,
            ):
                assert answer.status == 200
            after = gc.get_freeze_count()
    return frozen, after, logs


async def test_serve_with_freeze_heap_freezes_what_startup_left(idp: FakeIdp, upstream: Upstream) -> None:
    serving, after, logs = await _serve_once(idp, upstream, freeze_heap=True)
    assert serving > 1000  # modules, validators, the compiled configuration
    assert after <= serving  # requests add nothing to the frozen generation (frozen objects can still be freed)
    started = next(entry for entry in logs if entry["event"] == "serving")
    assert started["frozen_objects"] >= serving


async def test_serve_leaves_the_heap_alone_by_default(idp: FakeIdp, upstream: Upstream) -> None:
    """Code embedding ``serve`` in a process of its own decides for that process."""
    serving, _, logs = await _serve_once(idp, upstream)
    assert serving == 0
    assert next(entry for entry in logs if entry["event"] == "serving")["frozen_objects"] is None


def test_run_serves_with_the_heap_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's process is tokenrelay's own: ``run`` asks ``serve`` for the freeze."""
    seen: dict[str, Any] = {}

    async def fake_serve(settings: object, **options: Any) -> None:
        seen.update(options)

    monkeypatch.setattr(server, "serve", fake_serve)
    assert server.run(build_settings({"routes": []})) == server.EXIT_OK
    assert seen["freeze_heap"] is True
