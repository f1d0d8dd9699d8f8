"""The public API is exactly what ``__all__`` says (like httpx's tests/test_exported_members.py)."""

from __future__ import annotations

import tokenrelay
import tokenrelay.errors
import tokenrelay.grant


def test_all_top_level_names_are_exported_and_importable() -> None:
    assert sorted(tokenrelay.__all__) == ["AccessToken", "ClientCredentials", "OAuth2Config", "__version__"]
    for name in tokenrelay.__all__:
        assert hasattr(tokenrelay, name)


def test_error_module_exports_the_grant_error_tree() -> None:
    assert sorted(tokenrelay.errors.__all__) == [
        "ConfigError",
        "FieldError",
        "OAuth2Error",
        "TokenRequestError",
        "TokenResponseError",
        "TransportError",
    ]
    for name in tokenrelay.errors.__all__:
        assert getattr(tokenrelay.errors, name) is getattr(tokenrelay.grant, name)


def test_grant_package_exports_the_client_token_and_config_models() -> None:
    expected = {
        "AccessToken",
        "ClientCredentials",
        "OAuth2Config",
        "ClientConfig",
        "AuthConfig",
        "OptionsConfig",
        "HttpConfig",
    }
    assert expected <= set(tokenrelay.grant.__all__)
    members = {name for name in dir(tokenrelay.grant) if not name.startswith("_")}
    assert set(tokenrelay.grant.__all__) <= members


def test_every_error_is_an_oauth2_error() -> None:
    for name in ("ConfigError", "TokenRequestError", "TokenResponseError", "TransportError"):
        assert issubclass(getattr(tokenrelay.errors, name), tokenrelay.errors.OAuth2Error)
