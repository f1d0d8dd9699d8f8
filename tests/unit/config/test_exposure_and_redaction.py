"""Startup safety (no listener beyond loopback without an access policy) and secret redaction for check-config."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from tokenrelay.config_loader import exposure_problems
from tokenrelay.config_redaction import REDACTED, redacted
from tokenrelay.grant.urls import is_loopback_host as is_loopback
from tokenrelay.settings import Settings, build_settings

PROFILE = {
    "client": {"id": "relay", "secret": "client-secret-value"},
    "auth": {"token_host": "https://idp.example.com"},
    "http": {"headers": {"Authorization": "Basic header-secret-value", "X-Trace": "visible"}},
}


def settings(**sections: Any) -> Settings:
    return build_settings(sections)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST"])
def test_loopback_hosts(host: str) -> None:
    """Loopback addresses and ``localhost`` accept only local connections."""
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "10.0.0.5", "relay.internal"])
def test_non_loopback_hosts(host: str) -> None:
    """Wildcards, other addresses and other names count as exposed."""
    assert not is_loopback(host)


def test_loopback_listener_needs_no_policy() -> None:
    """The defaults (loopback listeners) pass the check."""
    assert exposure_problems(settings()) == []


def test_exposed_listener_without_policy_is_refused_with_the_reason() -> None:
    """``listen.host: 0.0.0.0`` without an access policy is refused, and the message says why and what to set."""
    problems = exposure_problems(settings(listen={"host": "0.0.0.0"}))
    assert [problem.path for problem in problems] == ["listen.host"]
    assert "credentials" in problems[0].message
    assert "access.allow_clients" in problems[0].message


@pytest.mark.parametrize(
    "access",
    [{"allow_clients": ["10.0.0.0/8"]}, {"api_keys": ["k" * 32]}, {"open": True}],
    ids=["allow_clients", "api_keys", "open"],
)
def test_exposed_listener_with_a_policy_is_accepted(access: dict[str, Any]) -> None:
    """Any one of allow_clients, api_keys or an explicit ``open: true`` makes an exposed listener acceptable."""
    assert exposure_problems(settings(listen={"host": "0.0.0.0"}, access=access)) == []


def test_exposed_admin_is_not_covered_by_api_keys() -> None:
    """Health probes send no API key, so keys do not make an exposed admin listener acceptable."""
    problems = exposure_problems(settings(admin={"host": "0.0.0.0"}, access={"api_keys": ["k" * 32]}))
    assert [problem.path for problem in problems] == ["admin.host"]


def test_exposed_admin_with_allow_clients_is_accepted() -> None:
    """``allow_clients`` (which the admin listener enforces too) makes an exposed admin listener acceptable."""
    assert exposure_problems(settings(admin={"host": "0.0.0.0"}, access={"allow_clients": ["10.0.0.0/8"]})) == []


def test_disabled_admin_is_not_checked() -> None:
    """A disabled admin listener binds nothing, so its host does not matter."""
    assert exposure_problems(settings(admin={"enabled": False, "host": "0.0.0.0"})) == []


def test_redacted_config_contains_no_secret() -> None:
    """Client secrets, Authorization headers and API keys are masked; everything else stays readable."""
    config = settings(profiles={"billing": PROFILE}, access={"api_keys": ["api-key-secret-value"]})
    text = yaml.safe_dump(redacted(config))
    for secret in ("client-secret-value", "header-secret-value", "api-key-secret-value"):
        assert secret not in text
    data = redacted(config)
    assert data["profiles"]["billing"]["client"] == {"id": "relay", "secret": REDACTED}
    assert data["profiles"]["billing"]["http"]["headers"] == {"Authorization": REDACTED, "X-Trace": "visible"}
    assert data["access"]["api_keys"] == REDACTED


def test_redacted_config_keeps_secret_sources_visible() -> None:
    """Where a secret comes from (a file path, a variable name) is not a secret and is shown."""
    profile = {**PROFILE, "client": {"id": "relay", "secret_env": "RELAY_SECRET"}}
    data = redacted(settings(profiles={"billing": profile}))
    assert data["profiles"]["billing"]["client"] == {"id": "relay", "secret_env": "RELAY_SECRET"}


def test_redacted_config_is_plain_yaml_data() -> None:
    """Paths, networks and URLs become strings so the output is safe_dump-able YAML."""
    config = settings(access={"allow_clients": ["10.0.0.0/8"]}, profiles={"billing": PROFILE})
    data = yaml.safe_load(yaml.safe_dump(redacted(config)))
    assert data["access"]["allow_clients"] == ["10.0.0.0/8"]


def test_redacted_config_masks_cookies_api_keys_and_camel_case_keys() -> None:
    """Any header or key that the log pipeline treats as a credential is masked here too, in either key style."""
    profile = {
        "client": {"id": "relay", "privateKey": "inline-key-value"},
        "auth": {"token_host": "https://idp.example.com"},
        "options": {"authorization_method": "private_key_jwt"},
        "http": {"headers": {"Cookie": "session=cookie-value", "X-Api-Key": "api-key-value"}},
    }
    text = yaml.safe_dump(redacted(settings(profiles={"billing": profile})))
    for secret in ("inline-key-value", "cookie-value", "api-key-value"):
        assert secret not in text


def test_redacted_config_masks_url_userinfo() -> None:
    """A password in an upstream or token host URL is masked; the rest of the URL stays readable."""
    route = {"name": "r", "match": {"path_prefix": "/r/"}, "upstream": "https://user:url-password@api.example/v1/"}
    data = redacted(settings(routes=[{**route, "profile": None}]))
    assert data["routes"][0]["upstream"] == f"https://{REDACTED}@api.example/v1/"


def test_settings_repr_shows_no_secret() -> None:
    """A profile's free-form client and http parts (plain strings until compiled) stay out of ``repr``."""
    shown = repr(settings(profiles={"billing": PROFILE}))
    assert "client-secret-value" not in shown
    assert "header-secret-value" not in shown
    assert "idp.example.com" in shown


def test_validation_errors_do_not_quote_a_secret() -> None:
    """A bad profile fails with its path, never with its input: the secret next to the mistake stays hidden."""
    bad = {**PROFILE, "client": {"secret": "hunter2", "id": "relay", "secret_env": "ALSO"}}
    with pytest.raises(ValidationError) as caught:
        settings(profiles={"billing": bad})
    shown = str(caught.value)
    assert "hunter2" not in shown
    assert "profiles.billing.client" in shown
