"""Loading the config: file formats, key styles, environment overrides, the source precedence, error reports."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tokenrelay.config_loader import format_config_error, load_settings, read_config_file
from tokenrelay.grant.errors import ConfigError

WriteConfig = Callable[[str, str], Path]

YAML_CONFIG = """\
listen:
  port: 8100
profiles:
  billing:
    client:
      id: billing-client
      secret: billing-secret-value
    auth:
      tokenHost: https://idp.example.com
      tokenPath: /oauth2/token
    options:
      authorizationMethod: body
    scope: [invoices.read, invoices.write]
routes:
  - name: billing
    match: {path_prefix: /billing}
    upstream: https://billing.example.com
    profile: billing
"""

TOML_CONFIG = """\
[listen]
port = 8100

[profiles.billing.client]
id = "billing-client"
secret = "billing-secret-value"

[profiles.billing.auth]
token_host = "https://idp.example.com"
token_path = "/oauth2/token"

[[routes]]
name = "billing"
match = { path_prefix = "/billing" }
upstream = "https://billing.example.com"
profile = "billing"
"""


def test_yaml_file_loads(write_config: WriteConfig) -> None:
    """A YAML file gives the listener, the profile and the route it declares."""
    settings = load_settings(write_config("relay.yaml", YAML_CONFIG))
    assert settings.listen.port == 8100
    assert settings.profiles["billing"].client["id"] == "billing-client"
    assert [route.name for route in settings.routes] == ["billing"]


def test_toml_file_loads(write_config: WriteConfig) -> None:
    """A ``.toml`` file is read as TOML and gives the same settings."""
    settings = load_settings(write_config("relay.toml", TOML_CONFIG))
    assert settings.listen.port == 8100
    assert settings.profiles["billing"].auth["token_host"] == "https://idp.example.com"
    assert settings.routes[0].profile == "billing"


def test_camel_case_grant_keys_are_accepted(write_config: WriteConfig) -> None:
    """simple-oauth2's camelCase keys (``tokenHost``, ``authorizationMethod``) load unchanged."""
    settings = load_settings(write_config("relay.yaml", YAML_CONFIG))
    mapping = settings.profiles["billing"].grant_mapping()
    assert mapping["auth"]["tokenHost"] == "https://idp.example.com"
    assert mapping["options"]["authorizationMethod"] == "body"


def test_empty_file_gives_defaults(write_config: WriteConfig) -> None:
    """An empty file is an empty config: loopback listener on the default port, no routes."""
    settings = load_settings(write_config("empty.yaml", ""))
    assert (settings.listen.host, settings.listen.port) == ("127.0.0.1", 8080)
    assert settings.routes == ()


def test_env_overrides_a_nested_field(write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    """``TOKENRELAY_LISTEN__PORT`` overrides ``listen.port`` from the file."""
    monkeypatch.setenv("TOKENRELAY_LISTEN__PORT", "9200")
    settings = load_settings(write_config("relay.yaml", YAML_CONFIG))
    assert settings.listen.port == 9200


def test_env_overrides_a_field_deep_inside_a_profile(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A profile's grant field is overridden key by key; its other keys still come from the file."""
    monkeypatch.setenv("TOKENRELAY_PROFILES__BILLING__CLIENT__ID", "from-env")
    settings = load_settings(write_config("relay.yaml", YAML_CONFIG))
    client = settings.profiles["billing"].client
    assert client["id"] == "from-env"
    assert client["secret"] == "billing-secret-value"


def test_precedence_is_flags_then_env_then_file(write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same key set in all three sources: the flag wins, then the environment, then the file."""
    path = write_config("relay.yaml", YAML_CONFIG)  # listen.port: 8100
    monkeypatch.setenv("TOKENRELAY_LISTEN__PORT", "9200")
    assert load_settings(path, flags={"listen": {"port": 9300}}).listen.port == 9300
    assert load_settings(path).listen.port == 9200
    monkeypatch.delenv("TOKENRELAY_LISTEN__PORT")
    assert load_settings(path).listen.port == 8100


def test_flag_for_one_key_keeps_the_sibling_keys(write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sources merge key by key: a port flag does not reset the host given by the environment."""
    monkeypatch.setenv("TOKENRELAY_LISTEN__HOST", "::1")
    settings = load_settings(write_config("relay.yaml", YAML_CONFIG), flags={"listen": {"port": 9300}})
    assert (settings.listen.host, settings.listen.port) == ("::1", 9300)


def test_every_bad_field_is_reported_at_once(write_config: WriteConfig) -> None:
    """Schema errors, grant-core errors and route errors all come in one ConfigError, each with its path."""
    text = """\
listen: {port: 99999}
profiles:
  billing:
    client: {id: abc, secret: s3cr3t-value}
    auth: {token_host: "not a url"}
  other:
    client: {id: x, secret: y}
    auth: {token_host: "https://idp.example.com", colour: blue}
routes:
  - name: r1
    match: {path_prefix: nope}
    upstream: http://127.0.0.1:1
    profile: billing
"""
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config("bad.yaml", text))
    assert set(caught.value.paths) == {
        "listen.port",
        "profiles.billing.auth.token_host",
        "profiles.other.auth.colour",
        "routes.0.match",
    }


def test_grant_cross_field_error_is_pathed_under_the_profile(write_config: WriteConfig) -> None:
    """A secret-based auth method without a secret is reported as ``profiles.<name>.client.secret``."""
    text = "profiles:\n  billing:\n    client: {id: abc}\n    auth: {token_host: 'https://idp.example.com'}\n"
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config("bad.yaml", text))
    assert caught.value.paths == ("profiles.billing.client.secret",)


def test_unknown_profile_in_a_route_names_the_route(write_config: WriteConfig) -> None:
    """A route naming a profile that does not exist is reported as ``routes.<i>.profile``."""
    text = "routes:\n  - {name: r, match: {path_prefix: /}, upstream: 'http://127.0.0.1:1', profile: ghost}\n"
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config("bad.yaml", text))
    assert caught.value.paths == ("routes.0.profile",)
    assert "ghost" in caught.value.errors[0].message


