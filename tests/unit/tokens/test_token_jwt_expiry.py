"""Reading ``exp`` from JWT access tokens: decode only, bounded, garbage ignored."""

from __future__ import annotations

import pytest

from tests.unit.tokens.tokencache_support import jwt_with
from tokenrelay.tokens import jwt_expiry
from tokenrelay.tokens.jwt_expiry import MAX_JWT_LENGTH


def test_integer_exp_is_read() -> None:
    assert jwt_expiry(jwt_with({"exp": 1_800_000_600, "sub": "svc"})) == 1_800_000_600.0


def test_float_exp_is_read() -> None:
    assert jwt_expiry(jwt_with({"exp": 1_800_000_600.5})) == 1_800_000_600.5


@pytest.mark.parametrize(
    "token",
    [
        "opaque-token",
        "a.b",
        "a.b.c.d.e",
        "header.!!!notbase64!!!.sig",
        "header.bm90IGpzb24.sig",  # "not json"
        jwt_with(["exp", 1]),
        jwt_with({"sub": "no exp"}),
        jwt_with({"exp": "1800000600"}),
        jwt_with({"exp": True}),
        jwt_with({"exp": None}),
        jwt_with({"exp": 10**400}),
        "h." + jwt_with({"exp": 1}).split(".")[1].replace("e", "é") + ".s",
    ],
)
def test_garbage_yields_none(token: str) -> None:
    assert jwt_expiry(token) is None


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_exp_is_ignored(literal: str) -> None:
    import base64

    payload = base64.urlsafe_b64encode(f'{{"exp": {literal}}}'.encode()).rstrip(b"=").decode()
    assert jwt_expiry(f"h.{payload}.s") is None


def test_deeply_nested_payload_is_ignored() -> None:
    import base64

    payload = base64.urlsafe_b64encode(b"[" * 5000 + b"]" * 5000).rstrip(b"=").decode()
    assert jwt_expiry(f"h.{payload}.s") is None


def test_oversized_token_is_not_decoded() -> None:
    token = jwt_with({"exp": 1_800_000_600, "pad": "x" * MAX_JWT_LENGTH})
    assert jwt_expiry(token) is None
