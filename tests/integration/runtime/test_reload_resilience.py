"""The reload triggers survive an unexpected failure: the old config keeps serving and the loops go on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import yaml
from structlog.testing import capture_logs

from tests.integration.runtime.runtime_support import FakeIdp, Upstream, relay_config
from tokenrelay import reload
from tokenrelay.reload import ReloadController
from tokenrelay.runtime import RuntimeHolder, compile_runtime
from tokenrelay.settings import Settings, build_settings
from tokenrelay.tokens import TokenCache


@pytest.fixture(name="holder")
async def _holder(idp: FakeIdp, upstream: Upstream) -> AsyncIterator[RuntimeHolder]:
    config = relay_config(idp, upstream, server={"shutdown_grace": 5.0, "secret_check_interval": 0.02})
    async with aiohttp.ClientSession() as session:
        cache = TokenCache()
        runtime = await compile_runtime(build_settings(config), session=session, previous=None)
        holder = RuntimeHolder(runtime, session=session, cache=cache)
        yield holder
        await holder.aclose()
        await cache.aclose()


def _bug(*_: object, **__: object) -> Settings:
    raise RuntimeError("a bug, not a bad file")


async def test_an_unexpected_failure_while_reloading_keeps_the_old_config(
    holder: RuntimeHolder, idp: FakeIdp, upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "relay.yaml"
    path.write_text(yaml.safe_dump(relay_config(idp, upstream)))
    controller = ReloadController(holder, config_path=path, flags={})
    before = holder.current
    with monkeypatch.context() as patch, capture_logs() as logs:
        patch.setattr(reload, "load_settings", _bug)
        assert await controller.reload_from_file() is False
    assert holder.current is before
    assert [(e["event"], e["error"]) for e in logs if e["event"] == "config_reload_failed"] == [
        ("config_reload_failed", "RuntimeError")
    ]
    assert await controller.reload_from_file() is True  # the next trigger works again


async def test_a_failing_credential_check_round_does_not_end_the_checks(
    holder: RuntimeHolder, monkeypatch: pytest.MonkeyPatch
) -> None:
    rounds = 0
    third_round = asyncio.Event()

    async def flaky() -> None:
        nonlocal rounds
        rounds += 1
        if rounds == 3:
            third_round.set()
        if rounds == 1:
            raise OSError("disk hiccup")

    monkeypatch.setattr(holder, "check_rotation", flaky)
    controller = ReloadController(holder, config_path=None, flags={})
    with capture_logs() as logs:
        controller.start()
        try:
            await asyncio.wait_for(third_round.wait(), 5)
        finally:
            await controller.aclose()
    assert rounds >= 3
    assert [e["error"] for e in logs if e["event"] == "credential_check_failed"] == ["OSError"]
