"""Lifetimes, refresh windows, backoff and failure classification (pure functions)."""

from __future__ import annotations

import math

import pytest

from tests.unit.tokens.tokencache_support import jwt_with
from tokenrelay.grant.errors import (
    ConfigError,
    OAuth2Error,
    TokenRequestError,
    TokenResponseError,
    TransportError,
)
from tokenrelay.settings import ProfileSettings
from tokenrelay.tokens import IssuedToken, RefreshPolicy, policy_for_profile
from tokenrelay.tokens.policy import (
    MAX_RETRY_AFTER,
    ExpiredOnArrival,
    Failure,
    UnusableToken,
    backoff_delay,
    classify,
    parse_retry_after,
    refresh_window,
    token_lifetime,
)

WALL = 1_800_000_000.0


def test_lifetime_comes_from_expires_in() -> None:
    assert token_lifetime(IssuedToken("t", 120.0), RefreshPolicy(), WALL) == 120.0


def test_lifetime_falls_back_to_jwt_exp() -> None:
    token = IssuedToken(jwt_with({"exp": WALL + 900}), None)
    assert token_lifetime(token, RefreshPolicy(), WALL) == 900.0


def test_expires_in_wins_over_jwt_exp() -> None:
    token = IssuedToken(jwt_with({"exp": WALL + 900}), 60.0)
    assert token_lifetime(token, RefreshPolicy(), WALL) == 60.0


def test_lifetime_falls_back_to_default_for_opaque_tokens() -> None:
    assert token_lifetime(IssuedToken("opaque", None), RefreshPolicy(default_lifetime=42.0), WALL) == 42.0


def test_nan_expires_in_is_treated_as_absent() -> None:
    assert token_lifetime(IssuedToken("opaque", math.nan), RefreshPolicy(default_lifetime=42.0), WALL) == 42.0


def test_lifetime_is_never_infinite() -> None:
    policy = RefreshPolicy(max_lifetime=1000.0)
    assert token_lifetime(IssuedToken("t", math.inf), policy, WALL) == 1000.0
    assert token_lifetime(IssuedToken(jwt_with({"exp": WALL * 100}), None), policy, WALL) == 1000.0


@pytest.mark.parametrize(
    ("lifetime", "refresh_before", "window"),
    [
        (3600.0, None, 60.0),  # auto: min(60, lifetime / 4)
        (100.0, None, 25.0),
        (2.0, None, 0.5),
        (2.0, 60.0, 1.0),  # explicit, capped at lifetime / 2
        (3600.0, 300.0, 300.0),
        (3600.0, 0.0, 0.0),
    ],
)
def test_refresh_window(lifetime: float, refresh_before: float | None, window: float) -> None:
    assert refresh_window(lifetime, RefreshPolicy(refresh_before=refresh_before)) == window


def test_backoff_grows_exponentially_up_to_the_max() -> None:
    policy = RefreshPolicy(backoff_initial=1.0, backoff_max=10.0)
    delays = [backoff_delay(policy, n, Failure("idp_error"), lambda: 1.0) for n in range(1, 7)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_backoff_uses_full_jitter_with_a_floor() -> None:
    policy = RefreshPolicy(backoff_initial=2.0, backoff_max=60.0)
    assert backoff_delay(policy, 3, Failure("idp_error"), lambda: 0.5) == 4.0
    assert backoff_delay(policy, 3, Failure("idp_error"), lambda: 0.0) == pytest.approx(0.2)


def test_huge_failure_counts_do_not_overflow() -> None:
    assert backoff_delay(RefreshPolicy(backoff_max=60.0), 10_000, Failure("x"), lambda: 1.0) == 60.0


def test_permanent_failures_back_off_the_permanent_delay() -> None:
    policy = RefreshPolicy(permanent_backoff=300.0)
    assert backoff_delay(policy, 1, Failure("idp_error", permanent=True), lambda: 0.0) == 300.0


def test_retry_after_raises_the_backoff() -> None:
    policy = RefreshPolicy(backoff_initial=1.0)
    assert backoff_delay(policy, 1, Failure("idp_error", retry_after=30.0), lambda: 1.0) == 30.0
    long_backoff = RefreshPolicy(backoff_initial=100.0, backoff_max=100.0)
    assert backoff_delay(long_backoff, 1, Failure("idp_error", retry_after=30.0), lambda: 1.0) == 100.0


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("99999999", MAX_RETRY_AFTER),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
        ("-5", None),
        ("1.5", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_seconds_form(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


def test_classify_oauth_error_response() -> None:
    exc = TokenRequestError("bad", status=400, payload={"error": "invalid_scope"})
    assert classify(exc) == Failure(reason="idp_error", error="invalid_scope", status=400)


@pytest.mark.parametrize("code", ["invalid_client", "unauthorized_client"])
def test_classify_permanent_codes(code: str) -> None:
    failure = classify(TokenRequestError("bad", status=401, payload={"error": code}))
    assert failure.permanent
    assert failure.code == code


def test_classify_retry_after_header() -> None:
    exc = TokenRequestError("busy", status=429, payload="slow down", headers={"Retry-After": "12"})
    failure = classify(exc)
    assert failure.retry_after == 12.0
    assert failure.code == "http_429"


def test_classify_garbage_response() -> None:
    failure = classify(TokenResponseError("not json", status=200, payload="<html>"))
    assert (failure.reason, failure.permanent, failure.code) == ("invalid_response", False, "http_200")


@pytest.mark.parametrize(
    ("exc", "reason", "permanent"),
    [
        (TransportError("refused", url="http://127.0.0.1:1"), "idp_unreachable", False),
        (TransportError("slow", timeout=True), "timeout", False),
        (TimeoutError(), "timeout", False),
        (ExpiredOnArrival(), "expired_on_arrival", False),
        (UnusableToken(), "invalid_response", False),
        (ConfigError("bad key file"), "config", True),
        (OAuth2Error("other"), "idp_error", False),
        (RuntimeError("bug"), "internal", False),
    ],
)
def test_classify_other_failures(exc: BaseException, reason: str, permanent: bool) -> None:
    failure = classify(exc)
    assert (failure.reason, failure.permanent, failure.code) == (reason, permanent, reason)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"default_lifetime": 0.0},
        {"fetch_timeout": -1.0},
        {"max_lifetime": math.nan},
        {"refresh_before": -1.0},
        {"backoff_initial": -0.5},
        {"backoff_max": math.nan},
        {"permanent_backoff": -1.0},
    ],
)
def test_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="RefreshPolicy"):
        RefreshPolicy(**kwargs)  # type: ignore[arg-type]


def test_policy_for_profile_reads_the_profile_settings() -> None:
    profile = ProfileSettings(
        client={"id": "svc", "secret": "s"},
        auth={"token_host": "https://idp.test"},
        refresh_before_expiry="90s",
        default_expires_in="10m",
    )
    policy = policy_for_profile(profile, fetch_timeout=3.0)
    assert (policy.refresh_before, policy.default_lifetime, policy.fetch_timeout) == (90.0, 600.0, 3.0)
