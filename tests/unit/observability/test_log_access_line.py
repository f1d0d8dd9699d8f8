"""The one-step access line: byte for byte what the general pipeline writes, redaction included.

``log_access`` renders the access line itself under our JSON setup (``_access_line``); these tests hold it to the
general path — ``structlog.get_logger("tokenrelay.access").info("request", ...)`` through the configured
processors — for random field values and bound context, with the clock frozen so whole lines can be compared.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

import tokenrelay.access_log
import tokenrelay.log_redaction
from tests.unit.observability.access_fields import ACCESS_FIELDS
from tokenrelay.log import REDACTED, configure_logging, log_access

_NOW_NS = 1_764_126_632_123_456_000  # 2025-11-26T03:10:32.123456Z
_HINTED = st.sampled_from(
    ["Bearer abc.def", "basic dXNlcjpw", "DPoP x", "eyJhbGc.eyJzdWI.c2ln", "?client_secret=s3", '{"password": "p"}']
) | st.sampled_from(  # the other spellings of the parameter names
    ["?accessToken=a1", '{"clientSecret": "s"}', "client-secret: c", "ACCESS_TOKEN=t", "X-Api-Key: k", "token=0123abcd"]
)
_TEXT = st.text(max_size=30) | _HINTED | st.builds("".join, st.lists(st.text(max_size=8) | _HINTED, max_size=4))
_SCALAR = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | _TEXT
)  # fmt: skip
_SECRET_KEYS = st.sampled_from(["password", "client_secret", "Authorization", "token", "note"])
_NESTED = st.recursive(
    _SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_SECRET_KEYS | st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
_TOKEN = st.none() | st.from_regex(r"[0-9a-f]{8}", fullmatch=True) | _TEXT | st.integers()
_CONTEXT_KEYS = st.sampled_from(["tenant", "client_secret", "user", 'k"\u00e9\n', "path", "request_id"]) | st.text(
    min_size=1, max_size=6
)


def _access_fields() -> st.SearchStrategy[dict[str, Any]]:
    free_text = st.none() | _TEXT
    return st.fixed_dictionaries(
        {
            "route": free_text,
            "method": st.sampled_from(["GET", "POST", "eyJa.b.c"]) | _TEXT,
            "path": _TEXT,
            "status": st.integers(100, 599) | _SCALAR,
            "upstream_status": st.none() | st.integers(100, 599) | _SCALAR,
            "duration_ms": st.floats(allow_nan=True, allow_infinity=True) | _SCALAR,
            "token": _TOKEN,
            "replayed": st.booleans() | _NESTED,
            "request_id": _TEXT,
        }
    ).map(lambda drawn: {key: drawn[key] for key in ACCESS_FIELDS})  # the proxy's key order (drawn in any order)


@contextmanager
def _frozen_json_logging() -> Iterator[io.StringIO]:
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("tokenrelay.log_output.time.time_ns", lambda: _NOW_NS)
        configure_logging("info", "json", stream=out, cache_loggers=False)
        yield out


def _general_line(fields: dict[str, Any]) -> str:
    """What the configured processors write for the access event (the reference)."""
    with _frozen_json_logging() as out:
        structlog.get_logger("tokenrelay.access").info("request", **fields)
    return out.getvalue()


def _fast_line(fields: dict[str, Any]) -> str:
    with _frozen_json_logging() as out:
        log_access(**fields)
    return out.getvalue()


def _spy_on_access_line(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    rendered: list[str | None] = []
    real: Callable[..., str | None] = tokenrelay.access_log._access_line

    def spy(*args: Any) -> str | None:
        rendered.append(real(*args))
        return rendered[-1]

    monkeypatch.setattr(tokenrelay.access_log, "_access_line", spy)
    return rendered


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fields=_access_fields(), bound=st.dictionaries(_CONTEXT_KEYS, _NESTED, max_size=3))
def test_the_fast_line_is_the_general_line_byte_for_byte(fields: dict[str, Any], bound: dict[str, Any]) -> None:
    """Unicode, quotes, control characters, credentials, odd types, bound context: the same bytes either way."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(**bound)
    try:
        with pytest.MonkeyPatch.context() as patch:
            rendered = _spy_on_access_line(patch)
            assert _fast_line(dict(fields)) == _general_line(dict(fields))
    finally:
        structlog.contextvars.clear_contextvars()
    reserved = {"level", "logger", "timestamp"}.intersection(bound)
    assert reserved or rendered[0] is not None  # the one-step renderer wrote it


