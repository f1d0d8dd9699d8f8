"""``configure_logging``: renderer selection, level filtering, stdlib routing, context binding."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest
import structlog

from tokenrelay.log import bind_request, configure_logging, resolve_format


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


class _Explodes:
    """An argument whose rendering fails: proves a filtered call never reaches a renderer."""

    def __repr__(self) -> str:
        raise AssertionError("a disabled log call rendered its arguments")

    __str__ = __repr__


def _lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


def test_auto_renders_json_when_the_stream_is_not_a_tty() -> None:
    """Pipes, files and log shippers get one JSON object per line."""
    out = io.StringIO()
    configure_logging("info", "auto", stream=out, cache_loggers=False)
    structlog.get_logger("tokenrelay.test").info("started", port=8080)
    (line,) = _lines(out)
    assert (line["event"], line["port"], line["level"], line["logger"]) == ("started", 8080, "info", "tokenrelay.test")


def test_auto_renders_console_lines_on_a_tty() -> None:
    """A person at a terminal gets aligned key=value lines, not JSON."""
    out = _Tty()
    configure_logging("info", "auto", stream=out, cache_loggers=False)
    structlog.get_logger("tokenrelay.test").info("started", port=8080)
    text = out.getvalue()
    assert "started" in text
    assert "port" in text
    assert not text.lstrip().startswith("{")


@pytest.mark.parametrize(("fmt", "tty", "expected"), [("json", True, "json"), ("console", False, "console")])
def test_an_explicit_format_wins_over_tty_detection(fmt: str, tty: bool, expected: str) -> None:
    """``json`` on a TTY and ``console`` into a pipe are honoured as asked."""
    stream = _Tty() if tty else io.StringIO()
    assert resolve_format(fmt, stream) == expected  # type: ignore[arg-type]


def test_timestamps_are_iso_8601_in_utc() -> None:
    """Every line carries an ISO timestamp ending in Z, whatever the host's timezone."""
    out = io.StringIO()
    configure_logging("info", "json", stream=out, cache_loggers=False)
    structlog.get_logger("tokenrelay.test").info("event")
    (line,) = _lines(out)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", str(line["timestamp"]))


def test_events_below_the_level_are_dropped() -> None:
    """At ``warning``, info and debug events produce no output; warnings do."""
    out = io.StringIO()
    configure_logging("warning", "json", stream=out, cache_loggers=False)
    log = structlog.get_logger("tokenrelay.test")
    log.debug("d")
    log.info("i")
    log.warning("w")
    assert [line["event"] for line in _lines(out)] == ["w"]


def test_a_filtered_call_does_no_rendering_work() -> None:
    """Disabled levels return before any processor runs: their arguments are never even repr'd."""
    out = io.StringIO()
    configure_logging("info", "json", stream=out, cache_loggers=False)
    structlog.get_logger("tokenrelay.test").debug("expensive", value=_Explodes())
    assert out.getvalue() == ""


def test_aiohttp_warnings_are_rendered_by_the_same_pipeline() -> None:
    """aiohttp's stdlib records come out as JSON with our keys, not as plain text next to it."""
    out = io.StringIO()
    configure_logging("info", "json", stream=out, cache_loggers=False)
    logging.getLogger("aiohttp.server").warning("bad request from %s", "127.0.0.1")
    (line,) = _lines(out)
    assert line["event"] == "bad request from 127.0.0.1"
    assert (line["level"], line["logger"]) == ("warning", "aiohttp.server")
    assert "timestamp" in line


def test_aiohttp_info_and_debug_are_held_back_even_at_debug_level() -> None:
    """aiohttp.client/server/web only matter when something is wrong: below warning they are silent."""
    out = io.StringIO()
    configure_logging("debug", "json", stream=out, cache_loggers=False)
    for name in ("aiohttp.client", "aiohttp.server", "aiohttp.web"):
        logging.getLogger(name).info("chatter")
        logging.getLogger(name).debug("chatter")
    assert out.getvalue() == ""


def test_aiohttp_access_log_is_disabled() -> None:
    """tokenrelay.access replaces it: aiohttp's own access lines never appear."""
    out = io.StringIO()
    configure_logging("debug", "json", stream=out, cache_loggers=False)
    logging.getLogger("aiohttp.access").info("GET / 200")
    assert out.getvalue() == ""
    assert not logging.getLogger("aiohttp.access").isEnabledFor(logging.CRITICAL)


def test_bound_request_id_appears_on_every_line_including_stdlib_ones() -> None:
    """The request id bound once at the start of a request is on our lines and on aiohttp's."""
    out = io.StringIO()
    configure_logging("info", "json", stream=out, cache_loggers=False)
    bind_request("req-1", route="orders")
    structlog.get_logger("tokenrelay.access").info("request")
    logging.getLogger("aiohttp.server").error("oops")
    assert [(line["request_id"], line["route"]) for line in _lines(out)] == [("req-1", "orders")] * 2


def test_bind_request_forgets_the_previous_request() -> None:
    """Fields of one request never leak into the next one's lines."""
    out = io.StringIO()
    configure_logging("info", "json", stream=out, cache_loggers=False)
    bind_request("req-1", route="orders")
    bind_request("req-2")
    structlog.get_logger("tokenrelay.access").info("request")
    (line,) = _lines(out)
    assert line["request_id"] == "req-2"
    assert "route" not in line


def test_reconfiguring_replaces_the_handler_instead_of_adding_one() -> None:
    """A second configure_logging (e.g. after a reload) does not duplicate lines or keep the old stream."""
    first, second = io.StringIO(), io.StringIO()
    configure_logging("info", "json", stream=first, cache_loggers=False)
    configure_logging("info", "json", stream=second, cache_loggers=False)
    structlog.get_logger("tokenrelay.test").info("once")
    logging.getLogger("aiohttp.server").error("once too")
    assert first.getvalue() == ""
    assert len(_lines(second)) == 2


def test_foreign_root_handlers_are_left_in_place() -> None:
    """Only our own handler is replaced: a handler installed by someone else (pytest, an embedder) survives."""
    other = logging.NullHandler()
    logging.getLogger().addHandler(other)
    configure_logging("info", "json", stream=io.StringIO(), cache_loggers=False)
    configure_logging("info", "json", stream=io.StringIO(), cache_loggers=False)
    assert other in logging.getLogger().handlers


def test_an_unknown_level_is_rejected_with_the_valid_ones_named() -> None:
    """A typo fails loudly instead of silently logging everything or nothing."""
    with pytest.raises(ValueError, match="debug, info, warning, error, critical"):
        configure_logging("verbose", "json", stream=io.StringIO(), cache_loggers=False)


def test_level_names_are_case_insensitive() -> None:
    """``INFO`` from an environment variable works like ``info``."""
    out = io.StringIO()
    configure_logging("INFO", "json", stream=out, cache_loggers=False)
    structlog.get_logger("tokenrelay.test").info("event")
    assert len(_lines(out)) == 1
