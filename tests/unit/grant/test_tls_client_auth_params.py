"""RFC 8705 §2 client authentication (``tls_client_auth``, ``self_signed_tls_client_auth``): config and wire params."""

from __future__ import annotations

from typing import Any

import pytest

from tokenrelay.errors import ConfigError
from tokenrelay.grant.client_auth import CLIENT_AUTH_METHODS, ClientAuth, apply_client_auth
from tokenrelay.grant.config import validate_config
from tokenrelay.grant.request import prepare_request

BASE = "https://idp.example"
URL = f"{BASE}/oauth/token"
SECRET = "never-sent-secret"
TLS_METHODS = ("tls_client_auth", "self_signed_tls_client_auth")


def config_for(method: str, *, http: dict[str, Any] | None = None, **client: Any) -> dict[str, Any]:
    return {
        "client": {"id": "client-id", **client},
        "auth": {"token_host": BASE},
        "options": {"authorization_method": method},
        "http": {"cert_file": "/etc/tls/client.pem", "key_file": "/etc/tls/client-key.pem"} if http is None else http,
    }


def auth_for(method: str, **client: Any) -> ClientAuth:
    return ClientAuth.from_config(validate_config(config_for(method, **client)))


def config_error(config: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        validate_config(config)
    return caught.value


def test_both_names_are_registered_to_one_function() -> None:
    assert CLIENT_AUTH_METHODS["self_signed_tls_client_auth"] is CLIENT_AUTH_METHODS["tls_client_auth"]


@pytest.mark.parametrize("method", TLS_METHODS)
def test_client_id_is_a_body_parameter_after_the_others(method: str) -> None:
    result = apply_client_auth(auth_for(method), {"grant_type": "client_credentials", "scope": "a"}, audience=URL)
    assert list(result.params.items()) == [
        ("grant_type", "client_credentials"),
        ("scope", "a"),
        ("client_id", "client-id"),
    ]


@pytest.mark.parametrize("method", TLS_METHODS)
def test_no_authorization_header_is_produced(method: str) -> None:
    assert apply_client_auth(auth_for(method), {}, audience=URL).authorization is None


@pytest.mark.parametrize("method", TLS_METHODS)
def test_a_configured_secret_is_never_sent(method: str) -> None:
    result = apply_client_auth(auth_for(method, secret=SECRET), {"grant_type": "g"}, audience=URL)
    assert result.params == {"grant_type": "g", "client_id": "client-id"}
    assert result.authorization is None


def test_custom_id_param_name_is_used() -> None:
    result = apply_client_auth(auth_for("tls_client_auth", id_param_name="app"), {}, audience=URL)
    assert result.params == {"app": "client-id"}


def test_the_whole_request_has_no_secret_and_no_authorization_header() -> None:
    config = validate_config(config_for("tls_client_auth", secret=SECRET))
    request = prepare_request(
        URL,
        {"grant_type": "client_credentials"},
        auth=ClientAuth.from_config(config),
        body_format="form",
        config_http=config.http,
        call_http=None,
        audience=URL,
    )
    assert request.body == b"grant_type=client_credentials&client_id=client-id"
    assert "Authorization" not in dict(request.headers)
    assert SECRET not in str(request.headers)


@pytest.mark.parametrize("method", TLS_METHODS)
def test_no_secret_is_required(method: str) -> None:
    assert validate_config(config_for(method)).options.auth_method == method


@pytest.mark.parametrize("method", TLS_METHODS)
def test_missing_cert_file_is_refused_at_its_path(method: str) -> None:
    error = config_error(config_for(method, http={}))
    assert error.paths == ("http.cert_file",)
    (problem,) = error.errors
    assert method in problem.message
    assert "TLS client certificate" in problem.message
    assert "RFC 8705" in problem.message


def test_missing_cert_file_is_refused_alongside_other_problems() -> None:
    config = {**config_for("tls_client_auth", http={}), "auth": {}}
    assert set(config_error(config).paths) == {"auth.token_host", "http.cert_file"}


def test_cert_file_is_not_required_by_other_methods() -> None:
    config = config_for("none", http={})
    assert validate_config(config).http.cert_file is None


@pytest.mark.parametrize("method", TLS_METHODS)
def test_camel_case_keys_are_accepted(method: str) -> None:
    config = validate_config(
        {
            "client": {"id": "client-id", "idParamName": "app"},
            "auth": {"tokenHost": BASE},
            "options": {"authorizationMethod": method},
            "http": {"certFile": "/c.pem", "keyFile": "/k.pem"},
        }
    )
    assert config.options.auth_method == method
    assert apply_client_auth(ClientAuth.from_config(config), {}, audience=URL).params == {"app": "client-id"}


def test_camel_case_config_without_cert_file_is_refused() -> None:
    config = {
        "client": {"id": "client-id"},
        "auth": {"tokenHost": BASE},
        "options": {"authorizationMethod": "self_signed_tls_client_auth"},
    }
    assert config_error(config).paths == ("http.cert_file",)


def test_error_message_does_not_show_the_secret() -> None:
    error = config_error(config_for("tls_client_auth", http={}, secret=SECRET))
    assert SECRET not in str(error)
