"""Property tests: keys ignore parameter order; JWT exp reading never raises, whatever the token."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from tokenrelay.tokens import cache_key, jwt_expiry

SCALARS = st.one_of(st.text(max_size=8), st.integers(), st.booleans(), st.floats(allow_nan=False), st.none())
PARAMS = st.dictionaries(st.text(min_size=1, max_size=8), st.one_of(SCALARS, st.lists(st.text(max_size=4), max_size=3)))


def key_of(params: dict[str, object]) -> str:
    return cache_key(
        "p",
        token_endpoint="https://idp.test/token",
        client_id="svc",
        credential_digest="c" * 64,
        auth_method="client_secret_basic",
        scope=None,
        audience=None,
        resource=(),
        params=params,
    ).digest


@given(PARAMS, st.randoms(use_true_random=False))
def test_parameter_order_never_changes_the_key(params: dict[str, object], rnd: random.Random) -> None:
    items = list(params.items())
    rnd.shuffle(items)
    assert key_of(dict(items)) == key_of(params)


@given(PARAMS, PARAMS)
def test_keys_are_equal_exactly_when_parameters_are_identical(a: dict[str, object], b: dict[str, object]) -> None:
    identical = a.keys() == b.keys() and all(type(a[k]) is type(b[k]) and repr(a[k]) == repr(b[k]) for k in a)
    assert (key_of(a) == key_of(b)) == identical


def test_equal_but_differently_typed_values_give_different_keys() -> None:
    assert len({key_of({"x": 1}), key_of({"x": True}), key_of({"x": 1.0}), key_of({"x": "1"})}) == 4


@given(st.text(max_size=200))
def test_jwt_expiry_never_raises(token: str) -> None:
    result = jwt_expiry(token)
    assert result is None or isinstance(result, float)


@given(st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC0123456789-_=", max_size=40), min_size=3, max_size=3))
def test_jwt_expiry_never_raises_on_jws_shaped_garbage(segments: list[str]) -> None:
    result = jwt_expiry(".".join(segments))
    assert result is None or isinstance(result, float)
