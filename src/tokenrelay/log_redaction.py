"""The redaction backstop of the log pipeline: credentials are masked before any line is rendered.

Secrets are never *supposed* to reach a logger: code logs fingerprints. :func:`redact` is the last line of
defence for mistakes: it masks values under credential-like keys (:data:`tokenrelay.sensitive.SENSITIVE_KEYS`,
the list ``check-config`` masks too) and credentials embedded in strings (``Bearer``/``Basic``/``DPoP`` values,
JWS-shaped tokens, ``client_secret=...`` form or JSON fragments under any of those key names, in any spelling).
:mod:`tokenrelay.log` runs it after exceptions are formatted, so a traceback carrying an ``Authorization`` header
is masked too; :mod:`tokenrelay.access_log` uses the same checks (:data:`FINGERPRINT`, :func:`may_hint`,
:func:`scrub`) to render the access line in one step.

Every pattern here matches letters case-blind through ASCII classes (``[Tt][Oo]...``) rather than ``(?i)``:
Unicode case folding would let ``ſ`` or ``K`` (Kelvin) stand for ``s``/``k`` in a match while ``str.lower``
keeps them apart, and :func:`may_hint` — the pre-filter that decides whether :func:`scrub` runs at all — must
never say no where a pattern would match.
"""

from __future__ import annotations

import re
from typing import Any, Final

from structlog.typing import EventDict, WrappedLogger

from tokenrelay.sensitive import REDACTED, SENSITIVE_KEYS, is_sensitive_key, normalise_key

__all__ = ["FINGERPRINT", "HINTS", "REDACTED", "may_hint", "redact", "scrub"]

#: A fingerprint (8 lower-case hex, :func:`tokenrelay.fingerprints.fingerprint`) passes even under ``token=``:
#: no real credential is 32 bits long, and ``log.info(..., token=cached.fingerprint)`` is the intended idiom.
FINGERPRINT: Final = re.compile(r"[0-9a-f]{8}")

#: Lower-case words without which no pattern below can match: every match holds one of them (in some ASCII case),
#: so the lower-cased text holds it. The scheme and JWS patterns need ``earer``/``asic``/``dpop``/``eyj``; every
#: credential name of :data:`_PARAMETER` holds one of the others (checked when this module loads).
_HINT_WORDS: Final = ("earer", "asic", "dpop", "eyj", "token", "secret", "pass", "key", "assertion")
#: Credential key names (normalised) that the key layer masks but :data:`_PARAMETER` leaves to other rules. They are
#: header names whose value in text is not one ``name=value`` token: ``Authorization: Bearer x`` is masked by the
#: scheme pattern wherever the scheme appears (a parameter rule would only take the scheme word, which stops at
#: the space), and a cookie header is itself a list of ``name=value`` pairs. Hinting on them would cost every
#: access line two more substring tests (~+15 %) for what the key layer already masks in header mappings.
_HEADER_NAMES: Final = frozenset({"authorization", "proxyauthorization", "cookie", "setcookie"})


