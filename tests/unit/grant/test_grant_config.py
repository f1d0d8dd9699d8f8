"""Configuration: simple-oauth2's defaults and constraints, the port's rules, and ConfigError's field paths."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from tokenrelay import ClientCredentials
from tokenrelay.errors import ConfigError, OAuth2Error
from tokenrelay.grant import AuthConfig, ClientConfig, HttpConfig, OAuth2Config, OptionsConfig
from tokenrelay.grant.config import validate_config, validate_http_options

BASE = "https://idp.example"
SECRET = "sup3r-secret"


def minimal(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {"client": {"id": "client-id", "secret": SECRET}, "auth": {"token_host": BASE}}
    config.update(overrides)
    return config


def paths_of(config: Any) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as caught:
        validate_config(config)
    return caught.value.paths


def test_defaults_are_simple_oauth2s() -> None:
    config = validate_config(minimal())
    assert (config.client.id_param_name, config.client.secret_param_name) == ("client_id", "client_secret")
    assert (config.auth.token_path, config.auth.refresh_path, config.auth.revoke_path) == (
        "/oauth/token",
        "/oauth/token",
        "/oauth/revoke",
    )
    options = config.options
    assert (options.scope_separator, options.credentials_encoding_mode, options.body_format) == (" ", "strict", "form")
    assert (options.authorization_method, options.auth_method) == ("header", "client_secret_basic")
    assert (config.http.headers, config.http.verify) == ({}, True)  # the timeout differs: 30 s, not none


def test_refresh_path_defaults_to_a_custom_token_path() -> None:
    config = validate_config(minimal(auth={"token_host": BASE, "token_path": "/t"}))
    assert config.auth.refresh_path == "/t"


def test_camel_case_keys_are_accepted() -> None:
    config = validate_config(
        {
            "client": {"id": "a", "secret": "b", "idParamName": "app_id", "secretParamName": "app_key"},
            "auth": {"tokenHost": BASE, "tokenPath": "/t", "refreshPath": "/r", "revokePath": "/v"},
            "options": {
                "authorizationMethod": "body",
                "bodyFormat": "json",
                "scopeSeparator": ",",
                "credentialsEncodingMode": "loose",
            },
        }
    )
    assert (config.client.id_param_name, config.auth.refresh_path, config.options.auth_method) == (
        "app_id",
        "/r",
        "client_secret_post",
    )


def test_a_model_instance_is_used_as_is() -> None:
    model = OAuth2Config(client=ClientConfig(id="a", secret="b"), auth=AuthConfig(token_host=BASE))
    assert validate_config(model) is model
    assert ClientCredentials(model).config is model


def test_keyword_sections_build_the_config() -> None:
    client = ClientCredentials(
        client={"id": "a", "secret": "b"}, auth={"token_host": BASE}, options={"body_format": "json"}
    )
    assert client.config.options.body_format == "json"
    assert client.token_endpoint == f"{BASE}/oauth/token"


def test_config_and_keyword_sections_together_are_refused() -> None:
    with pytest.raises(ConfigError, match="not both"):
        ClientCredentials(minimal(), client={"id": "a"})


@pytest.mark.parametrize("config", [None, {}, "client-id", 42])
def test_missing_or_non_mapping_config_is_a_config_error(config: Any) -> None:
    with pytest.raises(ConfigError):
        ClientCredentials(config)


def test_every_invalid_field_is_reported_at_once() -> None:
    config = {
        "client": {"id": "a\tb", "secret": "sécret", "idParamName": ""},
        "auth": {"tokenHost": "ftp://x", "tokenPath": "", "authorizeHost": BASE},
        "options": {"bodyFormat": "xml", "scopeSeparator": ""},
        "http": {"redirects": 3, "timeout": 0},
        "foo": 1,
    }
    assert set(paths_of(config)) == {
        "client.id",
        "client.secret",
        "client.idParamName",
        "auth.tokenHost",
        "auth.tokenPath",
        "auth.authorizeHost",
        "options.bodyFormat",
        "options.scopeSeparator",
        "http.redirects",
        "http.timeout",
        "foo",
    }


def test_missing_keys_are_reported_with_python_names() -> None:
    assert paths_of({"client": {}, "auth": {}}) == ("client.id",)
    assert set(paths_of({})) == {"client", "auth"}


@pytest.mark.parametrize("method", ["header", "body", "client_secret_basic", "client_secret_post", "client_secret_jwt"])
def test_secret_methods_require_a_secret(method: str) -> None:
    config = {"client": {"id": "a"}, "auth": {"token_host": BASE}, "options": {"authorization_method": method}}
    assert paths_of(config) == ("client.secret",)


def test_empty_secret_counts_as_given() -> None:
    assert validate_config({"client": {"id": "", "secret": ""}, "auth": {"token_host": BASE}}).client.id == ""


def test_public_client_needs_no_secret() -> None:
    config = {"client": {"id": "a"}, "auth": {"token_host": BASE}, "options": {"authorization_method": "none"}}
    assert validate_config(config).options.auth_method == "none"


def test_private_key_jwt_requires_a_key() -> None:
    config = {
        "client": {"id": "a"},
        "auth": {"token_host": BASE},
        "options": {"authorization_method": "private_key_jwt"},
    }
    assert paths_of(config) == ("client.private_key",)


def test_private_key_jwt_refuses_two_keys() -> None:
    config = {
        "client": {"id": "a", "private_key": "k", "private_key_file": "/k.pem"},
        "auth": {"token_host": BASE},
        "options": {"authorization_method": "private_key_jwt"},
    }
    assert paths_of(config) == ("client.private_key",)


def test_token_host_is_required_without_discovery() -> None:
    assert paths_of({"client": {"id": "a", "secret": "b"}, "auth": {}}) == ("auth.token_host",)


def test_issuer_makes_token_host_optional() -> None:
    config = validate_config({"client": {"id": "a", "secret": "b"}, "auth": {"issuer": BASE}})
    assert config.auth.uses_discovery
    with pytest.raises(OAuth2Error, match="resolve_token_endpoint"):
        _ = ClientCredentials(config).token_endpoint


@pytest.mark.parametrize("host", ["idp.example", "ftp://idp.example", " https://idp.example", "https://"])
def test_token_host_must_be_an_http_uri(host: str) -> None:
    assert paths_of(minimal(auth={"token_host": host})) == ("auth.token_host",)


def test_key_file_needs_a_cert_file() -> None:
    assert paths_of(minimal(http={"key_file": "/k.pem"})) == ("http.cert_file",)


def test_http_options_are_validated_with_their_own_prefix() -> None:
    with pytest.raises(ConfigError) as caught:
        validate_http_options({"baseUrl": "http://x", "key_file": "k"})
    assert caught.value.paths == ("http_options.baseUrl",)
    with pytest.raises(ConfigError) as caught:
        validate_http_options({"key_file": "k"})
    assert caught.value.paths == ("http_options.cert_file",)
    with pytest.raises(ConfigError):
        validate_http_options(["headers"])  # type: ignore[arg-type]
    options = HttpConfig(timeout=1)
    assert validate_http_options(options) is options


def test_config_error_is_raised_from_pydantic_without_input_values() -> None:
    with pytest.raises(ConfigError) as caught:
        validate_config(minimal(client={"id": "a", "secret": "sécret-value"}))
    assert isinstance(caught.value.__cause__, ValidationError)
    assert "sécret-value" not in str(caught.value) + str(caught.value.__cause__)


def test_secret_never_shows_in_repr_or_dump() -> None:
    config = validate_config(minimal())
    shown = repr(config) + str(config) + repr(config.model_dump()) + repr(ClientCredentials(config))
    assert SECRET not in shown
    assert config.client.secret is not None
    assert config.client.secret.get_secret_value() == SECRET


def test_models_are_frozen() -> None:
    config = validate_config(minimal())
    with pytest.raises(ValidationError):
        config.options.body_format = "json"  # type: ignore[misc]
    assert OptionsConfig().auth_method == "client_secret_basic"


@pytest.mark.parametrize("field", ["token_path", "revoke_path", "refresh_path"])
def test_a_path_that_resolves_to_a_non_http_url_is_a_config_error(field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ClientCredentials(minimal(auth={"token_host": BASE, field: "ftp://files.example/token"}))
    assert f"auth.{field}" in caught.value.paths


def test_header_values_keep_their_json_type_until_sent() -> None:
    assert HttpConfig(headers={"X-Flag": True, "X-N": 1}).headers == {"X-Flag": True, "X-N": 1}


@pytest.mark.parametrize(
    "headers", [{"X-Bad": "a\r\nInjected: 1"}, {"X-Bad": "a\nb"}, {"Bad Name": "v"}, {"": "v"}, {"X:Y": "v"}]
)
def test_header_injection_is_refused(headers: dict[str, str]) -> None:
    assert paths_of(minimal(http={"headers": headers})) == ("http.headers",)
