"""The redaction backstop of the log pipeline: credentials are masked before any line is rendered.

Secrets are never *supposed* to reach a logger: code logs fingerprints. :func:`redact` is the last line of
defence for mistakes: it masks values under credential-like keys (:data:`tokenrelay.sensitive.SENSITIVE_KEYS`,
the list ``check-config`` masks too) and credentials embedded in strings (``Bearer``/``Basic``/``DPoP`` values,
JWS-shaped tokens, ``client_secret=...`` form or JSON fragments). :mod:`tokenrelay.log` runs it after exceptions
are formatted, so a traceback carrying an ``Authorization`` header is masked too; :mod:`tokenrelay.access_log`
uses the same checks (:data:`FINGERPRINT`, :func:`may_hint`, :func:`scrub`) to render the access line in one step.
"""

from __future__ import annotations

import re
from typing import Any, Final

from structlog.typing import EventDict, WrappedLogger

from tokenrelay.sensitive import REDACTED, is_sensitive_key

__all__ = ["FINGERPRINT", "HINTS", "REDACTED", "may_hint", "redact", "scrub"]

#: A fingerprint (8 lower-case hex, :func:`tokenrelay.fingerprints.fingerprint`) passes even under ``token=``:
#: no real credential is 32 bits long, and ``log.info(..., token=cached.fingerprint)`` is the intended idiom.
FINGERPRINT: Final = re.compile(r"[0-9a-f]{8}")
_SCHEME_CREDENTIAL: Final = re.compile(r"(?i)\b(bearer|basic|dpop)(\s+)[^\s,;\"']+")
_JWS: Final = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_PARAMETER: Final = re.compile(
    r"(?i)([\"']?\b(?:access_token|refresh_token|id_token|client_secret|client_assertion|password)[\"']?"
    r"\s*[=:]\s*[\"']?)[^&\s\"',;}]+"
)
#: Substrings without which none of the patterns above can match: one search for them is far cheaper than the
#: three substitutions, and almost every logged string contains none of them.
HINTS: Final = re.compile("earer|EARER|asic|ASIC|DPoP|dpop|eyJ|_token|secret|assertion|password")
#: Keys whose values our own processors set (never user data): not scanned.
_TRUSTED_KEYS: Final = frozenset({"level", "logger", "timestamp", "_record"})
_CONTAINERS: Final = (dict, list, tuple)
_MAX_DEPTH: Final = 4
_MAX_MEMO: Final = 4096

_key_verdicts: dict[str, bool] = {}


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
            # Only ``token`` may carry a fingerprint (how the access line names the token it injected); under any
            # other credential key eight hex characters could be a real (short) secret.
            if not (key == "token" and isinstance(value, str) and FINGERPRINT.fullmatch(value)):
                event_dict[key] = REDACTED
        elif isinstance(value, str):
            if HINTS.search(value) is not None:
                event_dict[key] = scrub(value)
        elif isinstance(value, _CONTAINERS):
            event_dict[key] = _redact_nested(value, 1)
    return event_dict


def may_hint(text: str) -> bool:
    """Whether ``text`` may contain one of :data:`HINTS` (no false negatives): a cheaper test than the regex.

    Every hint, lower-cased, is one of these words, and lower-casing keeps an ASCII word inside a string; five
    to ten substring tests over the lower-cased text cost half of one search of the alternation.
    """
    text = text.lower()
    return (
        "earer" in text or "asic" in text or "dpop" in text or "eyj" in text or "_token" in text
        or "secret" in text or "assertion" in text or "password" in text
    )  # fmt: skip


def scrub(value: str) -> str:
    """``value`` with embedded credentials (scheme values, JWS-shaped tokens, ``secret=`` fragments) masked."""
    value = _SCHEME_CREDENTIAL.sub(rf"\1\2{REDACTED}", value)
    value = _JWS.sub(REDACTED, value)
    return _PARAMETER.sub(rf"\1{REDACTED}", value)


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
        return scrub(value) if _may_hold_credential(value) else value
    if isinstance(value, dict | list | tuple):
        return _redact_nested(value, depth + 1)
    return value


def _is_sensitive_key(key: str) -> bool:
    verdict = _key_verdicts.get(key)
    if verdict is None:
        verdict = is_sensitive_key(key)
        if len(_key_verdicts) < _MAX_MEMO:  # keys may come from requests (header names): bound the memo
            _key_verdicts[key] = verdict
    return verdict


def _may_hold_credential(value: str) -> bool:
    return HINTS.search(value) is not None
