"""``tokenrelay serve`` refuses to listen beyond loopback without an access policy, whichever source asks for it.

The ``--host`` flag is covered in ``test_cli_commands``; an environment override reaches the same settings by
another road (a container's ``TOKENRELAY_LISTEN__HOST=0.0.0.0``), and the admin listener has its own rule: API
keys do not count for it, because health probes do not send them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.integration.cli.cli_support import run_cli
from tests.integration.runtime.runtime_support import FakeIdp, Upstream, relay_config


def write(tmp_path: Path, idp: FakeIdp, upstream: Upstream) -> Path:
    path = tmp_path / "relay.yaml"
    path.write_text(yaml.safe_dump(relay_config(idp, upstream)))
    return path


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        pytest.param({"TOKENRELAY_LISTEN__HOST": "0.0.0.0"}, "listen.host", id="proxy-ipv4-any"),
        pytest.param({"TOKENRELAY_LISTEN__HOST": "::"}, "listen.host", id="proxy-ipv6-any"),
        pytest.param(
            {"TOKENRELAY_ADMIN__HOST": "0.0.0.0", "TOKENRELAY_ACCESS__API_KEYS": '["a-key"]'},
            "admin.host",
            id="admin-with-api-keys-only",
        ),
    ],
)
async def test_exposed_listener_from_the_environment_is_refused_with_exit_2(
    tmp_path: Path,
    cli_env: dict[str, str],
    idp: FakeIdp,
    upstream: Upstream,
    overrides: dict[str, str],
    field: str,
) -> None:
    result = await run_cli("serve", "--config", write(tmp_path, idp, upstream), env=cli_env | overrides, limit=20)
    assert result.status == 2
    assert f"{field}:" in result.stderr
    assert "not a loopback address" in result.stderr
    assert "Traceback" not in result.stderr
