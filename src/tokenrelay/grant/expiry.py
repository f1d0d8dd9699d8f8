"""When a token expires: simple-oauth2's ``expires_at`` rules (§5 of the reference) on tz-aware datetimes.

JavaScript's ``Date`` reaches ±8.64e15 ms (year ±275760); Python's ``datetime`` stops at years 1..9999. A date
JavaScript can hold but Python cannot is clamped to ``datetime.min``/``datetime.max`` (same ``expired()``
answers); one JavaScript cannot hold either is its Invalid Date, here ``None`` ("never expires").
"""

from __future__ import annotations

import email.utils
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Final

from tokenrelay.grant.encoding import js_parse_int

__all__ = ["EPOCH", "expires_at_from", "format_iso", "from_epoch_ms", "parse_date_value", "to_epoch_ms"]

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_JS_MAX_MS: Final = 8.64e15
_MAX: Final = datetime.max.replace(tzinfo=UTC)
_MIN: Final = datetime.min.replace(tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)

# ECMAScript's date-time string format (ISO 8601 subset), plus a space for "T" as V8 accepts.
_ISO: Final = re.compile(
    r"(?P<year>[+-]\d{6}|\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2}))?)?"
    r"(?:[T ](?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d+))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?"
)


def from_epoch_ms(ms: float) -> datetime | None:
    """``new Date(ms)``: truncated to whole milliseconds; ``None`` where JavaScript has an Invalid Date."""
    try:
        ms = float(ms)
    except OverflowError:  # an int beyond float range is Infinity in JavaScript
        return None
    if not math.isfinite(ms) or abs(ms) > _JS_MAX_MS:
        return None
    try:
        return EPOCH + timedelta(milliseconds=math.trunc(ms))
    except OverflowError:
        return _MAX if ms > 0 else _MIN


def to_epoch_ms(moment: datetime) -> float:
    """Milliseconds since the epoch, exact to the microsecond (no float rounding on the way)."""
    return ((moment - EPOCH) // _MICROSECOND) / 1000


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (any year), H. Hinnant's algorithm."""
    year -= month <= 2
    era = (year if year >= 0 else year - 399) // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _parse_iso(text: str) -> datetime | None:
    match = _ISO.fullmatch(text)
    if match is None or match["year"] == "-000000":
        return None
    year, month, day = int(match["year"]), int(match["month"] or 1), int(match["day"] or 1)
    hour, minute, second = int(match["hour"] or 0), int(match["minute"] or 0), int(match["second"] or 0)
    millis = int((match["fraction"] or "0")[:3].ljust(3, "0"))
    if not (1 <= month <= 12 and 1 <= day <= _days_in_month(year, month) and minute <= 59 and second <= 59):
        return None
    if hour > 24 or (hour == 24 and (minute or second or millis)):
        return None
    offset_minutes = 0
    if (tz := match["tz"]) and tz != "Z":
        tz_hours, tz_minutes = int(tz[1:3]), int(tz[4:6])
        if tz_hours > 23 or tz_minutes > 59:
            return None
        offset_minutes = (tz_hours * 60 + tz_minutes) * (1 if tz[0] == "+" else -1)
    # A date-time without an offset is local time in JavaScript; a server's local time is taken as UTC.
    seconds = _days_from_civil(year, month, day) * 86400 + hour * 3600 + (minute - offset_minutes) * 60 + second
    return from_epoch_ms(seconds * 1000 + millis)


def _parse_date_string(text: str) -> datetime | None:
    """``new Date(string)`` for the formats servers use: ISO 8601 (as ECMAScript defines it) and RFC 2822."""
    stripped = text.strip()
    parsed = _parse_iso(stripped)
    if parsed is not None or not stripped or stripped[0].isdigit():
        return parsed
    try:
        moment = email.utils.parsedate_to_datetime(stripped)
    except (TypeError, ValueError, IndexError):
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_date_value(value: object) -> datetime | None:
    """An ``expires_at`` as given: datetime kept, number = UNIX **seconds**, ``None`` = the epoch, string parsed."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if value is None:
        return EPOCH
    if isinstance(value, bool):
        return from_epoch_ms(float(value))  # new Date(true) is 1 ms after the epoch
    if isinstance(value, int | float):
        return from_epoch_ms(value * 1000)
    if isinstance(value, str):
        return _parse_date_string(value)
    return None


def expires_at_from(expires_in: object, now_ms: float) -> datetime | None:
    """``now + parseInt(String(expires_in), 10)`` seconds; ``None`` when that is NaN."""
    seconds = js_parse_int(expires_in)
    # Integer arithmetic: a huge expires_in must become an Invalid Date, not an OverflowError.
    return None if seconds is None else from_epoch_ms(seconds * 1000 + round(now_ms))


def format_iso(moment: datetime) -> str:
    """``Date.prototype.toISOString``: UTC, millisecond precision, ``Z`` suffix (what ``create_token`` reads)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
