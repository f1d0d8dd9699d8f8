"""``--allow-non-loopback`` in process, the servers stubbed out so nothing binds beyond loopback: the flag reaches
the runner and a warning says it is a development server."""

from __future__ import annotations

from typing import Any

import pytest

from tests.shared_fixtures import restore_logging as restore_logging  # autouse: the commands configure logging
from tokenrelay import cli
from tokenrelay.devidp import server as devidp_server


@pytest.fixture(name="calls")
def _calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    """Replace both blocking runners by recorders."""
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def recorder(name: str) -> Any:
        def record(*args: Any, **kwargs: Any) -> None:
            calls.append((name, args, kwargs))

        return record

    monkeypatch.setattr(devidp_server, "run_dev_idp", recorder("dev-idp"))
    monkeypatch.setattr(devidp_server, "run_sample_api", recorder("sample-api"))
    return calls


def test_dev_idp_on_a_non_loopback_host_needs_the_flag_and_warns(
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["dev-idp", "--host", "0.0.0.0", "--port", "9000", "--issuer", "http://dev-idp:9000/"]
    assert cli.main(argv) == 2
    assert calls == []
    assert cli.main([*argv, "--allow-non-loopback", "--log-format", "console"]) == 0
    (name, args, kwargs), *_ = calls
    assert (name, args[:2]) == ("dev-idp", ("0.0.0.0", 9000))
    assert (kwargs["allow_non_loopback"], kwargs["issuer"]) == (True, "http://dev-idp:9000")
    err = capsys.readouterr().err
    assert "WARNING" in err
    assert "development server" in err


def test_sample_api_on_a_non_loopback_host_with_the_flag_warns(
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["sample-api", "--host", "0.0.0.0", "--port", "9100", "--issuer", "http://dev-idp:9000"]
    argv += ["--jwks-url", "http://dev-idp:9000/jwks", "--audience", "api://x", "--allow-non-loopback"]
    assert cli.main([*argv, "--log-format", "console"]) == 0
    ((name, args, kwargs),) = calls
    assert (name, args) == ("sample-api", ("0.0.0.0", 9100))
    assert kwargs == {
        "issuer": "http://dev-idp:9000",
        "jwks_url": "http://dev-idp:9000/jwks",
        "audience": "api://x",
        "allow_non_loopback": True,
    }
    assert "WARNING" in capsys.readouterr().err


def test_loopback_host_gets_no_warning(
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["dev-idp", "--allow-non-loopback", "--log-format", "console"]) == 0
    assert len(calls) == 1
    assert "WARNING" not in capsys.readouterr().err
