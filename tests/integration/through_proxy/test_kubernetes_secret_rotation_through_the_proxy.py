"""A ``secret_file`` rotated the way the kubelet does it (an atomic ``..data`` symlink swap) gives a new token.

A Kubernetes secret volume holds ``secret -> ..data/secret`` and ``..data -> ..<timestamp>``; an update writes a
new timestamped directory and renames a new ``..data`` symlink over the old one. The file the config names never
changes as a path, and its new content may even keep the old mtime: only following the link (and comparing the
content) sees the rotation.
"""

from __future__ import annotations

import os
from pathlib import Path

import aiohttp
import pytest

from tests.integration.serving_support import eventually, serving
from tests.integration.through_proxy.support import (
    EchoUpstream,
    SwitchableIdp,
    fetch,
    one_route_config,
    url,
)


def publish(volume: Path, version: str, secret: str, mtime_ns: int | None = None) -> None:
    """Write ``..<version>/client-secret`` and atomically point ``..data`` at it, as the kubelet does."""
    directory = volume / f"..{version}"
    directory.mkdir()
    (directory / "client-secret").write_text(secret)
    if mtime_ns is not None:
        os.utime(directory / "client-secret", ns=(mtime_ns, mtime_ns))
    staging = volume / "..data_tmp"
    staging.symlink_to(directory.name)
    staging.replace(volume / "..data")


@pytest.mark.skipif(os.name != "posix", reason="symlinks")
async def test_symlink_swapped_secret_file_gives_a_new_token(
    idp: SwitchableIdp, upstream: EchoUpstream, tmp_path: Path
) -> None:
    volume = tmp_path / "secret-volume"
    volume.mkdir()
    publish(volume, "2026_11_26_01", "first-secret-value")
    (volume / "client-secret").symlink_to("..data/client-secret")
    first_mtime_ns = (volume / "client-secret").stat().st_mtime_ns
    config = one_route_config(
        idp, upstream, client={"id": "relay-client", "secret_file": str(volume / "client-secret")}
    )
    config["server"]["secret_check_interval"] = 0.05
    async with serving(config) as listening, aiohttp.ClientSession() as client:
        assert (await fetch(client, url(listening.proxy, "/billing/a"))).body["authorization"] == "Bearer tok-1"
        publish(volume, "2026_11_26_02", "other-secret-value", mtime_ns=first_mtime_ns)  # same size and mtime

        async def rotated() -> bool:
            answer = await fetch(client, url(listening.proxy, "/billing/b"))
            return bool(answer.body["authorization"] == "Bearer tok-2")

        await eventually(rotated, limit=5, interval=0.05)
    assert idp.issued == 2
