"""Expiry parsing (§5), ``expired(window)``, ``to_dict`` round trips and what a token shows of itself."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokenrelay import AccessToken, ClientCredentials
from tokenrelay.grant.expiry import EPOCH, format_iso, from_epoch_ms, parse_date_value, to_epoch_ms
from tokenrelay.grant.token import parse_token_fields

NOW_S = 1_700_000_000.0
NOW = datetime.fromtimestamp(NOW_S, UTC)


class Clock:
    def __init__(self, now: float = NOW_S) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_client(clock: Clock | None = None) -> ClientCredentials:
    config = {"client": {"id": "a", "secret": "b"}, "auth": {"token_host": "http://127.0.0.1:1"}}
    return ClientCredentials(config, now=clock or Clock())


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2023-11-15T01:13:20+02:00", datetime(2023, 11, 14, 23, 13, 20, tzinfo=UTC)),
        ("2023-11-14T23:13:20.123456Z", datetime(2023, 11, 14, 23, 13, 20, 123000, tzinfo=UTC)),
        ("2023-11-14T23:13:20", datetime(2023, 11, 14, 23, 13, 20, tzinfo=UTC)),
        ("2023-11-14 23:13", datetime(2023, 11, 14, 23, 13, tzinfo=UTC)),
        ("2023-11-14", datetime(2023, 11, 14, tzinfo=UTC)),
        ("2023-11", datetime(2023, 11, 1, tzinfo=UTC)),
        ("2023-11-14T24:00:00Z", datetime(2023, 11, 15, tzinfo=UTC)),
        ("+002023-11-14T00:00:00Z", datetime(2023, 11, 14, tzinfo=UTC)),
        ("Tue, 14 Nov 2023 23:13:20 GMT", datetime(2023, 11, 14, 23, 13, 20, tzinfo=UTC)),
        ("Tue, 14 Nov 2023 23:13:20", datetime(2023, 11, 14, 23, 13, 20, tzinfo=UTC)),
        (1700003600, datetime(2023, 11, 14, 23, 13, 20, tzinfo=UTC)),
        (1700003600.5, datetime(2023, 11, 14, 23, 13, 20, 500000, tzinfo=UTC)),
        (None, EPOCH),
        (True, EPOCH + timedelta(milliseconds=1)),
        (datetime(2030, 1, 1), datetime(2030, 1, 1, tzinfo=UTC)),
        (datetime(2030, 1, 1, 2, tzinfo=timezone(timedelta(hours=2))), datetime(2030, 1, 1, tzinfo=UTC)),
        (1700003600000, datetime.max.replace(tzinfo=UTC)),
        (-8_000_000_000_000, datetime.min.replace(tzinfo=UTC)),
    ],
)
def test_expires_at_values_parse_like_new_date(value: object, expected: datetime) -> None:
    assert parse_date_value(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "tomorrow",
        "1700003600",
        "2023-13-01",
        "2023-02-30",
        "2023-11-14T25:00:00Z",
        "2023-11-14T24:00:01Z",
        "2023-11-14T10:00:00+25:00",
        "-000000-01-01",
        "",
        "Tue, 99 Foo 2023",
        1e300,
        float("nan"),
        [],
    ],
)
def test_unparseable_expires_at_is_none(value: object) -> None:
    assert parse_date_value(value) is None


def test_from_epoch_ms_truncates_to_whole_milliseconds() -> None:
    assert from_epoch_ms(1.9) == EPOCH + timedelta(milliseconds=1)
    assert from_epoch_ms(8.64e15 + 1) is None


def test_to_epoch_ms_is_exact() -> None:
    assert to_epoch_ms(datetime(2023, 11, 14, 22, 13, 20, 500, tzinfo=UTC)) == 1_700_000_000_000.5


def test_format_iso_is_to_iso_string() -> None:
    assert format_iso(datetime(2023, 11, 14, 23, 13, 20, tzinfo=UTC)) == "2023-11-14T23:13:20.000Z"


@pytest.mark.parametrize(
    ("fields", "expires_at"),
    [
        ({"expires_in": 3600}, NOW + timedelta(hours=1)),
        ({"expires_in": "3600abc"}, NOW + timedelta(hours=1)),
        ({"expires_in": 1e21}, NOW + timedelta(seconds=1)),
        ({"expires_in": "never"}, None),
        ({"expires_in": None}, None),
        ({"expires_in": 60, "expires_at": None}, EPOCH),
        ({"expires_at": "garbage", "expires_in": 60}, None),
    ],
)
def test_parse_token_fields_follows_section_5(fields: dict[str, object], expires_at: datetime | None) -> None:
    token = parse_token_fields(fields, NOW_S * 1000)
    assert token["expires_at"] == expires_at


def test_no_expiry_fields_means_no_expires_at_key() -> None:
    assert "expires_at" not in parse_token_fields({"access_token": "a"}, NOW_S * 1000)


def test_default_expires_in_applies_only_without_expiry_fields() -> None:
    token = parse_token_fields({"access_token": "a"}, NOW_S * 1000, default_expires_in=300)
    assert token["expires_at"] == NOW + timedelta(minutes=5)
    token = parse_token_fields({"expires_in": 60}, NOW_S * 1000, default_expires_in=300)
    assert token["expires_at"] == NOW + timedelta(minutes=1)


def test_expired_boundary_is_inclusive() -> None:
    clock = Clock()
    token = make_client(clock).create_token({"access_token": "a", "expires_in": 60})
    assert not token.expired()
    assert token.expired(60)
    assert not token.expired(59.999)
    clock.now = NOW_S + 60
    assert token.expired()


@pytest.mark.parametrize(
    ("window", "expected"),
    [("60", True), ("59", False), (None, False), ("soon", False), ([1], False), (float("inf"), True), (-3600, False)],
)
def test_expired_window_is_coerced_like_javascript(window: object, expected: bool) -> None:
    token = make_client().create_token({"access_token": "a", "expires_in": 60})
    assert token.expired(window) is expected


def test_a_token_without_expiry_never_expires() -> None:
    token = make_client().create_token({"access_token": "a"})
    assert token.expires_at is None
    assert not token.expired(10**9)


def test_to_dict_round_trips_through_create_token() -> None:
    client = make_client()
    token = client.create_token({"access_token": "a", "expires_in": 3600, "scope": "x"})
    stored = token.to_dict()
    assert stored["expires_at"] == "2023-11-14T23:13:20.000Z"
    later = make_client(Clock(NOW_S + 1000)).create_token(stored)
    assert later.expires_at == token.expires_at
    assert later.to_dict() == stored


def test_invalid_expiry_dumps_as_null() -> None:
    assert make_client().create_token({"access_token": "a", "expires_at": "x"}).to_dict()["expires_at"] is None


def test_create_token_needs_a_mapping() -> None:
    client = make_client()
    with pytest.raises(TypeError):
        client.create_token(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        client.create_token("at-123")  # type: ignore[arg-type]


def test_token_is_read_only_and_exposes_its_parts() -> None:
    token = make_client().create_token({"access_token": "at-xyz", "refresh_token": "rt", "expires_in": 60})
    with pytest.raises(TypeError):
        token.token["access_token"] = "other"  # type: ignore[index]
    assert token.access_token == "at-xyz"
    assert token.refresh_token_value == "rt"
    assert token.fingerprint == hashlib.sha256(b"at-xyz").hexdigest()[:8]
    assert isinstance(token, AccessToken)


def test_repr_shows_only_fingerprint_and_expiry() -> None:
    token = make_client().create_token(
        {"access_token": "at-very-secret", "refresh_token": "rt-secret", "expires_in": 60}
    )
    shown = repr(token) + str(token)
    assert "secret" not in shown
    assert token.fingerprint in shown
    assert "2023-11-14T22:14:20.000Z" in shown


def test_missing_access_token_reads_as_empty() -> None:
    token = make_client().create_token({"access_token": 5})
    assert (token.access_token, token.refresh_token_value) == ("", None)


@pytest.mark.parametrize("fields", [{"expires_in": "9" * 400}, {"expires_at": 10**400}, {"expires_in": 10**400}])
def test_numbers_beyond_float_range_are_invalid_dates(fields: dict[str, object]) -> None:
    assert parse_token_fields(fields, NOW_S * 1000)["expires_at"] is None


def test_a_window_beyond_float_range_is_infinite() -> None:
    token = make_client().create_token({"access_token": "a", "expires_in": 60})
    assert token.expired(10**400) is True
    assert token.expired(-(10**400)) is False


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=5,
)


@given(name=st.sampled_from(["expires_in", "expires_at"]), value=_JSON, window=_JSON)
def test_any_json_expiry_or_window_gives_an_answer_not_a_crash(name: str, value: object, window: object) -> None:
    token = make_client().create_token({"access_token": "a", name: value})
    assert token.expires_at is None or token.expires_at.tzinfo is not None
    assert isinstance(token.expired(window), bool)
    assert isinstance(token.to_dict()["expires_at"], str | None)
