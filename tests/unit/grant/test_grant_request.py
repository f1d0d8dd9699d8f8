"""Building requests: parameter order, scope joining, client auth methods, header order and precedence."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tokenrelay.errors import ConfigError
from tokenrelay.grant.client_auth import CLIENT_AUTH_METHODS, ClientAuth, apply_client_auth
from tokenrelay.grant.config import HttpConfig, validate_config
from tokenrelay.grant.encoding import UNDEFINED
from tokenrelay.grant.request import (
    build_headers,
    encode_body,
    grant_params,
    merge_http_options,
    prepare_request,
)

URL = "https://idp.example/oauth/token"


def auth_for(method: str = "header", **client: Any) -> ClientAuth:
    config = validate_config(
        {
            "client": {"id": "client id", "secret": "s:1", **client},
            "auth": {"token_host": "https://idp.example"},
            "options": {"authorization_method": method},
        }
    )
    return ClientAuth.from_config(config)


def test_params_keep_order_and_caller_keys_replace_in_place() -> None:
    params = grant_params({"grant_type": "client_credentials"}, {"scope": "a", "grant_type": "x", "z": 1}, " ")
    assert list(params.items()) == [("grant_type", "x"), ("scope", "a"), ("z", 1)]


@pytest.mark.parametrize(
    ("scope", "separator", "expected"),
    [
        (["a", "b"], " ", "a b"),
        (("a", "b"), ",", "a,b"),
        ([], " ", ""),
        (["a", None, 1], "+", "a++1"),
        ("a b", ",", "a b"),
        (None, " ", None),
    ],
)
def test_scope_lists_are_joined_and_others_kept(scope: object, separator: str, expected: object) -> None:
    assert grant_params({}, {"scope": scope}, separator)["scope"] == expected


def test_non_mapping_params_are_a_config_error() -> None:
    with pytest.raises(ConfigError):
        grant_params({}, ["scope"], " ")  # type: ignore[arg-type]


def test_json_body_that_cannot_be_encoded_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        encode_body({"x": object()}, "json")


def test_headers_follow_wire_order_and_library_values_win() -> None:
    headers = build_headers(
        [
            {"X-A": "config", "accept": "text/plain", "X-B": 1},
            {"x-a": "call", "AUTHORIZATION": "no", "content-type": "x"},
        ],
        authorization="Basic abc",
        content_type="application/json",
    )
    assert headers == (
        ("accept", "text/plain"),
        ("x-a", "call"),
        ("X-B", "1"),
        ("Authorization", "Basic abc"),
        ("Content-Type", "application/json"),
    )


def test_a_configured_authorization_is_kept_when_the_library_sets_none() -> None:
    headers = build_headers([{"Authorization": "Bearer x"}], authorization=None, content_type="c")
    assert ("Authorization", "Bearer x") in headers


def test_merge_http_options_overrides_only_fields_set_per_call() -> None:
    config = HttpConfig(timeout=10, ca_file="/ca.pem", headers={"A": "1"})
    merged = merge_http_options(config, HttpConfig(timeout=2))
    assert (merged.timeout, merged.ca_file, merged.headers) == (2, "/ca.pem", {"A": "1"})
    assert merge_http_options(config, None) is config


def test_basic_auth_puts_nothing_in_the_body() -> None:
    result = apply_client_auth(auth_for(), {"grant_type": "client_credentials"}, audience=URL)
    assert result.params == {"grant_type": "client_credentials"}
    assert result.authorization is not None
    assert base64.b64decode(result.authorization[6:]) == b"client+id:s%3A1"


def test_post_auth_appends_credentials_keeping_a_colliding_position() -> None:
    result = apply_client_auth(auth_for("body"), {"grant_type": "g", "client_id": "spoof", "scope": "s"}, audience=URL)
    assert list(result.params.items()) == [
        ("grant_type", "g"),
        ("client_id", "client id"),
        ("scope", "s"),
        ("client_secret", "s:1"),
    ]
    assert result.authorization is None


def test_custom_parameter_names_are_used_for_body_auth() -> None:
    result = apply_client_auth(auth_for("body", idParamName="app", secretParamName="key"), {}, audience=URL)
    assert result.params == {"app": "client id", "key": "s:1"}


def test_public_client_sends_only_its_id() -> None:
    result = apply_client_auth(auth_for("none"), {"grant_type": "g"}, audience=URL)
    assert result.params == {"grant_type": "g", "client_id": "client id"}
    assert result.authorization is None


def test_registry_is_keyed_by_rfc_7591_names() -> None:
    assert set(CLIENT_AUTH_METHODS) == {
        "client_secret_basic",
        "client_secret_post",
        "none",
        "private_key_jwt",
        "client_secret_jwt",
        "tls_client_auth",
        "self_signed_tls_client_auth",
    }


def test_jwt_method_without_key_is_refused() -> None:
    auth = ClientAuth("private_key_jwt", "id", None, "client_id", "client_secret", "strict")
    with pytest.raises(ValueError, match="signing key"):
        apply_client_auth(auth, {}, audience=URL)


def test_client_auth_repr_hides_the_secret() -> None:
    assert "s:1" not in repr(auth_for())


def test_prepared_request_is_byte_exact_and_its_repr_hides_credentials() -> None:
    request = prepare_request(
        URL,
        {"grant_type": "refresh_token", "refresh_token": UNDEFINED},
        auth=auth_for(),
        body_format="form",
        config_http=HttpConfig(headers={"X-Config": "1"}),
        call_http=HttpConfig(headers={"X-Call": "2"}),
        audience=URL,
    )
    assert request.body == b"grant_type=refresh_token&refresh_token="
    assert [name for name, _ in request.headers] == ["Accept", "X-Config", "X-Call", "Authorization", "Content-Type"]
    assert "Basic" not in repr(request)
    assert "refresh_token" not in repr(request)


def test_json_body_omits_undefined_values() -> None:
    request = prepare_request(
        URL,
        {"grant_type": "refresh_token", "refresh_token": UNDEFINED},
        auth=auth_for("body"),
        body_format="json",
        config_http=HttpConfig(),
        call_http=None,
        audience=URL,
    )
    assert request.body == b'{"grant_type":"refresh_token","client_id":"client id","client_secret":"s:1"}'
    assert dict(request.headers)["Content-Type"] == "application/json"


def test_form_body_with_a_lone_surrogate_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        encode_body({"x": "\ud800"}, "form")
