"""Logging: one structlog pipeline for our events *and* the stdlib records of aiohttp, with a redaction backstop.

Why this shape (structlog ``docs/standard-library.md``, "Rendering using structlog-based formatters within
logging"): every line, ours or aiohttp's, goes through the same :class:`structlog.stdlib.ProcessorFormatter` on one
stdlib handler, so the output is uniformly JSON (or console) and never interleaves two writers on one stream.
Level filtering happens first, in :func:`structlog.make_filtering_bound_logger`, so a disabled ``debug`` call
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

import logging
import re
import sys
from typing import Any, Final, Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

__all__ = ["REDACTED", "bind_request", "configure_logging", "redact", "resolve_format"]

#: What a masked value is replaced with.
REDACTED: Final = "***"

LogFormat = Literal["auto", "json", "console"]

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
_TRUSTED_KEYS: Final = frozenset({"level", "logger", "timestamp"})
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
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    _install_handler(_formatter(resolve_format(fmt, stream), stream, shared), stream, threshold)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=structlog.stdlib.LoggerFactory(),
        context_class=dict,
        cache_logger_on_first_use=cache_loggers,
    )


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
    """Processor: mask credential-like keys and credentials inside strings, in place, nested up to 4 levels."""
    for key, value in event_dict.items():
        if value is None or key in _TRUSTED_KEYS or key == "_record":
            continue
        if _is_sensitive_key(key):
            if not (isinstance(value, str) and _FINGERPRINT.fullmatch(value)):
                event_dict[key] = REDACTED
        elif isinstance(value, str):
            if _may_hold_credential(value):
                event_dict[key] = _scrub(value)
        elif isinstance(value, dict | list | tuple):
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


def _formatter(
    fmt: Literal["json", "console"], stream: TextIO, shared: list[Processor]
) -> structlog.stdlib.ProcessorFormatter:
    renderer: Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        isatty = getattr(stream, "isatty", None)
        renderer = structlog.dev.ConsoleRenderer(colors=bool(callable(isatty) and isatty()))
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # Tracebacks become a string *before* redaction so that credentials inside them are masked too.
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
    )


def _install_handler(formatter: logging.Formatter, stream: TextIO, threshold: int) -> None:
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
