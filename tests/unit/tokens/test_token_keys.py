"""Cache keys: every request input counts, nothing incidental does, no credential appears in them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tokenrelay.grant.config import validate_config
from tokenrelay.tokens import CacheKey, cache_key, credential_digest

BASE: dict[str, Any] = {
    "token_endpoint": "https://idp.test/oauth/token",
    "client_id": "svc",
    "credential_digest": "c" * 64,
    "auth_method": "client_secret_basic",
    "scope": ["read", "write"],
    "audience": "https://api.test",
    "resource": ["https://api.test/a"],
    "params": {"tenant": "t1", "flag": True},
}


def key(profile: str = "p", **changes: Any) -> CacheKey:
    return cache_key(profile, **{**BASE, **changes})


def test_identical_inputs_give_equal_keys() -> None:
    assert key() == key()
    assert hash(key()) == hash(key())


def test_param_order_does_not_matter() -> None:
    assert key(params={"a": "1", "b": "2"}) == key(params={"b": "2", "a": "1"})


def test_scope_list_order_is_kept_as_sent() -> None:
    assert key(scope=["read", "write"]) != key(scope=["write", "read"])


def test_resource_order_is_kept_as_sent() -> None:
    assert key(resource=["a", "b"]) != key(resource=["b", "a"])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("token_endpoint", "https://other.test/oauth/token"),
        ("client_id", "svc2"),
        ("credential_digest", "d" * 64),
        ("auth_method", "client_secret_post"),
        ("scope", "read write"),
        ("scope", None),
        ("audience", "https://other-api.test"),
        ("audience", None),
        ("resource", []),
        ("params", {"tenant": "t2", "flag": True}),
        ("params", {"tenant": "t1", "flag": "true"}),
        ("params", {"tenant": "t1", "flag": True, "extra": 1.5}),
        ("params", {"tenant": "t1", "flag": True, "list": ("x", "y")}),
    ],
)
def test_every_request_input_changes_the_key(field: str, value: Any) -> None:
    assert key(**{field: value}).digest != key().digest


def test_extra_inputs_change_the_key() -> None:
    assert key(extra={"body_format": "json"}) != key(extra={"body_format": "form"})


def test_unusual_param_values_have_a_stable_key() -> None:
    class Odd:
        def __str__(self) -> str:
            return "odd"

    assert key(params={"x": Odd()}) == key(params={"x": Odd()})


def test_profile_is_part_of_identity_but_not_of_the_digest() -> None:
    assert key("a").digest == key("b").digest
    assert key("a") != key("b")


def test_str_shows_profile_and_short_digest() -> None:
    k = key("billing")
    assert str(k) == f"billing:{k.digest[:12]}"
    assert len(k.digest) == 64
    int(k.digest, 16)


def _config(**client: Any) -> Any:
    return validate_config({"client": {"id": "svc", **client}, "auth": {"token_host": "https://idp.test"}})


def test_rotated_secret_gives_a_new_credential_digest() -> None:
    assert credential_digest(_config(secret="one")) != credential_digest(_config(secret="two"))
    assert credential_digest(_config(secret="one")) == credential_digest(_config(secret="one"))


def test_credential_digest_never_contains_the_secret() -> None:
    digest = credential_digest(_config(secret="hunter2-secret"))
    assert "hunter2" not in digest
    assert len(digest) == 64


def test_private_key_file_contents_count(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_text("KEY ONE")

    def digest() -> str:
        return credential_digest(
            validate_config(
                {
                    "client": {"id": "svc", "private_key_file": str(path)},
                    "auth": {"token_host": "https://idp.test"},
                    "options": {"authorization_method": "private_key_jwt"},
                }
            )
        )

    first = digest()
    path.write_text("KEY TWO")
    assert digest() != first


def test_unreadable_key_file_still_gives_a_stable_digest(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.pem")
    config = validate_config(
        {
            "client": {"id": "svc", "private_key_file": missing},
            "auth": {"token_host": "https://idp.test"},
            "options": {"authorization_method": "private_key_jwt"},
        }
    )
    assert credential_digest(config) == credential_digest(config)


def test_inline_private_key_counts() -> None:
    def digest(pem: str) -> str:
        return credential_digest(
            validate_config(
                {
                    "client": {"id": "svc", "private_key": pem},
                    "auth": {"token_host": "https://idp.test"},
                    "options": {"authorization_method": "private_key_jwt"},
                }
            )
        )

    assert digest("A") != digest("B")
