"""Where rendered log lines go, and the pieces every line shares: the writer, the timestamp and the JSON renderer.

A leaf module on purpose: both :mod:`tokenrelay.log` (which configures structlog with these) and
:mod:`tokenrelay.access_log` (which writes the access line through them in one step) need them, and neither of
those two should import the other's internals.
"""

from __future__ import annotations

import json
import time
from contextlib import AbstractContextManager
from typing import Any, Final, TextIO

from structlog.typing import EventDict, WrappedLogger

__all__ = ["ENCODER", "LineWriter", "LineWriterFactory", "UtcTimestamper", "render_json"]

_Lock = AbstractContextManager[Any]


class UtcTimestamper:
    """Processor: ``timestamp`` as ISO 8601 in UTC — ``TimeStamper(fmt="iso", utc=True)``'s exact output, cheaper.

    Every line needs one, and building a ``datetime`` to format it cost more than the rest of the timestamp: here
    the date and time of day are formatted once per second and only the microseconds per line.
    """

    __slots__ = ("_cached",)

    def __init__(self) -> None:
        self._cached = (-1, "")  # (second, its "YYYY-MM-DDTHH:MM:SS"): one attribute, so threads swap it whole

    def __call__(self, _logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
        event_dict["timestamp"] = self.stamp()
        return event_dict

    def stamp(self) -> str:
        """The current time as ``2026-11-26T02:10:32.123456Z``."""
        second, micros = divmod(time.time_ns() // 1000, 1_000_000)
        cached_second, prefix = self._cached
        if second != cached_second:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._cached = (second, prefix)
        # datetime.isoformat() leaves the fraction out when it is zero; so do we.
        return f"{prefix}.{micros:06d}Z" if micros else f"{prefix}Z"


class LineWriter:
    """The logger structlog wraps for our own loggers: writes each rendered line to the stream and flushes it.

    It takes the stdlib handler's lock, so a line from a library's (stdlib) logger written by another thread can
    never interleave with ours. A failing stream (a closed pipe) loses the line but never fails the caller — a
    request must not break because its access line could not be written — as stdlib handlers behave.
    """

    __slots__ = ("_lock", "_stream", "name")

    def __init__(self, name: str, stream: TextIO, lock: _Lock) -> None:
        self.name = name  # read by ``structlog.stdlib.add_logger_name``
        self._stream = stream
        self._lock = lock

    def msg(self, message: str) -> None:
        """Write one rendered event (any level: filtering happened before rendering)."""
        try:
            with self._lock:
                self._stream.write(message + "\n")
                self._stream.flush()
        except (OSError, ValueError):  # ValueError: I/O operation on a closed file
            pass

    debug = info = warning = warn = error = err = critical = fatal = exception = failure = log = msg


class LineWriterFactory:
    """``structlog.configure(logger_factory=...)``: one :class:`LineWriter` per ``get_logger(name)``."""

    __slots__ = ("_lock", "_stream")

    def __init__(self, stream: TextIO, lock: _Lock) -> None:
        self._stream = stream
        self._lock = lock

    def __call__(self, *args: Any) -> LineWriter:
        name = args[0] if args and isinstance(args[0], str) else "tokenrelay"
        return LineWriter(name, self._stream, self._lock)


def render_json(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> str:
    """Processor: the event as one JSON object — exactly ``structlog.processors.JSONRenderer()``'s output.

    One encoder is built once instead of per line (``json.dumps(..., default=...)`` constructs a new one per call).
    """
    return ENCODER.encode(event_dict)


def _json_default(value: object) -> object:
    """Like structlog's JSON fallback: an object's ``__structlog__()`` if it has one, else its ``repr``."""
    method = getattr(value, "__structlog__", None)
    return method() if callable(method) else repr(value)


#: The one encoder :func:`render_json` and the access-line renderer share, so both encode values identically.
ENCODER: Final = json.JSONEncoder(default=_json_default)
