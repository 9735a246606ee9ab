"""Times as ``routilux-replay`` shows and reads them: one convention for text and JSON.

Shown times are ISO 8601 with their zone always written out, so a time copied from any
output means one instant:

* UTC (the default): ``2026-11-28T07:13:04.123456Z``;
* local time (``--local``): ``2026-11-28T08:13:04.123456+01:00``.

Text shows microseconds (what a ``datetime`` holds, and what ``JobState`` timestamps
show); JSON's ``time`` field shows the same instant in the same zone with the event's
full nanoseconds. The exact integer ``ts`` (ns since the epoch) is in JSON as well.

Times given on the command line may be:

* ISO 8601 with ``Z`` or an offset (exact), or naive (local time, like ``JobState``'s
  naive datetimes), with up to nine fraction digits;
* relative to now: ``90s``, ``10m``, ``2h``, ``3d``, ``1w``, combined (``1h30m``) and
  optionally followed by ``ago`` (``10m ago``): that long before now;
* ``now``.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any

from .errors import BadPointError

__all__ = [
    "TIME_HELP",
    "TimeZoneMode",
    "format_time",
    "format_time_ns",
    "parse_time",
    "to_ns_floor",
]

_UTC = _dt.timezone.utc
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_UTC)

#: One line for --help texts: the forms a time option accepts.
TIME_HELP = "ISO time (Z or +HH:MM; naive = local) or relative to now (10m, 2h, 1d ago)"

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_RELATIVE = re.compile(r"^(?:(\d+)\s*([smhdw])\s*)+(?:ago)?$", re.IGNORECASE)
_RELATIVE_PART = re.compile(r"(\d+)\s*([smhdw])", re.IGNORECASE)


class TimeZoneMode:
    """How times are shown: ``"utc"`` (default) or ``"local"``."""

    UTC = "utc"
    LOCAL = "local"


def _aware(ts: int, mode: str) -> _dt.datetime:
    # Integer arithmetic, never ts / 1e9: a float cannot hold every microsecond of today.
    secs, ns = divmod(ts, 1_000_000_000)
    moment = _EPOCH + _dt.timedelta(seconds=secs, microseconds=ns // 1000)
    return moment.astimezone() if mode == TimeZoneMode.LOCAL else moment


def _zone(moment: _dt.datetime) -> str:
    offset = moment.utcoffset()
    if offset is None or (offset == _dt.timedelta(0) and moment.tzinfo is _UTC):
        return "Z"
    text = moment.strftime("%z")  # +0100
    return f"{text[:3]}:{text[3:5]}"


# Events come in bursts within one second: the date, time and zone of the last second
# formatted are reused (listings print a time per row; strftime was a fifth of the cost).
_last: list[Any] = [None, None, "", ""]  # [second, mode, "YYYY-MM-DDTHH:MM:SS", zone]


def _second(ts: int, mode: str) -> tuple[str, str]:
    secs = ts // 1_000_000_000
    last = _last
    if last[0] == secs and last[1] == mode:
        return last[2], last[3]
    moment = _aware(secs * 1_000_000_000, mode)
    text, zone = moment.strftime("%Y-%m-%dT%H:%M:%S"), _zone(moment)
    last[:] = [secs, mode, text, zone]
    return text, zone


def format_time(ts: int | None, mode: str = TimeZoneMode.UTC) -> str:
    """``ts`` (ns since the epoch) as ISO with microseconds and its zone; ``-`` for none."""
    if not ts:
        return "-"
    text, zone = _second(ts, mode)
    return f"{text}.{ts % 1_000_000_000 // 1000:06d}{zone}"


def format_time_ns(ts: int, mode: str = TimeZoneMode.UTC) -> str:
    """``ts`` as ISO with all nine fraction digits and its zone (JSON's ``time`` field)."""
    text, zone = _second(ts, mode)
    return f"{text}.{ts % 1_000_000_000:09d}{zone}"


def parse_time(text: str, *, now: _dt.datetime | None = None) -> _dt.datetime:
    """Parse a time given by a user (see the module doc) into a datetime.

    Naive ISO times are returned naive (local time, as ``JobState`` uses); relative
    times come back aware.

    Raises:
        BadPointError: not a time in any accepted form (names them).
    """
    raw = text.strip()
    low = raw.lower()
    if low == "now":
        return now if now is not None else _dt.datetime.now(_UTC)
    if _RELATIVE.match(low):
        seconds = sum(int(n) * _UNITS[unit.lower()] for n, unit in _RELATIVE_PART.findall(low))
        base = now if now is not None else _dt.datetime.now(_UTC)
        return base - _dt.timedelta(seconds=seconds)
    iso = raw
    if iso.endswith(("Z", "z")):
        iso = iso[:-1] + "+00:00"
    # Exports carry nanoseconds; datetimes hold microseconds (and Python 3.10 parses only
    # 3 or 6 fraction digits): keep the first six, padded.
    iso = re.sub(r"\.(\d+)", lambda m: "." + m.group(1)[:6].ljust(6, "0"), iso, count=1)
    try:
        return _dt.datetime.fromisoformat(iso)
    except ValueError:
        raise BadPointError(
            text,
            "expected a version number (e.g. 42), 'head', 'head-N', a hash prefix, an ISO time "
            "(e.g. 2026-11-28T07:13:04.123456Z; naive = local time) or a time relative to now "
            "(e.g. 10m, 2h, 1d ago)",
        ) from None


def to_ns_floor(when: _dt.datetime) -> int:
    """``when`` as ns since the epoch, at the start of its microsecond (naive = local)."""
    aware = when if when.tzinfo is not None else when.astimezone()
    micros = (aware - _EPOCH) // _dt.timedelta(microseconds=1)
    return micros * 1000
