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

This module only *configures*; the parts live in modules with one job each, and the arrows point one way:

- :mod:`tokenrelay.log_output` (leaf): :class:`LineWriter`, :class:`UtcTimestamper`, :func:`render_json`;
- :mod:`tokenrelay.log_redaction` (leaf): :func:`redact`, the backstop that masks credentials in every line;
- :mod:`tokenrelay.access_log` -> both leaves: :func:`log_access`, the one-step access-line renderer. This module
  hands it the pipeline it built (:func:`tokenrelay.access_log.install_pipeline`), so the access path never
  imports the configuration code.

The public names of all three are re-exported here, so ``from tokenrelay.log import ...`` keeps working.

Loggers used by the project: ``tokenrelay.access`` (one line per request), ``tokenrelay.tokens``,
``tokenrelay.proxy``, ``tokenrelay.config``, ``tokenrelay.grant``, ``tokenrelay.server``. The per-request
``request_id`` lives in structlog's contextvars: the proxy handler sets structlog's own variable for it directly
(cheaper per request); :func:`bind_request` does the same for code that handles requests of its own.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Final, Literal, TextIO

import structlog
from structlog.typing import Processor

from tokenrelay.access_log import ACCESS_LOGGER, AccessPipeline, install_pipeline, log_access
from tokenrelay.log_output import LineWriter, LineWriterFactory, UtcTimestamper, render_json
from tokenrelay.log_redaction import REDACTED, redact

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

LogFormat = Literal["auto", "json", "console"]

_LEVELS: Final = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}

_HANDLER_NAME: Final = "tokenrelay"


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
    install_pipeline(
        AccessPipeline(
            processors, wrapper_class, factory, factory(ACCESS_LOGGER), threshold <= logging.INFO,
            list(processors) if renderer is render_json else None, stamper,
        )
    )  # fmt: skip


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


def _renderer(fmt: LogFormat, stream: TextIO) -> Processor:
    if resolve_format(fmt, stream) == "json":
        return render_json
    isatty = getattr(stream, "isatty", None)
    return structlog.dev.ConsoleRenderer(colors=bool(callable(isatty) and isatty()))


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
