"""The access line: one per request, rendered in one step with the same bytes the structlog processors produce.

It runs once per request and through structlog's generic layers cost about as much as forwarding a small
request (see ``docs/performance.md``). :func:`tokenrelay.log.configure_logging` hands the pipeline it built to
:func:`install_pipeline`; :func:`log_access` uses it while structlog still runs exactly that setup, and otherwise
falls back to a plain ``info`` call. The arrows point one way: :mod:`tokenrelay.log` imports this module (to
install the pipeline and to re-export :func:`log_access`), this module imports only the leaf modules
:mod:`tokenrelay.log_output` and :mod:`tokenrelay.log_redaction`.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from typing import Any, Final

import structlog
from structlog.contextvars import STRUCTLOG_KEY_PREFIX, STRUCTLOG_KEY_PREFIX_LEN
from structlog.typing import FilteringBoundLogger, Processor

from tokenrelay.log_output import ENCODER, LineWriter, LineWriterFactory, UtcTimestamper
from tokenrelay.log_redaction import FINGERPRINT, may_hint, redact, scrub

__all__ = ["ACCESS_LOGGER", "AccessPipeline", "install_pipeline", "log_access"]

#: The logger of the one-line-per-request access log.
ACCESS_LOGGER: Final = "tokenrelay.access"


@dataclass(frozen=True, slots=True)
class AccessPipeline:
    """What :func:`tokenrelay.log.configure_logging` installed, so :func:`log_access` can run it directly."""

    processors: list[Processor]
    wrapper_class: type[FilteringBoundLogger]
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


_installed: AccessPipeline | None = None
_access_logger = structlog.get_logger(ACCESS_LOGGER)


def install_pipeline(pipeline: AccessPipeline) -> None:
    """Record the setup :func:`tokenrelay.log.configure_logging` just gave structlog (replacing any previous one)."""
    global _installed  # the logging setup is process-wide state by nature
    _installed = pipeline


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
    """The access line as ``merge_contextvars`` … ``redact``, ``render_json`` make it, in one f-string.

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
        and (token is None or (type(token) is str and FINGERPRINT.fullmatch(token) is not None))
        and not may_hint(f"{route}\0{method}\0{path}\0{request_id}")
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


def _access_head(fields: dict[str, Any]) -> str:
    """The fields part of an access line with uncommon values: each one redacted and encoded on its own."""
    fingerprint = fields["token"]  # a credential-named key: only a fingerprint (or None) passes redaction
    if type(fingerprint) is str and FINGERPRINT.fullmatch(fingerprint) is not None:
        fingerprint = f'"{fingerprint}"'
    else:
        fingerprint = ENCODER.encode(redact(None, "info", {"token": fingerprint})["token"])
    return (
        f'{{"route": {_json_field(fields["route"])}, "method": {_json_field(fields["method"])}, '
        f'"path": {_json_field(fields["path"])}, "status": {_json_field(fields["status"])}, '
        f'"upstream_status": {_json_field(fields["upstream_status"])}, '
        f'"duration_ms": {_json_field(fields["duration_ms"])}, "token": {fingerprint}, '
        f'"replayed": {_json_field(fields["replayed"])}, "request_id": {_json_field(fields["request_id"])}'
    )


def _json_field(value: Any) -> str:
    """One value under a non-credential key, redacted and encoded as ``redact`` and ``render_json`` do."""
    kind = type(value)
    if kind is str:
        return encode_basestring_ascii(scrub(value) if may_hint(value) else value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)
    if kind is float and value - value == 0.0:  # finite: NaN and the infinities have JSON spellings of their own
        return float.__repr__(value)
    return ENCODER.encode(redact(None, "info", {"value": value})["value"])  # containers, subclasses, objects


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
    return "".join(f", {encode_basestring_ascii(key)}: {ENCODER.encode(value)}" for key, value in bound.items())
