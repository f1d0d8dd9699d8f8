"""``http.timeout``: 30 seconds unless configured, where simple-oauth2 has none; an explicit ``None`` is no timeout."""

from __future__ import annotations

from typing import Any

from tokenrelay.grant import HttpConfig
from tokenrelay.grant.config import DEFAULT_TIMEOUT, validate_config, validate_http_options
from tokenrelay.grant.request import merge_http_options
from tokenrelay.grant.transport import _timeout


def minimal(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "client": {"id": "client-id", "secret": "s"},
        "auth": {"token_host": "https://idp.example"},
    }
    config.update(overrides)
    return config


def test_http_timeout_defaults_to_30_seconds() -> None:
    assert DEFAULT_TIMEOUT == 30.0
    assert validate_config(minimal()).http.timeout == 30.0


def test_explicit_null_timeout_means_no_timeout() -> None:
    assert validate_config(minimal(http={"timeout": None})).http.timeout is None


def test_transport_bounds_a_default_request_by_30_seconds() -> None:
    assert _timeout(validate_config(minimal()).http).total == 30.0


def test_transport_sends_an_explicit_null_timeout_unbounded() -> None:
    """``total=None`` on the request also overrides the session's own 5-minute default."""
    assert _timeout(HttpConfig(timeout=None)).total is None


def test_per_call_options_without_a_timeout_keep_the_configs_null() -> None:
    """The default of a per-call ``http_options`` must not silently re-impose 30 s on a no-timeout config."""
    config = validate_config(minimal(http={"timeout": None})).http
    merged = merge_http_options(config, validate_http_options({"headers": {"X-Trace": "1"}}))
    assert merged.timeout is None


def test_per_call_timeout_still_replaces_the_default() -> None:
    merged = merge_http_options(validate_config(minimal()).http, validate_http_options({"timeout": 2}))
    assert merged.timeout == 2
