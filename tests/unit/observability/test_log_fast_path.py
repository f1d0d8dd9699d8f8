"""The cheap per-line path: our loggers skip stdlib logging, yet every line is what structlog's stock parts make."""

from __future__ import annotations

import datetime
import io
import json
import logging

import pytest
import structlog
from structlog.testing import capture_logs

from tests.unit.observability.access_fields import ACCESS_FIELDS
from tokenrelay.log import LineWriter, UtcTimestamper, configure_logging, log_access, render_json


class _Structured:
    def __structlog__(self) -> str:
        return "structured"


class _Opaque:
    def __repr__(self) -> str:
        return "<opaque>"


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class _BrokenStream(io.StringIO):
    def write(self, _: str) -> int:
        raise BrokenPipeError("the log reader went away")


def test_render_json_is_byte_identical_to_structlogs_json_renderer() -> None:
    """Same keys, order, separators, escaping and fallbacks: a log shipper cannot tell the difference."""
    event = {
        "path": '/a?b=&"c"=',
        "status": 200,
        "upstream_status": None,
        "duration_ms": 1.25,
        "replayed": False,
        "name": "caf\u00e9",
        "obj": _Structured(),
        "other": _Opaque(),
        "event": "request",
    }
    expected = structlog.processors.JSONRenderer()(None, "info", dict(event))
    assert render_json(None, "info", dict(event)) == expected


@pytest.mark.parametrize("micros", [0, 7, 123456, 999999])
def test_timestamps_match_datetime_isoformat_in_utc(monkeypatch: pytest.MonkeyPatch, micros: int) -> None:
    """The per-second cache formats exactly as ``TimeStamper(fmt="iso", utc=True)``, a zero fraction included."""
    when = datetime.datetime(2026, 11, 26, 2, 10, 32, micros, tzinfo=datetime.UTC)
    nanos = (int(when.timestamp()) * 1_000_000 + micros) * 1000 + 999
    monkeypatch.setattr("tokenrelay.log_output.time.time_ns", lambda: nanos)
    stamped = UtcTimestamper()(None, "info", {})["timestamp"]
    assert stamped == when.isoformat().replace("+00:00", "Z")


def test_the_timestamp_follows_the_clock_across_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cached date-and-time prefix is replaced when the second changes."""
    stamper = UtcTimestamper()
    clock = iter([1_700_000_000_500_000_000, 1_700_000_001_000_001_000])
    monkeypatch.setattr("tokenrelay.log_output.time.time_ns", lambda: next(clock))
    first, second = (stamper(None, "info", {})["timestamp"] for _ in range(2))
    assert (first, second) == ("2023-11-14T22:13:20.500000Z", "2023-11-14T22:13:21.000001Z")


def test_our_events_do_not_go_through_stdlib_logging() -> None:
    """A tokenrelay event is written without a LogRecord (that detour was the cost), still as one JSON line."""
    out, recorder = io.StringIO(), _Recorder()
    configure_logging("info", "json", stream=out, cache_loggers=False)
    logging.getLogger().addHandler(recorder)
    try:
        structlog.get_logger("tokenrelay.access").info("request", status=200)
    finally:
        logging.getLogger().removeHandler(recorder)
    assert recorder.records == []
    line = json.loads(out.getvalue())
    assert (line["event"], line["status"], line["logger"]) == ("request", 200, "tokenrelay.access")


def test_our_lines_and_stdlib_lines_render_identically() -> None:
    """The same event through either path gives the same line, apart from the timestamp."""
    out = io.StringIO()
    configure_logging("info", "json", stream=out, cache_loggers=False)
    structlog.get_logger("aiohttp.server").warning("same event")
    logging.getLogger("aiohttp.server").warning("same event")
    ours, theirs = (json.loads(line) for line in out.getvalue().splitlines())
    del ours["timestamp"], theirs["timestamp"]
    assert list(ours.items()) == list(theirs.items())


def test_a_failing_stream_never_fails_the_caller() -> None:
    """A request must not break because its access line could not be written (a closed pipe, a full disk)."""
    configure_logging("info", "json", stream=_BrokenStream(), cache_loggers=False)
    structlog.get_logger("tokenrelay.access").info("request")


def test_line_writer_writes_one_line_per_event_under_the_lock() -> None:
    """Each event is one newline-terminated write, whatever level method structlog calls."""
    out = io.StringIO()
    writer = LineWriter("tokenrelay.test", out, logging.Handler().lock or pytest.fail("no lock"))
    writer.info("a")
    writer.error("b")
    assert out.getvalue() == "a\nb\n"


def test_log_access_writes_exactly_the_line_of_the_structlog_call() -> None:
    """Same keys in the same order, context variables included; only the timestamp differs."""
    out = io.StringIO()
    configure_logging("info", "json", stream=out, cache_loggers=False)
    structlog.contextvars.bind_contextvars(request_id=ACCESS_FIELDS["request_id"], tenant="t1")
    log_access(**ACCESS_FIELDS)
    structlog.get_logger("tokenrelay.access").info("request", **ACCESS_FIELDS)
    fast, slow = (json.loads(line) for line in out.getvalue().splitlines())
    del fast["timestamp"], slow["timestamp"]
    assert list(fast.items()) == list(slow.items())
    assert fast["tenant"] == "t1"


def test_log_access_is_redacted_like_any_line() -> None:
    """The safety net still runs: a credential in the path is masked."""
    out = io.StringIO()
    configure_logging("info", "json", stream=out, cache_loggers=False)
    log_access(**{**ACCESS_FIELDS, "path": "/cb/Bearer abc.def"})
    assert json.loads(out.getvalue())["path"] == "/cb/Bearer ***"


def test_log_access_honours_the_configured_level() -> None:
    """At ``warning`` the access line (an info event) is not written."""
    out = io.StringIO()
    configure_logging("warning", "json", stream=out, cache_loggers=False)
    log_access(**ACCESS_FIELDS)
    assert out.getvalue() == ""


def test_log_access_is_seen_by_capture_logs() -> None:
    """Tests that capture events see the access line, whether or not our setup is installed."""
    configure_logging("info", "json", stream=io.StringIO(), cache_loggers=False)
    with capture_logs() as logs:
        log_access(**ACCESS_FIELDS)
    structlog.reset_defaults()
    with capture_logs() as again:
        log_access(**ACCESS_FIELDS)
    assert [entry["event"] for entry in (*logs, *again)] == ["request", "request"]
    assert logs[0]["route"] == "orders"


def test_log_access_follows_a_foreign_structlog_configuration() -> None:
    """After someone else configures structlog, the access line goes through their processors."""
    configure_logging("info", "json", stream=io.StringIO(), cache_loggers=False)
    seen: list[str] = []

    def collect(_logger: object, _method: str, event_dict: dict[str, object]) -> str:
        seen.append(str(event_dict["event"]))
        raise structlog.DropEvent

    structlog.configure(processors=[collect])
    log_access(**ACCESS_FIELDS)
    assert seen == ["request"]
