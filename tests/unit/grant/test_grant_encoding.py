"""The byte-exact encodings: JavaScript number formatting and coercions, querystring, JSON, Basic credentials."""

from __future__ import annotations

import base64
import math
from urllib.parse import unquote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokenrelay.grant.encoding import (
    UNDEFINED,
    Undefined,
    basic_credentials,
    form_encode,
    js_number,
    js_number_to_string,
    js_parse_int,
    json_encode,
    stringify_header_value,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (42.0, "42"),
        (1.5, "1.5"),
        (-2.5, "-2.5"),
        (0.0, "0"),
        (-0.0, "0"),
        (1e16, "10000000000000000"),
        (1e21, "1e+21"),
        (1.2345e21, "1.2345e+21"),
        (1e-6, "0.000001"),
        (1e-7, "1e-7"),
        (-2.5e-10, "-2.5e-10"),
        (123.456, "123.456"),
        (0.1, "0.1"),
        (float("nan"), "NaN"),
        (float("inf"), "Infinity"),
        (float("-inf"), "-Infinity"),
    ],
)
def test_js_number_to_string_matches_ecmascript(value: float, expected: str) -> None:
    assert js_number_to_string(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3600", 3600),
        ("3600abc", 3600),
        ("  -30", -30),
        (3600.9, 3600),
        (1e21, 1),
        (7200, 7200),
        ("never", None),
        (None, None),
        (True, None),
        ([1], None),
    ],
)
def test_js_parse_int_truncates_like_parse_int(value: object, expected: int | None) -> None:
    assert js_parse_int(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, 0.0),
        (True, 1.0),
        (False, 0.0),
        (60, 60.0),
        (float("nan"), None),
        ("3600", 3600.0),
        (" 1.5e1 ", 15.0),
        ("", 0.0),
        ("0x10", 16.0),
        ("0b11", 3.0),
        ("0o17", 15.0),
        ("-Infinity", float("-inf")),
        ("1_000", None),
        ("soon", None),
        ({}, None),
    ],
)
def test_js_number_coerces_like_number(value: object, expected: float | None) -> None:
    assert js_number(value) == expected


def test_form_encode_follows_node_querystring() -> None:
    params = {
        "a b": "x y+z&=~!*'()é",
        "n": 42,
        "f": 1.5,
        "t": True,
        "no": False,
        "arr": ["x", 1, None],
        "empty": [],
        "none": None,
        "undef": UNDEFINED,
        "obj": {"k": "v"},
        "nan": math.nan,
    }
    assert form_encode(params) == (
        "a%20b=x%20y%2Bz%26%3D~!*'()%C3%A9&n=42&f=1.5&t=true&no=false&arr=x&arr=1&arr=&none=&undef=&obj=&nan="
    )


def test_json_encode_is_compact_utf8_and_drops_undefined() -> None:
    assert json_encode({"a": "é", "b": None, "c": UNDEFINED, "d": {"e": [1]}}) == '{"a":"é","b":null,"d":{"e":[1]}}'


def test_undefined_is_a_falsy_singleton() -> None:
    assert Undefined() is UNDEFINED
    assert not UNDEFINED
    assert repr(UNDEFINED) == "UNDEFINED"


def test_strict_basic_credentials_form_encode_id_and_secret() -> None:
    value = basic_credentials("urn:app:1", "a:b", "strict")
    assert base64.b64decode(value.removeprefix("Basic ")) == b"urn%3Aapp%3A1:a%3Ab"


def test_loose_basic_credentials_join_raw_values() -> None:
    value = basic_credentials("the + client", "s:é", "loose")
    assert base64.b64decode(value.removeprefix("Basic ")).decode() == "the + client:s:é"


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E)), st.text())
def test_strict_credentials_split_back_to_the_original(client_id: str, secret: str) -> None:
    decoded = base64.b64decode(basic_credentials(client_id, secret, "strict").removeprefix("Basic ")).decode()
    encoded_id, sep, encoded_secret = decoded.partition(":")
    assert sep == ":"
    assert (unquote_plus(encoded_id), unquote_plus(encoded_secret)) == (client_id, secret)


@pytest.mark.parametrize(
    ("value", "expected"), [("v", "v"), (123, "123"), (1.5, "1.5"), (True, "true"), (None, "None")]
)
def test_header_values_are_stringified_js_style(value: object, expected: str) -> None:
    assert stringify_header_value(value) == expected