def _caseless(word: str) -> str:
    """``word`` as a regex matching it in any ASCII case: ``key`` -> ``[Kk][Ee][Yy]``."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in word)


def _any_spelling(name: str) -> str:
    """A regex for the :func:`~tokenrelay.sensitive.normalise_key` form ``name`` in any spelling.

    ``clientsecret`` -> ``client_secret``, ``clientSecret``, ``ClientSecret``, ``client-secret``,
    ``CLIENT_SECRET``, ``clientsecret``: the key layer's equivalence (case, ``_`` and ``-`` ignored), except that a
    hint word stays whole (``to_ken`` is no spelling of ``token``) so that :func:`may_hint` stays exact. Where the
    words of a name begin is not recorded in its normalised form, so ``_``/``-`` may stand between any two of its
    other letters: over-matching a name nobody writes (``cli_ent_secret``) costs nothing.
    """
    if not any(word in name for word in _HINT_WORDS):  # the first one found is then kept whole
        raise RuntimeError(f"credential key {name!r} holds no hint word: extend _HINT_WORDS and may_hint")
    units: list[str] = []
    position = 0
    while position < len(name):
        word = next((word for word in _HINT_WORDS if name.startswith(word, position)), name[position])
        units.append(_caseless(word))
        position += len(word)
    return "[_-]?".join(units)


_SCHEMES: Final = ("bearer", "basic", "dpop")
_SCHEME_CREDENTIAL: Final = re.compile(rf"\b({'|'.join(map(_caseless, _SCHEMES))})(\s+)[^\s,;\"']+")
_JWS: Final = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
#: The credential names of ``name=value`` fragments: those of the key layer (``SENSITIVE_KEYS``), so a value that
#: is ``***`` as a keyword argument is ``***`` inside a message too, but for :data:`_HEADER_NAMES`. That includes
#: ``api_key``/``apiKey``/``x-api-key``: an API key is a bearer credential (whoever holds it is the client), exactly
#: as sensitive as an access token. Longest first, so the alternation tries ``api_keys`` before ``api_key``.
_TEXT_NAMES: Final = tuple(sorted(SENSITIVE_KEYS - _HEADER_NAMES, key=lambda name: (-len(name), name)))
_QUOTE: Final = r"(?:\\?[\"'])?"  # a JSON or Python quote, also escaped (JSON inside a JSON string)
#: What a match can start with: a quote or a name's first letter. Checked first, it halves the cost of a search,
#: as the regex engine cannot see through the optional quote to skip positions no name starts at.
_STARTS: Final = "".join(sorted({f"{name[0]}{name[0].upper()}" for name in _TEXT_NAMES}))
#: ``name=value``, ``name: value``, ``"name": "value"`` for :data:`_TEXT_NAMES` in any spelling. The value stops
#: at ``&``, whitespace, a quote (also an escaped one) or ``,;}``: one form parameter, one JSON string.
_PARAMETER: Final = re.compile(
    rf"(?=[\\\"'{_STARTS}])"
    rf"(?P<prefix>{_QUOTE}\b(?P<name>{'|'.join(map(_any_spelling, _TEXT_NAMES))}){_QUOTE}\s*[=:]\s*{_QUOTE})"
    r"(?P<value>(?:[^&\s\"',;}\\]|\\(?![\"']))+)"
)
#: The readable form of :func:`may_hint` (the same words, any ASCII case), for callers that want a pattern.
#: The pipeline itself uses :func:`may_hint`: a case-blind alternation costs several times its substring tests.
HINTS: Final = re.compile("|".join(map(_caseless, _HINT_WORDS)))
#: Keys whose values our own processors set (never user data): not scanned.
_TRUSTED_KEYS: Final = frozenset({"level", "logger", "timestamp", "_record"})
_CONTAINERS: Final = (dict, list, tuple)
_MAX_DEPTH: Final = 4
_MAX_MEMO: Final = 4096

_key_verdicts: dict[str, bool] = {}


def redact(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Processor: mask credential-like keys and credentials inside strings, in place, nested up to 4 levels.

    It runs on every line, so the common case is kept to a dict lookup per key and one :func:`may_hint` per
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
            if may_hint(value):
                event_dict[key] = scrub(value)
        elif isinstance(value, _CONTAINERS):
            event_dict[key] = _redact_nested(value, 1)
    return event_dict


def may_hint(text: str) -> bool:
    """Whether ``text`` may hold something :func:`scrub` masks: no false negatives, cheap enough for every line.

    Every match of a :func:`scrub` pattern holds one of :data:`_HINT_WORDS` in some ASCII case, and lower-casing
    keeps ASCII letters ASCII, so these substring tests over the lower-cased text never miss one; together they
    cost a tenth of one search of :data:`HINTS`. The words are deliberately broad (``token``, ``key``):
    a false yes only costs the substitutions, whose result is then the unchanged text. On the access line it means
    a route, path or request id holding such a word (``/oauth/token``, ``/keys``) is rendered by the general
    branch of :func:`tokenrelay.access_log._access_line` instead of the inline one: the same bytes, ~3 µs more.
    """
    text = text.lower()
    return (
        "earer" in text or "asic" in text or "dpop" in text or "eyj" in text or "token" in text
        or "secret" in text or "pass" in text or "key" in text or "assertion" in text
    )  # fmt: skip


def scrub(value: str) -> str:
    """``value`` with embedded credentials (scheme values, JWS-shaped tokens, ``secret=`` fragments) masked.

    ``name=value`` fragments are masked under the key layer's credential names in any spelling (``accessToken``,
    ``client-secret``, ``ACCESS_TOKEN``, ``RefreshToken``, ``x-api-key``, ``"apiKey": "…"``), whatever the
    message's author called them. That includes the bare words ``token``, ``secret`` and ``password``, so prose
    such as ``invalid token: expired`` loses its next word, while text without a separator (``token endpoint
    answered 500``) and other names (``token_type=Bearer``, ``secret_file=…``) are left alone. A fingerprint after
    ``token`` is kept, as under the ``token`` key.
    """
    value = _SCHEME_CREDENTIAL.sub(rf"\1\2{REDACTED}", value)
    value = _JWS.sub(REDACTED, value)
    return _PARAMETER.sub(_mask_parameter, value)


def _mask_parameter(match: re.Match[str]) -> str:
    if FINGERPRINT.fullmatch(match["value"]) is not None and normalise_key(match["name"]) == "token":
        return match[0]
    return match["prefix"] + REDACTED


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
        return scrub(value) if may_hint(value) else value
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