def test_error_report_never_contains_the_secret(write_config: WriteConfig) -> None:
    """The formatted report names bad fields, never the values around them (a secret next to a typo)."""
    text = "profiles:\n  billing:\n    client: {id: abc, secret: hunter2-secret}\n    auth: {token_host: 42}\n"
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config("bad.yaml", text))
    report = format_config_error(caught.value)
    assert "profiles.billing.auth.token_host" in report
    assert "hunter2-secret" not in report


def test_format_puts_one_field_per_line(write_config: WriteConfig) -> None:
    """The report is a header line naming the file, then one ``  path: message`` line per problem."""
    path = write_config("bad.yaml", "listen: {port: -1}\nadmin: {port: 70000}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    lines = format_config_error(caught.value).splitlines()
    assert lines[0] == f"invalid configuration {path}:"
    assert [line.split(":")[0].strip() for line in lines[1:]] == ["listen.port", "admin.port"]


def test_yaml_syntax_error_names_the_line(write_config: WriteConfig) -> None:
    """Broken YAML is a ConfigError that says where, not a parser traceback."""
    path = write_config("broken.yaml", "listen:\n  port: 1\n  host: [unclosed\n")
    with pytest.raises(ConfigError, match=r"not valid YAML \(line \d+"):
        read_config_file(path)


def test_toml_syntax_error_is_a_config_error(write_config: WriteConfig) -> None:
    """Broken TOML is a ConfigError too."""
    with pytest.raises(ConfigError, match="not valid TOML"):
        read_config_file(write_config("broken.toml", "[listen\nport = 1\n"))


@pytest.mark.parametrize(
    ("name", "text", "kind"),
    [
        ("deep.yaml", "listen: " + "[" * 5000 + "]" * 5000 + "\n", "YAML"),
        ("deep.toml", "x = " + "[" * 5000 + "]" * 5000 + "\n", "TOML"),
    ],
)
def test_absurdly_nested_file_is_a_config_error(write_config: WriteConfig, name: str, text: str, kind: str) -> None:
    """Nesting that exhausts the parser's recursion is refused like any broken file, not raised as RecursionError."""
    with pytest.raises(ConfigError, match=f"not valid {kind}: nested too deeply"):
        load_settings(write_config(name, text))


def test_unknown_extension_is_refused(write_config: WriteConfig) -> None:
    """The format comes from the extension; an unknown one is refused rather than guessed."""
    with pytest.raises(ConfigError, match=r"unknown config file type '\.ini'"):
        read_config_file(write_config("relay.ini", "[listen]\n"))


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    """A config path that does not exist is reported as such."""
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_settings(tmp_path / "absent.yaml")


def test_top_level_must_be_a_mapping(write_config: WriteConfig) -> None:
    """A YAML list at the top level is refused with a message saying what was expected."""
    with pytest.raises(ConfigError, match="must be a mapping"):
        read_config_file(write_config("list.yaml", "- a\n- b\n"))


def test_durations_accept_units(write_config: WriteConfig) -> None:
    """``30s``, ``250ms`` and ``5m`` are read as seconds."""
    text = "server: {shutdown_grace: 250ms, watch_interval: 5m, secret_check_interval: 30s}\n"
    server = load_settings(write_config("relay.yaml", text)).server
    assert (server.shutdown_grace, server.watch_interval, server.secret_check_interval) == (0.25, 300.0, 30.0)


def test_malformed_json_in_the_environment_is_a_config_error(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A list-valued variable that is not JSON is reported as a config problem naming the section, not a crash."""
    monkeypatch.setenv("TOKENRELAY_ACCESS__API_KEYS", "not-json-secret")
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config("relay.yaml", ""))
    assert "access" in str(caught.value)
    assert "not-json-secret" not in str(caught.value)
