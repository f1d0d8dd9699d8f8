"""Byte-exact encodings simple-oauth2 uses on the wire, and the JavaScript coercions its expiry rules rely on.

Why hand-written: the port promises the *same bytes* as the Node package (see the vectors), and Python's
defaults differ in small ways — ``urlencode`` writes spaces as ``+`` and escapes ``!*'()``, ``json.dumps``
adds spaces and escapes non-ASCII, ``str(1e16)`` is ``1e+16`` where JavaScript writes ``10000000000000000``.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Mapping
from typing import Final, Literal
from urllib.parse import quote, quote_plus

__all__ = [
    "UNDEFINED",
    "Undefined",
    "basic_credentials",
    "form_encode",
    "js_number",
    "js_number_to_string",
    "js_parse_int",
    "json_encode",
    "stringify_header_value",
]

#: Node's ``querystring.escape`` leaves exactly these (plus ASCII letters and digits) unescaped.
_QUERYSTRING_SAFE: Final = "-_.!~*'()"


class Undefined:
    """JavaScript's ``undefined`` for a parameter that is *present* but has no value.

    simple-oauth2 sends such a key as ``k=`` in a form body and drops it from a JSON body; the refresh and
    revoke requests rely on it for a token that lacks the refresh token (§6 of the reference).
    """

    _instance: Undefined | None = None

    def __new__(cls) -> Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"

    def __bool__(self) -> bool:
        return False


UNDEFINED: Final = Undefined()


def js_number_to_string(value: float) -> str:
    """``String(value)`` for a JavaScript number (ECMAScript Number::toString, radix 10)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    # repr() gives the shortest round-tripping digits, like JavaScript; only the layout differs.
    digits, exponent = _shortest_digits(abs(value))
    k = len(digits)
    n = exponent + k  # position of the decimal point relative to the digit string
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    exp = n - 1
    exp_str = f"e+{exp}" if exp >= 0 else f"e-{-exp}"
    if k == 1:
        return sign + digits + exp_str
    return sign + digits[0] + "." + digits[1:] + exp_str


def _shortest_digits(value: float) -> tuple[str, int]:
    """The shortest digit string ``d`` and exponent ``e`` with ``value == int(d) * 10**e``."""
    text = repr(value)
    mantissa, _, exp_text = text.partition("e")
    exponent = int(exp_text) if exp_text else 0
    whole, _, frac = mantissa.partition(".")
    if frac == "0":
        frac = ""
    digits = (whole + frac).lstrip("0")
    exponent -= len(frac)
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    return stripped or "0", exponent


def js_number(value: object) -> float | None:
    """JavaScript ``Number(value)`` for the types that make sense here; ``None`` stands for ``NaN``.

    ``None`` (JSON null) is 0, numeric strings parse (decimal, ``0x``/``0o``/``0b``, ``Infinity``), an empty
    or blank string is 0, anything else is NaN.
    """
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:  # beyond float range: JavaScript's ±Infinity
            return math.inf if value > 0 else -math.inf
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, str):
        return _js_string_to_number(value)
    return None


_DECIMAL_LITERAL: Final = re.compile(r"[+-]?(?:Infinity|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)")
_RADIX_LITERAL: Final = re.compile(r"0([xX][0-9a-fA-F]+|[oO][0-7]+|[bB][01]+)")
_RADIXES: Final = {"x": 16, "o": 8, "b": 2}


def _js_string_to_number(text: str) -> float | None:
    stripped = text.strip()
    if not stripped:
        return 0.0
    if _DECIMAL_LITERAL.fullmatch(stripped):
        return float(stripped.replace("Infinity", "inf"))
    if match := _RADIX_LITERAL.fullmatch(stripped):
        body = match.group(1)
        return float(int(body[1:], _RADIXES[body[0].lower()]))
    return None


_LEADING_INT: Final = re.compile(r"[+-]?\d+")


def js_parse_int(value: object) -> int | None:
    """``parseInt(String(value), 10)``; ``None`` stands for ``NaN``.

    The quirks are deliberate (§5): ``"3600abc"`` is 3600, ``3600.9`` is 3600, and ``1e21`` is 1 because
    ``String(1e21)`` is ``"1e+21"``.
    """
    if isinstance(value, bool) or value is None:
        return None  # "true" / "null" start with no digit
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        text = js_number_to_string(value)
    elif isinstance(value, str):
        text = value
    else:
        return None
    match = _LEADING_INT.match(text.lstrip())
    return int(match.group(0)) if match else None


def _js_primitive(value: object) -> str | None:
    """``String(value)`` for a string, boolean or number; ``None`` for anything else (each caller decides)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return js_number_to_string(value)
    return None


def _form_scalar(value: object) -> str:
    """One value as Node's ``querystring.stringify`` renders it (objects, null, NaN, ±Infinity become empty)."""
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    text = _js_primitive(value)
    return "" if text is None else text


def _escape(text: str) -> str:
    return quote(text, safe=_QUERYSTRING_SAFE)


def form_encode(params: Mapping[str, object]) -> str:
    """``application/x-www-form-urlencoded`` exactly as Node's ``querystring.stringify`` writes it.

    Insertion order is kept, spaces become ``%20``, a list repeats the key and an empty list drops it.
    """
    pairs: list[str] = []
    for name, value in params.items():
        key = _escape(name)
        if isinstance(value, list | tuple):
            pairs.extend(f"{key}={_escape(_form_scalar(item))}" for item in value)
        else:
            pairs.append(f"{key}={_escape(_form_scalar(value))}")
    return "&".join(pairs)


def json_encode(params: Mapping[str, object]) -> str:
    """``JSON.stringify`` of the parameters: compact, UTF-8 (no ASCII escaping), undefined keys dropped."""
    present = {name: value for name, value in params.items() if value is not UNDEFINED}
    return json.dumps(present, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def basic_credentials(client_id: str, secret: str, mode: Literal["strict", "loose"]) -> str:
    """The ``Authorization`` value for HTTP Basic client authentication (RFC 6749 §2.3.1).

    ``strict`` form-encodes id and secret before joining them (so a ``:`` in the id stays unambiguous);
    ``loose`` joins them raw, for servers that do not decode (simple-oauth2's ``credentialsEncodingMode``).
    """
    if mode == "strict":
        client_id, secret = quote_plus(client_id, safe=""), quote_plus(secret, safe="")
    raw = f"{client_id}:{secret}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def stringify_header_value(value: object) -> str:
    """A header value as Node's ``http`` module writes it: numbers and booleans stringified JS-style."""
    text = _js_primitive(value)
    return str(value) if text is None else text
