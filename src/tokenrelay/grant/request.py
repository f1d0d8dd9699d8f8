"""Building a token-endpoint request byte for byte as simple-oauth2 does (§3 of the reference).

Pure functions: parameters (order, scope joining, ``grant_type`` override), client authentication, the body
(form or JSON) and the header list in wire order with simple-oauth2's precedence. The transport sends the
result verbatim.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from tokenrelay.grant.client_auth import ClientAuth, apply_client_auth
from tokenrelay.grant.config import HttpConfig
from tokenrelay.grant.encoding import (
    UNDEFINED,
    form_encode,
    json_encode,
    stringify_header_value,
)
from tokenrelay.grant.errors import ConfigError, FieldError

__all__ = [
    "PreparedRequest",
    "build_headers",
    "encode_body",
    "grant_params",
    "merge_http_options",
    "prepare_request",
]

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
JSON_CONTENT_TYPE = "application/json"


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    """One POST to an endpoint. ``repr`` shows neither the body nor header values (they carry credentials)."""

    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    method: str = "POST"

    def __repr__(self) -> str:
        names = [name for name, _ in self.headers]
        body = f"<{len(self.body)} bytes>"
        return f"PreparedRequest(method={self.method!r}, url={self.url!r}, headers={names!r}, body={body})"


def _scope_item(value: object) -> str:
    """``Array.prototype.join`` renders ``null``/``undefined`` as empty and everything else with ``String``."""
    if value is None or value is UNDEFINED:
        return ""
    return stringify_header_value(value)


def grant_params(
    base: Mapping[str, object], params: Mapping[str, object] | None, scope_separator: str
) -> dict[str, object]:
    """``base`` then the caller's ``params`` in order (a caller's key replaces a base key in place), with a
    list ``scope`` joined by ``scope_separator`` and anything else left as is."""
    if params is not None and not isinstance(params, Mapping):
        raise ConfigError([FieldError("params", "must be a mapping")], prefix="invalid token parameters")
    merged: dict[str, object] = dict(base)
    merged.update(params or {})
    scope = merged.get("scope")
    if isinstance(scope, list | tuple):
        merged["scope"] = scope_separator.join(_scope_item(item) for item in scope)
    return merged


def encode_body(params: Mapping[str, object], body_format: Literal["form", "json"]) -> tuple[bytes, str]:
    """The body bytes and their ``Content-Type`` (no charset, as simple-oauth2 sends it)."""
    try:
        if body_format == "json":
            return json_encode(params).encode("utf-8"), JSON_CONTENT_TYPE
        return form_encode(params).encode("utf-8"), FORM_CONTENT_TYPE
    except (TypeError, ValueError) as exc:  # unserializable objects, lone surrogates
        message = f"cannot be encoded as {body_format}: {type(exc).__name__}"
        raise ConfigError([FieldError("params", message)], prefix="invalid token parameters") from exc


def build_headers(
    header_sources: Iterable[Mapping[str, object]], *, authorization: str | None, content_type: str
) -> tuple[tuple[str, str], ...]:
    """Headers in wire order with simple-oauth2's precedence.

    ``Accept: application/json`` first, then each source in order (config headers, then per-call headers),
    then the library's ``Authorization`` and ``Content-Type``, which always win. Like Node's ``setHeader``,
    names are case-insensitive: a header keeps the position where it first appeared and takes the spelling
    and value of its last setting.
    """
    ordered: dict[str, tuple[str, str]] = {}

    def put(name: str, value: object) -> None:
        ordered[name.lower()] = (name, stringify_header_value(value))

    put("Accept", "application/json")
    for source in header_sources:
        for name, value in source.items():
            put(name, value)
    if authorization is not None:
        put("Authorization", authorization)
    put("Content-Type", content_type)
    return tuple(ordered.values())


def merge_http_options(config: HttpConfig, call: HttpConfig | None) -> HttpConfig:
    """Per-call options over the config's: set fields replace; headers are kept apart (see ``build_headers``)."""
    if call is None:
        return config
    updates = {name: getattr(call, name) for name in call.model_fields_set if name != "headers"}
    return config.model_copy(update=updates)


def prepare_request(
    url: str,
    params: Mapping[str, object],
    *,
    auth: ClientAuth,
    body_format: Literal["form", "json"],
    config_http: HttpConfig,
    call_http: HttpConfig | None,
    audience: str,
    now: float | None = None,
) -> PreparedRequest:
    """Authenticate ``params``, encode the body and assemble the headers for a POST to ``url``."""
    result = apply_client_auth(auth, params, audience=audience, now=now)
    body, content_type = encode_body(result.params, body_format)
    sources = [config_http.headers] + ([call_http.headers] if call_http is not None else [])
    headers = build_headers(sources, authorization=result.authorization, content_type=content_type)
    return PreparedRequest(url=url, headers=headers, body=body)
