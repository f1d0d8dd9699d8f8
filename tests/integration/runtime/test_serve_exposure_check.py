"""``serve()`` itself refuses a listener exposed beyond loopback without an access policy, before binding anything.

The CLI checks this in ``load_settings``; embedding code that builds its settings and calls
``tokenrelay.server.serve`` directly must get the same refusal. Nothing here binds a non-loopback address: the
services (and so every listener) are replaced by a sentinel, so a missing check shows up as the sentinel being
reached, never as a socket on ``0.0.0.0``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

import tokenrelay.server
from tokenrelay.config_loader import load_settings
from tokenrelay.grant.errors import ConfigError
from tokenrelay.server import serve
from tokenrelay.settings import Settings, build_settings


class ServicesReached(Exception):
    """Raised by the sentinel: startup got past the exposure check to creating the services."""


@pytest.fixture(name="reached")
def _no_services(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    """Replace the services ``serve`` starts with a sentinel that records the call and stops startup there."""
    calls: list[Settings] = []

    @contextlib.asynccontextmanager
    async def sentinel(settings: Settings, **_: Any) -> AsyncIterator[None]:
        calls.append(settings)
        raise ServicesReached
        yield  # pragma: no cover - never reached; makes this an async generator

    monkeypatch.setattr(tokenrelay.server, "proxy_services", sentinel)
    return calls


def exposed(**sections: Any) -> Settings:
    return build_settings({"listen": {"host": "0.0.0.0", "port": 0}} | sections)


async def test_exposed_proxy_listener_without_a_policy_is_refused_before_startup(reached: list[Settings]) -> None:
    with pytest.raises(ConfigError) as caught:
        await serve(exposed())
    assert caught.value.paths == ("listen.host",)
    assert "not a loopback address" in str(caught.value)
    assert reached == []


async def test_exposed_admin_listener_with_only_api_keys_is_refused(reached: list[Settings]) -> None:
    settings = build_settings({"admin": {"enabled": True, "host": "::", "port": 0}, "access": {"api_keys": ["k" * 32]}})
    with pytest.raises(ConfigError) as caught:
        await serve(settings)
    assert caught.value.paths == ("admin.host",)
    assert reached == []


async def test_the_refusal_reads_exactly_like_the_cli_one(reached: list[Settings]) -> None:
    with pytest.raises(ConfigError) as from_loader:
        load_settings(None, flags={"listen": {"host": "0.0.0.0", "port": 0}})
    with pytest.raises(ConfigError) as from_serve:
        await serve(exposed())
    assert str(from_serve.value) == str(from_loader.value)
    assert reached == []


@pytest.mark.parametrize(
    "access",
    [{"allow_clients": ["10.0.0.0/8"]}, {"open": True}],
    ids=["allow-clients", "open"],
)
async def test_exposed_listeners_with_an_access_policy_go_on_to_start(
    reached: list[Settings], access: dict[str, Any]
) -> None:
    settings = exposed(admin={"enabled": True, "host": "0.0.0.0", "port": 0}, access=access)
    with pytest.raises(ServicesReached):
        await serve(settings)
    assert reached == [settings]


async def test_loopback_listeners_need_no_policy(reached: list[Settings]) -> None:
    with pytest.raises(ServicesReached):
        await serve(build_settings({"listen": {"host": "127.0.0.1", "port": 0}}))
    assert len(reached) == 1
