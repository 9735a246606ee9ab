"""Event timestamps (integer nanoseconds) and the datetimes users see.

Users see naive local datetimes at microsecond precision (as ``datetime.now()`` gives in
the original); events carry ``ts`` in nanoseconds since the epoch. The conversions use
integer arithmetic only: a float of today's epoch nanoseconds cannot hold every
microsecond exactly, and ``at(timestamp=...)`` compares at microseconds.

Wherever a time is given (``events(since=, until=)``, ``at(timestamp=)``,
``load(timestamp=)``) it may be a ``datetime`` (naive = local time, or aware), int
nanoseconds since the epoch, or an ISO 8601 string: ``2026-11-28T07:13:04.123456Z``,
with an offset, or naive (local time); up to nine fraction digits (more than six are
taken as exact nanoseconds).
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any

__all__ = ["TimeLike", "first_ns_at", "iso_to_datetime", "last_ns_at", "parse_iso", "stamp_to_datetime",
           "ts_to_datetime", "ts_to_iso", "ts_to_utc"]

#: What a time argument may be: a datetime, int nanoseconds, or an ISO 8601 string.
TimeLike = _dt.datetime | int | str
_UTC = _dt.timezone.utc
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_UTC)
# The fraction of the seconds in an ISO time (the digits beyond six are nanoseconds).
_FRACTION = re.compile(r"\d{2}:?\d{2}:?\d{2}[.,](\d{7,9})(?!\d)")

_fromtimestamp = _dt.datetime.fromtimestamp


def ts_to_datetime(ts: int) -> _dt.datetime:
    """Return the naive local datetime (microsecond precision) users see for ``ts`` (ns)."""
    us = ts // 1000
    return _fromtimestamp(us // 1_000_000).replace(microsecond=us % 1_000_000)


def ts_to_utc(ts: int) -> _dt.datetime:
    """Return ``ts`` (ns) as an aware UTC datetime (microsecond precision)."""
    return _EPOCH + _dt.timedelta(microseconds=ts // 1000)


def ts_to_iso(ts: int) -> str:
    """Return :func:`ts_to_datetime` as an ISO string (as the original's ``isoformat()``)."""
    return ts_to_datetime(ts).isoformat()


def iso_to_datetime(value: Any) -> _dt.datetime | None:
    """Parse an ISO timestamp (``None`` stays ``None``; a datetime is returned as is)."""
    if value is None or isinstance(value, _dt.datetime):
        return value
    return _dt.datetime.fromisoformat(value)


def stamp_to_datetime(value: int | str | None) -> _dt.datetime | None:
    """A projection's ``created``/``updated`` (event ts, or an ISO string restored by deserialize) as a datetime."""
    if value is None:
        return None
    if type(value) is int:
        return ts_to_datetime(value)
    return iso_to_datetime(value)


def _epoch_us(value: _dt.datetime) -> int:
    # replace(microsecond=0).timestamp() is an exact integer, so no float rounding at
    # microsecond level; naive values are local time, like the timestamps we hand out.
    return int(value.replace(microsecond=0).timestamp()) * 1_000_000 + value.microsecond


def parse_iso(text: str) -> tuple[_dt.datetime, int | None]:
    """Parse an ISO 8601 time: the datetime (naive = local time) and, when the text gives
    more than six fraction digits, the nanoseconds within its microsecond (else None).

    Raises:
        ValueError: not an ISO 8601 time.
    """
    try:
        value = _dt.datetime.fromisoformat(text.strip())
    except ValueError:
        msg = (f"{text!r} is not an ISO 8601 time (e.g. 2026-11-28T07:13:04.123456Z, with an offset, "
               "or naive for local time)")
        raise ValueError(msg) from None
    found = _FRACTION.search(text)
    extra = int(found.group(1)[6:].ljust(3, "0")) if found else None
    return value, extra


def last_ns_at(value: TimeLike) -> int:
    """The largest event ts whose user-visible timestamp is <= ``value``.

    A datetime (or an ISO string to the microsecond) covers its whole microsecond; an
    ISO string with nanoseconds is that exact nanosecond.

    Raises:
        TypeError: ``value`` is not a datetime, int nanoseconds or an ISO string.
        ValueError: a string that is not an ISO 8601 time.
    """
    if isinstance(value, _dt.datetime):
        return _epoch_us(value) * 1000 + 999
    if type(value) is int:
        return value
    if isinstance(value, str):
        moment, extra = parse_iso(value)
        return _epoch_us(moment) * 1000 + (999 if extra is None else extra)
    msg = (f"a time must be a datetime (naive local or aware), int nanoseconds or an ISO 8601 string, "
           f"got {type(value).__name__}")
    raise TypeError(msg)


def first_ns_at(value: TimeLike) -> int:
    """The smallest event ts whose user-visible timestamp is >= ``value`` (see :func:`last_ns_at`)."""
    if isinstance(value, _dt.datetime):
        return _epoch_us(value) * 1000
    if isinstance(value, str):
        moment, extra = parse_iso(value)
        return _epoch_us(moment) * 1000 + (extra or 0)
    return last_ns_at(value)
