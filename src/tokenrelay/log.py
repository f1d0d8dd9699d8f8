"""Logging: one structlog pipeline for our events *and* the stdlib records of aiohttp, with a redaction backstop.

Why this shape: our own loggers (``structlog.get_logger("tokenrelay...")``) run structlog's *native* pipeline —
:func:`structlog.make_filtering_bound_logger` for the level, then the processors, then :class:`LineWriter`, which
writes the rendered line straight to the stream. The stdlib ``logging`` machinery (a ``LogRecord``, handler
dispatch, :class:`structlog.stdlib.ProcessorFormatter`) is used only for *foreign* records — aiohttp's and other
libraries' loggers. Both paths share the same processors, renderer, stream and lock, so every line is uniformly
JSON (or console), identical in content whichever path wrote it, and never interleaves with another. The split is
for speed: the access line is written on every request, and the stdlib route cost about as much as forwarding
the request itself (see ``docs/performance.md``). Level filtering happens first, so a disabled ``debug`` call
returns before any processor runs and never renders its arguments.

Secrets are never *supposed* to reach a logger: code logs fingerprints. :func:`redact` is the last line of
defence for mistakes: it masks values under credential-like keys and credentials embedded in strings
(``Bearer``/``Basic``/``DPoP`` values, JWS-shaped tokens, ``client_secret=...`` form or JSON fragments). It runs
after exceptions are formatted, so a traceback carrying an ``Authorization`` header is masked too.

Loggers used by the project: ``tokenrelay.access`` (one line per request), ``tokenrelay.tokens``,
``tokenrelay.proxy``, ``tokenrelay.config``, ``tokenrelay.grant``, ``tokenrelay.server``. The per-request
``request_id`` lives in structlog's contextvars (:func:`bind_request`).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Final, Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

__all__ = [
    "ACCESS_LOGGER",
    "REDACTED",
    "LineWriter",
    "LineWriterFactory",
    "UtcTimestamper",
    "bind_request",
    "configure_logging",
    "log_access",
    "redact",
    "render_json",
    "resolve_format",
]

#: What a masked value is replaced with.
REDACTED: Final = "***"
#: The logger of the one-line-per-request access log.
ACCESS_LOGGER: Final = "tokenrelay.access"

LogFormat = Literal["auto", "json", "console"]
_Lock = AbstractContextManager[Any]

_LEVELS: Final = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}

#: Keys whose values are always masked (compared lower-cased, ``-`` read as ``_``). ``token_fingerprint`` and other
#: derived names are deliberately absent: a fingerprint is how a token *may* appear.
_SENSITIVE_KEYS: Final = frozenset(
    {
        "authorization",
        "proxy_authorization",
        "access_token",
        "refresh_token",
        "id_token",
        "token",
        "client_secret",
        "secret",
        "password",
        "passphrase",
        "private_key",
        "client_assertion",
        "assertion",
        "api_key",
        "x_api_key",
        "x_tokenrelay_key",
        "cookie",
        "set_cookie",
    }
)
#: A fingerprint (8 lower-case hex, :func:`tokenrelay.fingerprints.fingerprint`) passes even under ``token=``:
#: no real credential is 32 bits long, and ``log.info(..., token=cached.fingerprint)`` is the intended idiom.
_FINGERPRINT: Final = re.compile(r"[0-9a-f]{8}")
_SCHEME_CREDENTIAL: Final = re.compile(r"(?i)\b(bearer|basic|dpop)(\s+)[^\s,;\"']+")
_JWS: Final = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_PARAMETER: Final = re.compile(
    r"(?i)([\"']?\b(?:access_token|refresh_token|id_token|client_secret|client_assertion|password)[\"']?"
    r"\s*[=:]\s*[\"']?)[^&\s\"',;}]+"
)
#: Substrings without which none of the patterns above can match: one search for them is far cheaper than the
#: three substitutions, and almost every logged string contains none of them.
_HINTS: Final = re.compile("earer|EARER|asic|ASIC|DPoP|dpop|eyJ|_token|secret|assertion|password")
#: Keys whose values our own processors set (never user data): not scanned.
_TRUSTED_KEYS: Final = frozenset({"level", "logger", "timestamp", "_record"})
_CONTAINERS: Final = (dict, list, tuple)
_MAX_DEPTH: Final = 4
_MAX_MEMO: Final = 4096

_HANDLER_NAME: Final = "tokenrelay"

_key_verdicts: dict[str, bool] = {}


def configure_logging(
    level: str,
    fmt: LogFormat,
    *,
    stream: TextIO = sys.stderr,
    cache_loggers: bool = True,
) -> None:
    """Configure structlog and stdlib logging for the process; calling it again replaces the previous setup.

    ``fmt="auto"`` renders JSON unless ``stream`` is a TTY. ``cache_loggers`` caches bound loggers on first use
    (structlog's production advice); tests that reconfigure logging must pass ``False``.
    """
    threshold = _LEVELS.get(level.lower())
    if threshold is None:
        raise ValueError(f"unknown log level {level!r} (use one of {', '.join(_LEVELS)})")
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        UtcTimestamper(),
    ]
    # Tracebacks become a string *before* redaction so that credentials inside them are masked too.
    final: list[Processor] = [structlog.processors.format_exc_info, redact, _renderer(fmt, stream)]
    handler = _install_handler(_formatter(shared, final), stream, threshold)
    processors = [*shared, *final]
    wrapper_class = structlog.make_filtering_bound_logger(threshold)
    factory = LineWriterFactory(stream, handler.lock or threading.RLock())
    structlog.configure(
        processors=processors,
        wrapper_class=wrapper_class,
        logger_factory=factory,
        context_class=dict,
        cache_logger_on_first_use=cache_loggers,
    )
    global _installed  # the logging setup is process-wide state by nature
    _installed = _Pipeline(processors, wrapper_class, factory, factory(ACCESS_LOGGER), threshold <= logging.INFO)


@dataclass(frozen=True, slots=True)
class _Pipeline:
    """What :func:`configure_logging` installed, so :func:`log_access` can run it without the generic layers."""

    processors: list[Processor]
    wrapper_class: type[structlog.typing.FilteringBoundLogger]
    factory: LineWriterFactory
    writer: LineWriter
    info_enabled: bool

    def is_current(self) -> bool:
        """Whether structlog still runs this setup (tests and embedders may reconfigure it at any time)."""
        config = structlog.get_config()
        return (
            config["processors"] is self.processors
            and config["wrapper_class"] is self.wrapper_class
            and config["logger_factory"] is self.factory
        )


_installed: _Pipeline | None = None
_access_logger = structlog.get_logger(ACCESS_LOGGER)


def log_access(**fields: Any) -> None:
    """Write the access line: what ``structlog.get_logger("tokenrelay.access").info("request", **fields)`` writes.

    It runs once per request, so while our own setup is in force it calls the configured processors directly —
    the same list object, hence the same output, redaction included, and whatever ``capture_logs`` puts in it —
    and skips structlog's generic layers (lazy proxy, bound-logger dispatch, two copies of the keyword arguments),
    which cost about as much as the processors themselves. Under any other structlog configuration it is exactly
    that ``info`` call.
    """
    pipeline = _installed
    if pipeline is None or not pipeline.is_current():
        _access_logger.info("request", **fields)
        return
    if not pipeline.info_enabled:
        return
    fields["event"] = "request"
    writer = pipeline.writer
    event: Any = fields
    try:
        for processor in pipeline.processors:
            event = processor(writer, "info", event)
    except structlog.DropEvent:
        return
    if isinstance(event, str):
        writer.msg(event)


class UtcTimestamper:
    """Processor: ``timestamp`` as ISO 8601 in UTC — ``TimeStamper(fmt="iso", utc=True)``'s exact output, cheaper.

    Every line needs one, and building a ``datetime`` to format it cost more than the rest of the timestamp: here
    the date and time of day are formatted once per second and only the microseconds per line.
    """

    __slots__ = ("_cached",)

    def __init__(self) -> None:
        self._cached = (-1, "")  # (second, its "YYYY-MM-DDTHH:MM:SS"): one attribute, so threads swap it whole

    def __call__(self, _logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
        second, micros = divmod(time.time_ns() // 1000, 1_000_000)
        cached_second, prefix = self._cached
        if second != cached_second:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._cached = (second, prefix)
        # datetime.isoformat() leaves the fraction out when it is zero; so do we.
        event_dict["timestamp"] = f"{prefix}.{micros:06d}Z" if micros else f"{prefix}Z"
        return event_dict


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


def resolve_format(fmt: LogFormat, stream: TextIO) -> Literal["json", "console"]:
    """``auto`` means JSON for machines (files, pipes, log shippers) and console output for a person at a TTY."""
    if fmt != "auto":
        return fmt
    isatty = getattr(stream, "isatty", None)
    return "console" if callable(isatty) and isatty() else "json"


def bind_request(request_id: str, **fields: str) -> None:
    """Start a request's log context: forget the previous request's fields and bind ``request_id`` (and more)."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id, **fields)


def redact(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Processor: mask credential-like keys and credentials inside strings, in place, nested up to 4 levels.

    It runs on every line, so the common case is kept to a dict lookup per key and one substring search per
    string value (the access line: ~2 µs); the substitutions only run on strings that contain a hint.
    """
    verdicts = _key_verdicts
    for key, value in event_dict.items():
        if value is None or key in _TRUSTED_KEYS:
            continue
        sensitive = verdicts.get(key)
        if sensitive is None:
            sensitive = _is_sensitive_key(key)
        if sensitive:
            if not (isinstance(value, str) and _FINGERPRINT.fullmatch(value)):
                event_dict[key] = REDACTED
        elif isinstance(value, str):
            if _HINTS.search(value) is not None:
                event_dict[key] = _scrub(value)
        elif isinstance(value, _CONTAINERS):
            event_dict[key] = _redact_nested(value, 1)
    return event_dict


def _redact_nested(value: Any, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        return REDACTED
    if isinstance(value, dict):
        return {
            k: (REDACTED if isinstance(k, str) and _is_sensitive_key(k) and v is not None else _redact_value(v, depth))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(_redact_value(item, depth) for item in value)
    return value


def _redact_value(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return _scrub(value) if _may_hold_credential(value) else value
    if isinstance(value, dict | list | tuple):
        return _redact_nested(value, depth + 1)
    return value


def _is_sensitive_key(key: str) -> bool:
    verdict = _key_verdicts.get(key)
    if verdict is None:
        verdict = key.lower().replace("-", "_") in _SENSITIVE_KEYS
        if len(_key_verdicts) < _MAX_MEMO:  # keys may come from requests (header names): bound the memo
            _key_verdicts[key] = verdict
    return verdict


def _may_hold_credential(value: str) -> bool:
    return _HINTS.search(value) is not None


def _scrub(value: str) -> str:
    value = _SCHEME_CREDENTIAL.sub(rf"\1\2{REDACTED}", value)
    value = _JWS.sub(REDACTED, value)
    return _PARAMETER.sub(rf"\1{REDACTED}", value)


def _renderer(fmt: LogFormat, stream: TextIO) -> Processor:
    if resolve_format(fmt, stream) == "json":
        return render_json
    isatty = getattr(stream, "isatty", None)
    return structlog.dev.ConsoleRenderer(colors=bool(callable(isatty) and isatty()))


def render_json(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> str:
    """Processor: the event as one JSON object — exactly ``structlog.processors.JSONRenderer()``'s output.

    One encoder is built once instead of per line (``json.dumps(..., default=...)`` constructs a new one per call).
    """
    return _ENCODER.encode(event_dict)


def _json_default(value: object) -> object:
    """Like structlog's JSON fallback: an object's ``__structlog__()`` if it has one, else its ``repr``."""
    method = getattr(value, "__structlog__", None)
    return method() if callable(method) else repr(value)


_ENCODER: Final = json.JSONEncoder(default=_json_default)


def _formatter(shared: list[Processor], final: list[Processor]) -> structlog.stdlib.ProcessorFormatter:
    """The stdlib formatter for *foreign* records (aiohttp's): the same processors as our native pipeline."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
    )


def _install_handler(formatter: logging.Formatter, stream: TextIO, threshold: int) -> logging.Handler:
    root = logging.getLogger()
    for previous in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(previous)  # reconfiguration replaces our handler, and only ours
    handler = logging.StreamHandler(stream)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)
    root.addHandler(handler)
    root.setLevel(threshold)
    # tokenrelay.access replaces aiohttp's access log; aiohttp's other loggers only matter when something is wrong.
    logging.getLogger("aiohttp.access").disabled = True
    for name in ("aiohttp.server", "aiohttp.client", "aiohttp.web", "aiohttp.internal", "aiohttp.websocket"):
        logging.getLogger(name).setLevel(max(threshold, logging.WARNING))
    return handler
