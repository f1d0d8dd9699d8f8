"""Logging: one structlog pipeline for our events *and* the stdlib records of aiohttp, with a redaction backstop.

Why this shape: our own loggers (``structlog.get_logger("tokenrelay...")``) run structlog's *native* pipeline —
:func:`structlog.make_filtering_bound_logger` for the level, then the processors, then :class:`LineWriter`, which
writes the rendered line straight to the stream. The stdlib ``logging`` machinery (a ``LogRecord``, handler
dispatch, :class:`structlog.stdlib.ProcessorFormatter`) is used only for *foreign* records — aiohttp's and other
libraries' loggers. Both paths share the same processors, renderer, stream and lock, so every line is uniformly
JSON (or console), identical in content whichever path wrote it, and never interleaves with another. The split is
for speed: the access line is written on every request, and the stdlib route cost about as much as forwarding
the request itself (see ``docs/performance.md``). Level filtering happens first, so a disabled ``debug`` call
returns before any processor runs and never renders its arguments. The access line, written on every request,
has a one-step renderer (:func:`log_access`) that produces the same bytes as the processors; anything it does
not recognise goes through them.

Secrets are never *supposed* to reach a logger: code logs fingerprints. :func:`redact` is the last line of
defence for mistakes: it masks values under credential-like keys and credentials embedded in strings
(``Bearer``/``Basic``/``DPoP`` values, JWS-shaped tokens, ``client_secret=...`` form or JSON fragments). It runs
after exceptions are formatted, so a traceback carrying an ``Authorization`` header is masked too.

Loggers used by the project: ``tokenrelay.access`` (one line per request), ``tokenrelay.tokens``,
``tokenrelay.proxy``, ``tokenrelay.config``, ``tokenrelay.grant``, ``tokenrelay.server``. The per-request
``request_id`` lives in structlog's contextvars (:func:`bind_request`).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import threading
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from typing import Any, Final, Literal, TextIO

import structlog
from structlog.contextvars import STRUCTLOG_KEY_PREFIX, STRUCTLOG_KEY_PREFIX_LEN
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
    stamper = UtcTimestamper()
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        stamper,
    ]
    # Tracebacks become a string *before* redaction so that credentials inside them are masked too.
    renderer = _renderer(fmt, stream)
    final: list[Processor] = [structlog.processors.format_exc_info, redact, renderer]
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
    _installed = _Pipeline(
        processors, wrapper_class, factory, factory(ACCESS_LOGGER), threshold <= logging.INFO,
        list(processors) if renderer is render_json else None, stamper,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Pipeline:
    """What :func:`configure_logging` installed, so :func:`log_access` can run it without the generic layers."""

    processors: list[Processor]
    wrapper_class: type[structlog.typing.FilteringBoundLogger]
    factory: LineWriterFactory
    writer: LineWriter
    info_enabled: bool
    #: A copy of ``processors`` when they render JSON: while the list still equals it (``capture_logs`` and others
    #: edit it in place), :func:`_access_line` writes exactly what they would. ``None`` (console): never.
    pristine: list[Processor] | None
    stamper: UtcTimestamper

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

    It runs once per request and cost about as much as forwarding a small request, so under our own JSON setup it
    renders the line in one step (:func:`_access_line`: the same bytes the processors would produce, redaction
    included). Otherwise — console output, a processor list edited in place (``capture_logs``), unexpected keys —
    it runs the configured processors directly, skipping only structlog's generic layers (lazy proxy, bound-logger
    dispatch, two copies of the keyword arguments). Under any other structlog configuration it is exactly that
    ``info`` call.
    """
    pipeline = _installed
    if pipeline is None or not pipeline.is_current():
        _access_logger.info("request", **fields)
        return
    if not pipeline.info_enabled:
        return
    if pipeline.pristine is not None and pipeline.processors == pipeline.pristine:
        line = _access_line(fields, pipeline.stamper)
        if line is not None:
            pipeline.writer.msg(line)
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


#: The keys :mod:`tokenrelay.proxy.handler` passes, in its order: the one shape :func:`_access_line` renders.
_ACCESS_KEYS: Final = (
    "route", "method", "path", "status", "upstream_status", "duration_ms", "token", "replayed", "request_id",
)  # fmt: skip
#: Context keys that the processors after ``merge_contextvars`` treat specially (they would overwrite or consume
#: them in place): a line with one of them bound takes the general path.
_RESERVED_CONTEXT_KEYS: Final = frozenset({"event", "level", "logger", "timestamp", "exc_info", "_record"})


