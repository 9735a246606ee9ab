"""Event timestamps (integer nanoseconds) and the datetimes users see.

Users see naive local datetimes at microsecond precision (as ``datetime.now()`` gives in
the original); events carry ``ts`` in nanoseconds since the epoch. The conversions use
integer arithmetic only: a float of today's epoch nanoseconds cannot hold every
microsecond exactly, and ``at(timestamp=...)`` compares at microseconds.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

__all__ = ["first_ns_at", "iso_to_datetime", "last_ns_at", "stamp_to_datetime", "ts_to_datetime", "ts_to_iso"]

_fromtimestamp = _dt.datetime.fromtimestamp


def ts_to_datetime(ts: int) -> _dt.datetime:
    """Return the naive local datetime (microsecond precision) users see for ``ts`` (ns)."""
    us = ts // 1000
    return _fromtimestamp(us // 1_000_000).replace(microsecond=us % 1_000_000)


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


def last_ns_at(value: _dt.datetime | int) -> int:
    """The largest event ts whose user-visible timestamp is <= ``value``.

    Raises:
        TypeError: ``value`` is neither a datetime nor int nanoseconds.
    """
    if isinstance(value, _dt.datetime):
        return _epoch_us(value) * 1000 + 999
    if type(value) is int:
        return value
    msg = f"timestamp must be a datetime (naive local or aware) or int nanoseconds, got {type(value).__name__}"
    raise TypeError(msg)


def first_ns_at(value: _dt.datetime | int) -> int:
    """The smallest event ts whose user-visible timestamp is >= ``value``."""
    if isinstance(value, _dt.datetime):
        return _epoch_us(value) * 1000
    return last_ns_at(value)