def _proxy_fields() -> st.SearchStrategy[dict[str, Any]]:
    """The types the proxy passes (the inline branch of the renderer), with any text."""
    return st.fixed_dictionaries(
        {
            "route": _TEXT,
            "method": _TEXT,
            "path": _TEXT,
            "status": st.integers(),
            "upstream_status": st.none() | st.integers(),
            "duration_ms": st.floats(allow_nan=True, allow_infinity=True),
            "token": st.none() | st.from_regex(r"[0-9a-f]{8}", fullmatch=True),
            "replayed": st.booleans(),
            "request_id": _TEXT,
        }
    ).map(lambda drawn: {key: drawn[key] for key in ACCESS_FIELDS})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fields=_proxy_fields())
def test_the_proxys_line_is_the_general_line_byte_for_byte(fields: dict[str, Any]) -> None:
    """The common shape — strings, ints, a float, a bool, a fingerprint — is rendered exactly as the pipeline does."""
    assert _fast_line(dict(fields)) == _general_line(dict(fields))


def test_the_access_line_is_rendered_in_one_step_under_our_json_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    """The proxy's fields take the fast renderer (the property test above would pass vacuously otherwise)."""
    rendered = _spy_on_access_line(monkeypatch)
    line = _fast_line(dict(ACCESS_FIELDS))
    assert rendered == [line.removesuffix("\n")]


def test_the_fast_line_has_the_documented_shape() -> None:
    """One JSON object: the fields in order, then event, level, logger and an ISO UTC timestamp."""
    structlog.contextvars.bind_contextvars(request_id="ignored: the field wins", tenant="t1")
    line = json.loads(_fast_line(dict(ACCESS_FIELDS)))
    assert list(line) == [*ACCESS_FIELDS, "event", "tenant", "level", "logger", "timestamp"]
    assert (line["event"], line["level"], line["logger"]) == ("request", "info", "tokenrelay.access")
    assert (line["timestamp"], line["request_id"]) == ("2025-11-26T03:10:32.123456Z", ACCESS_FIELDS["request_id"])


@pytest.mark.parametrize("key", ["path", "request_id", "route", "method"])
def test_credentials_in_free_text_fields_are_masked(key: str) -> None:
    """The redaction safety net still applies to what a client controls."""
    line = json.loads(_fast_line({**ACCESS_FIELDS, key: "/cb?access_token=abc&x=Bearer xyz"}))
    assert line[key] == f"/cb?access_token={REDACTED}&x=Bearer {REDACTED}"


def test_credentials_in_bound_context_are_masked() -> None:
    """Context bound for the request is redacted by key and by content, as on the general path."""
    structlog.contextvars.bind_contextvars(client_secret="s3cr3t", note="Basic dXNlcjpwYXNz")
    line = json.loads(_fast_line(dict(ACCESS_FIELDS)))
    assert (line["client_secret"], line["note"]) == (REDACTED, f"Basic {REDACTED}")


@pytest.mark.parametrize("token", ["not-a-fingerprint", "0123ABCD", 12345678])
def test_anything_but_a_fingerprint_under_token_is_masked(token: object) -> None:
    """``token`` is a credential-named key: only 8 lower-case hex characters (or null) pass."""
    assert json.loads(_fast_line({**ACCESS_FIELDS, "token": token}))["token"] == REDACTED


def test_non_finite_durations_keep_their_json_spelling() -> None:
    """NaN and the infinities are written as the general encoder writes them."""
    line = _fast_line({**ACCESS_FIELDS, "duration_ms": math.inf})
    assert '"duration_ms": Infinity,' in line