def _access_line(fields: dict[str, Any], stamper: UtcTimestamper) -> str | None:
    """The access line as ``merge_contextvars`` … ``redact``, :func:`render_json` make it, in one f-string.

    Byte for byte the same: same key order (the fields, ``event``, bound context, ``level``, ``logger``,
    ``timestamp``), same separators and escaping; ``token`` is redacted as a credential-named key, every other
    string scanned as :func:`redact` does. ``None`` when the fields or the bound context have another shape.
    The common line (the proxy's types, no credential hint in any string) is checked and written inline: one
    hint search over the four strings at once, each value formatted directly.
    """
    if tuple(fields) != _ACCESS_KEYS:
        return None
    bound = _bound_context(fields)
    if bound is None:
        return None
    route, method, path, status, upstream_status, duration_ms, token, replayed, request_id = fields.values()
    if (
        type(route) is str and type(method) is str and type(path) is str and type(request_id) is str
        and type(status) is int and (upstream_status is None or type(upstream_status) is int)
        and type(duration_ms) is float and duration_ms - duration_ms == 0.0 and type(replayed) is bool
        and (token is None or (type(token) is str and _FINGERPRINT.fullmatch(token) is not None))
        and not _may_hint(f"{route}\0{method}\0{path}\0{request_id}")
    ):  # fmt: skip
        fingerprint = "null" if token is None else f'"{token}"'
        head = (
            f'{{"route": {encode_basestring_ascii(route)}, "method": {encode_basestring_ascii(method)}, '
            f'"path": {encode_basestring_ascii(path)}, "status": {status}, '
            f'"upstream_status": {"null" if upstream_status is None else upstream_status}, '
            f'"duration_ms": {duration_ms!r}, "token": {fingerprint}, '
            f'"replayed": {"true" if replayed else "false"}, "request_id": {encode_basestring_ascii(request_id)}'
        )
    else:
        head = _access_head(fields)
    return (
        f'{head}, "event": "request"{bound}, "level": "info", "logger": "{ACCESS_LOGGER}", '
        f'"timestamp": "{stamper.stamp()}"}}'
    )


def _may_hint(text: str) -> bool:
    """Whether ``text`` may contain one of :data:`_HINTS` (no false negatives): a cheaper test than the regex.

    Every hint, lower-cased, is one of these words, and lower-casing keeps an ASCII word inside a string; five
    to ten substring tests over the lower-cased text cost half of one search of the alternation.
    """
    text = text.lower()
    return (
        "earer" in text or "asic" in text or "dpop" in text or "eyj" in text or "_token" in text
        or "secret" in text or "assertion" in text or "password" in text
    )  # fmt: skip


def _access_head(fields: dict[str, Any]) -> str:
    """The fields part of an access line with uncommon values: each one redacted and encoded on its own."""
    fingerprint = fields["token"]  # a credential-named key: only a fingerprint (or None) passes redaction
    if type(fingerprint) is str and _FINGERPRINT.fullmatch(fingerprint) is not None:
        fingerprint = f'"{fingerprint}"'
    else:
        fingerprint = _ENCODER.encode(redact(None, "info", {"token": fingerprint})["token"])
    return (
        f'{{"route": {_json_field(fields["route"])}, "method": {_json_field(fields["method"])}, '
        f'"path": {_json_field(fields["path"])}, "status": {_json_field(fields["status"])}, '
        f'"upstream_status": {_json_field(fields["upstream_status"])}, '
        f'"duration_ms": {_json_field(fields["duration_ms"])}, "token": {fingerprint}, '
        f'"replayed": {_json_field(fields["replayed"])}, "request_id": {_json_field(fields["request_id"])}'
    )


def _json_field(value: Any) -> str:
    """One value under a non-credential key, redacted and encoded as :func:`redact` and :func:`render_json` do."""
    kind = type(value)
    if kind is str:
        return encode_basestring_ascii(_scrub(value) if _HINTS.search(value) is not None else value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)
    if kind is float and value - value == 0.0:  # finite: NaN and the infinities have JSON spellings of their own
        return float.__repr__(value)
    return _ENCODER.encode(redact(None, "info", {"value": value})["value"])  # containers, subclasses, objects


def _bound_context(fields: dict[str, Any]) -> str | None:
    """What ``merge_contextvars`` adds (keys the call did not pass), rendered as ``, "key": value`` pairs."""
    bound: dict[str, Any] = {}
    for variable, value in contextvars.copy_context().items():
        name = variable.name
        if value is Ellipsis or not name.startswith(STRUCTLOG_KEY_PREFIX):
            continue
        key = name[STRUCTLOG_KEY_PREFIX_LEN:]
        if key in fields or key in bound:
            continue
        if key in _RESERVED_CONTEXT_KEYS:
            return None
        bound[key] = value
    if not bound:
        return ""
    redact(None, "info", bound)
    return "".join(f", {encode_basestring_ascii(key)}: {_ENCODER.encode(value)}" for key, value in bound.items())


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
