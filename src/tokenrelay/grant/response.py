"""Interpreting an endpoint's answer: status first, then media type, then the body (§4 with §13's changes).

simple-oauth2 checks the content type before the status and masks real statuses behind 406/502; the port
reports the real status of every non-2xx answer (3xx included: redirects are never followed, since that would
resend client credentials), parses form-encoded token responses, and refuses a 2xx without a string
``access_token``. A 2xx body is never copied into an error verbatim, because it may carry a token; only its
RFC 6749 §5.2 error fields are kept.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import parse_qsl

from tokenrelay.grant.errors import TokenRequestError, TokenResponseError

__all__ = [
    "MAX_RESPONSE_BYTES",
    "RawResponse",
    "parse_json_body",
    "parse_metadata_response",
    "parse_revoke_response",
    "parse_token_response",
]

#: A token response is small; a bigger body is a misbehaving endpoint, not a token.
MAX_RESPONSE_BYTES: Final = 1024 * 1024

_JSON_MEDIA_TYPE: Final = re.compile(r"application/(?:[a-z0-9.]*[+-]json|json)")
_FORM_MEDIA_TYPE: Final = "application/x-www-form-urlencoded"
_OAUTH_ERROR_FIELDS: Final = ("error", "error_description", "error_uri")


@dataclass(frozen=True, slots=True)
class RawResponse:
    """An endpoint's answer as the transport read it. ``repr`` leaves the body out."""

    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes = field(repr=False)

    @property
    def media_type(self) -> str:
        """The content type before any ``;`` parameters, trimmed and lower-cased (Wreck's rule)."""
        for name, value in self.headers.items():
            if name.lower() == "content-type":
                return value.split(";", 1)[0].strip().lower()
        return ""

    @property
    def is_json(self) -> bool:
        """``application/json``, ``application/<x>+json`` or ``application/<x>-json``."""
        return _JSON_MEDIA_TYPE.fullmatch(self.media_type) is not None

    @property
    def is_form(self) -> bool:
        return self.media_type == _FORM_MEDIA_TYPE

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


def parse_json_body(body: bytes) -> object:
    """Strict JSON as a JavaScript parser reads it: an empty body is ``None``; a BOM, invalid UTF-8 and
    ``NaN``/``Infinity`` are errors (``ValueError``)."""
    if not body:
        return None
    text = body.decode("utf-8")  # UnicodeDecodeError is a ValueError
    if text.startswith("\ufeff"):
        raise ValueError("a UTF-8 byte order mark is not valid JSON")
    return json.loads(text, parse_constant=_reject_constant)


def _error_payload(response: RawResponse) -> object:
    """What a non-2xx answer said: parsed JSON or form fields when it says so, else the raw text."""
    if not response.body:
        return None
    if response.is_json:
        try:
            return parse_json_body(response.body)
        except ValueError:
            return response.text()
    if response.is_form:
        return dict(parse_qsl(response.text(), keep_blank_values=True))
    return response.text()


def _check_status(response: RawResponse, endpoint: str) -> None:
    if 200 <= response.status < 300:
        return
    reason = f" {response.reason}" if response.reason else ""
    raise TokenRequestError(
        f"the {endpoint} answered HTTP {response.status}{reason}",
        status=response.status,
        payload=_error_payload(response),
        headers=response.headers,
    )


def _oauth_error_fields(payload: object) -> dict[str, object] | None:
    if not isinstance(payload, Mapping):
        return None
    return {name: payload[name] for name in _OAUTH_ERROR_FIELDS if name in payload}


def _unusable(response: RawResponse, message: str, payload: object = None) -> TokenResponseError:
    return TokenResponseError(message, status=response.status, payload=payload, headers=response.headers)


def parse_token_response(response: RawResponse, endpoint: str = "token endpoint") -> dict[str, object]:
    """The token fields of a successful answer, or ``TokenRequestError`` / ``TokenResponseError``."""
    _check_status(response, endpoint)
    payload: object
    if response.is_json:
        try:
            payload = parse_json_body(response.body)
        except ValueError as exc:
            raise _unusable(response, f"the {endpoint} answered with invalid JSON ({type(exc).__name__})") from None
    elif response.is_form:
        payload = dict(parse_qsl(response.text(), keep_blank_values=True))
    else:
        shown = response.media_type or "no content type"
        raise _unusable(response, f"the {endpoint} answered {shown!r}, not JSON or a form-encoded token")
    if not isinstance(payload, dict) or not isinstance(payload.get("access_token"), str):
        raise _unusable(
            response,
            f"the {endpoint} answered HTTP {response.status} without a string access_token",
            _oauth_error_fields(payload),
        )
    return payload


def parse_revoke_response(response: RawResponse) -> object:
    """RFC 7009: success is the status. An empty or non-JSON 2xx body is ``None``; a JSON body is returned."""
    _check_status(response, "revocation endpoint")
    if not response.body or not response.is_json:
        return None
    try:
        return parse_json_body(response.body)
    except ValueError:
        raise _unusable(response, "the revocation endpoint answered with invalid JSON") from None


def parse_metadata_response(response: RawResponse) -> object:
    """A discovery document: HTTP 200 with a JSON body; anything else raises (the caller tries the next URL)."""
    if response.status != 200:
        _check_status(response, "metadata endpoint")
        raise _unusable(response, f"the metadata endpoint answered HTTP {response.status}, not 200")
    if not response.is_json:
        raise _unusable(response, "the metadata endpoint did not answer JSON")
    try:
        return parse_json_body(response.body)
    except ValueError:
        raise _unusable(response, "the metadata endpoint answered with invalid JSON") from None