@pytest.mark.parametrize("reserved", ["level", "logger", "timestamp", "exc_info"])
def test_a_bound_key_the_processors_treat_specially_takes_the_general_path(
    monkeypatch: pytest.MonkeyPatch, reserved: str
) -> None:
    """The processors would overwrite it in place; the general path keeps that behaviour exactly."""
    rendered = _spy_on_access_line(monkeypatch)
    structlog.contextvars.bind_contextvars(**{reserved: "bound"})
    assert _fast_line(dict(ACCESS_FIELDS)) == _general_line(dict(ACCESS_FIELDS))
    assert rendered == [None]


def test_other_fields_take_the_general_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """An extra or missing key is not the shape the fast renderer knows: the processors write the line."""
    rendered = _spy_on_access_line(monkeypatch)
    fields = {**ACCESS_FIELDS, "extra": "x"}
    assert _fast_line(dict(fields)) == _general_line(dict(fields))
    assert rendered == [None]


def test_capture_logs_sees_the_access_line_under_our_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    """``capture_logs`` edits the processor list in place; the access line then goes through its capture."""
    rendered = _spy_on_access_line(monkeypatch)
    configure_logging("info", "json", stream=io.StringIO(), cache_loggers=False)
    with capture_logs() as logs:
        log_access(**ACCESS_FIELDS)
    assert rendered == []
    assert logs == [{**ACCESS_FIELDS, "event": "request", "log_level": "info"}]


def test_console_output_takes_the_general_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The console renderer is not what the fast renderer reproduces."""
    rendered = _spy_on_access_line(monkeypatch)
    out = io.StringIO()
    configure_logging("info", "console", stream=out, cache_loggers=False)
    log_access(**ACCESS_FIELDS)
    assert rendered == []
    assert "request" in out.getvalue()


def test_log_access_at_warning_does_no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Level filtering happens before any rendering."""
    rendered = _spy_on_access_line(monkeypatch)
    out = io.StringIO()
    configure_logging("warning", "json", stream=out, cache_loggers=False)
    log_access(**ACCESS_FIELDS)
    assert (rendered, out.getvalue()) == ([], "")


@given(text=_TEXT | st.text(alphabet=st.sampled_from("aAeEbBrRsSiIcCdDpPoOyYjJ_tTkKnNwW"), max_size=20))
def test_the_cheap_hint_test_never_misses_a_hint(text: str) -> None:
    """``may_hint`` may say yes too often (the exact redaction follows), never no when ``HINTS`` matches."""
    assert tokenrelay.log_redaction.may_hint(text) or tokenrelay.log_redaction.HINTS.search(text) is None


@pytest.mark.parametrize(
    "path", ["/cb?accessToken=abc", "/cb?AccessToken=abc", "/cb?ACCESS_TOKEN=abc", "/cb?refresh-token=abc&x=1"]
)
def test_camel_case_credentials_in_the_path_are_masked_as_the_pipeline_masks_them(
    monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """Any spelling of a credential parameter: the one-step line masks it, byte for byte as the processors do."""
    rendered = _spy_on_access_line(monkeypatch)
    line = _fast_line({**ACCESS_FIELDS, "path": path})
    assert line == _general_line({**ACCESS_FIELDS, "path": path})
    assert rendered[0] is not None
    assert json.loads(line)["path"] == path.replace("abc", REDACTED)


@pytest.mark.parametrize("path", ["/oauth/token", "/keys", "/Passport/1"])
def test_a_path_holding_a_hint_word_takes_the_checked_branch_with_the_same_bytes(
    monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """A hint only costs the substitutions: the line is rendered field by field, unchanged and identical."""
    heads: list[str] = []
    real: Callable[[dict[str, Any]], str] = tokenrelay.access_log._access_head

    def spy(fields: dict[str, Any]) -> str:
        heads.append(real(fields))
        return heads[-1]

    monkeypatch.setattr(tokenrelay.access_log, "_access_head", spy)
    line = _fast_line({**ACCESS_FIELDS, "path": path})
    assert line == _general_line({**ACCESS_FIELDS, "path": path})
    assert len(heads) == 1
    assert json.loads(line)["path"] == path
