"""The JSON shape of events: stable field names, exact round trip.

One event is ``{"seq", "ts", "time", "kind", "data"}`` plus ``"link"`` when the hash
chain could be computed:

* ``seq``: 1, 2, 3, ...;
* ``ts``: integer nanoseconds since the Unix epoch (exact; what import uses);
* ``time``: the same instant as an ISO 8601 UTC string with nanoseconds, for people
  and for tools that cannot hold 64-bit integers exactly;
* ``kind``: the event kind; ``data``: its payload;
* ``link``: the hash-chain link after this event, 32 hex digits (the last one is the
  log's head hash).

Values JSON cannot hold are tagged so an import rebuilds the exact same bytes (and so
the same head hash): ``bytes`` become ``{"$bytes": "<base64>"}``, aware datetimes
``{"$datetime": "<ISO>"}``, and every other value JSON has no word for (tuples, sets,
dicts with non-str keys, NaN, naive datetimes, decimals, user objects...) becomes
``{"$msgpack": "<base64 of its eventlog.encoding bytes>"}``. A user key that starts with
``$`` is written with one more ``$`` in front. Key order is kept: the log's encoding
depends on it.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
from typing import Any

from eventlog import Record
from eventlog.encoding import decode, encode

__all__ = [
    "from_jsonable",
    "iso_local",
    "iso_utc_ns",
    "record_from_json",
    "record_to_json",
    "to_jsonable",
]

_UTC = _dt.timezone.utc
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_UTC)


def iso_utc_ns(ts: int) -> str:
    """Format integer nanoseconds as ``2026-11-28T07:13:04.123456789Z``."""
    secs, ns = divmod(ts, 1_000_000_000)
    base = _dt.datetime.fromtimestamp(secs, tz=_UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{ns:09d}Z"


def iso_local(ts: int) -> str:
    """Format integer nanoseconds as the naive local time users see in a JobState."""
    return _dt.datetime.fromtimestamp(ts / 1e9).isoformat(timespec="microseconds")


def to_jsonable(value: Any) -> Any:
    """Return ``value`` with non-JSON values tagged and ``$`` keys escaped."""
    kind = type(value)
    if kind is dict and all(type(k) is str for k in value):
        return {("$" + k if k.startswith("$") else k): to_jsonable(v) for k, v in value.items()}
    if kind is list:
        return [to_jsonable(v) for v in value]
    if value is None or kind in (str, int, bool) or (kind is float and value - value == 0.0):
        return value
    if kind is bytes:
        return {"$bytes": base64.b64encode(value).decode("ascii")}
    if kind is _dt.datetime and value.tzinfo is not None and not value.fold:
        return {"$datetime": value.isoformat()}
    return {"$msgpack": base64.b64encode(encode(value)).decode("ascii")}


def from_jsonable(value: Any) -> Any:
    """Undo :func:`to_jsonable`.

    Raises:
        ValueError: an unknown ``$`` tag or a malformed tagged value.
    """
    if isinstance(value, dict):
        if len(value) == 1:
            ((key, inner),) = value.items()
            if key == "$bytes":
                if not isinstance(inner, str):
                    msg = "$bytes must hold a base64 string"
                    raise ValueError(msg)
                return base64.b64decode(inner.encode("ascii"), validate=True)
            if key == "$msgpack":
                if not isinstance(inner, str):
                    msg = "$msgpack must hold a base64 string"
                    raise ValueError(msg)
                return decode(base64.b64decode(inner.encode("ascii"), validate=True), where="$msgpack")
            if key == "$datetime":
                if not isinstance(inner, str):
                    msg = "$datetime must hold an ISO string"
                    raise ValueError(msg)
                parsed = _dt.datetime.fromisoformat(inner)
                if parsed.tzinfo is None:
                    msg = f"$datetime {inner!r} has no timezone"
                    raise ValueError(msg)
                return parsed
        out = {}
        for key, inner in value.items():
            if key.startswith("$$"):
                key = key[1:]
            elif key.startswith("$"):
                msg = f"unknown tag {key!r} (a user key starting with '$' is written as '$$...')"
                raise ValueError(msg)
            out[key] = from_jsonable(inner)
        return out
    if isinstance(value, list):
        return [from_jsonable(v) for v in value]
    return value


def record_to_json(rec: Record, link: bytes | None = None) -> dict[str, Any]:
    """Return the stable JSON object for one record (see the module docstring)."""
    obj: dict[str, Any] = {
        "seq": rec.seq,
        "ts": rec.ts,
        "time": iso_utc_ns(rec.ts),
        "kind": rec.kind,
        "data": to_jsonable(rec.data),
    }
    if link is not None:
        obj["link"] = link.hex()
    return obj


def record_from_json(obj: Any) -> tuple[Record, str | None]:
    """Parse one JSON event object into ``(Record, link_hex or None)``.

    Raises:
        ValueError: a missing or mistyped field, naming it.
    """
    if not isinstance(obj, dict):
        msg = f"expected a JSON object, got {type(obj).__name__}"
        raise ValueError(msg)
    for name, typ in (("seq", int), ("kind", str), ("data", dict)):
        if name not in obj:
            msg = f"missing field {name!r}"
            raise ValueError(msg)
        if not isinstance(obj[name], typ) or isinstance(obj[name], bool):
            msg = f"field {name!r} must be {typ.__name__}, got {json.dumps(obj[name])[:60]}"
            raise ValueError(msg)
    ts = obj.get("ts")
    if ts is None:
        if not isinstance(obj.get("time"), str):
            msg = "missing field 'ts' (integer nanoseconds) and no 'time' to fall back on"
            raise ValueError(msg)
        ts = _parse_iso_ns(obj["time"])
    elif not isinstance(ts, int) or isinstance(ts, bool):
        msg = f"field 'ts' must be integer nanoseconds, got {ts!r}"
        raise ValueError(msg)
    link = obj.get("link")
    if link is not None and not isinstance(link, str):
        msg = "field 'link' must be a hex string"
        raise ValueError(msg)
    return Record(obj["seq"], ts, obj["kind"], from_jsonable(obj["data"])), link


def _parse_iso_ns(text: str) -> int:
    """Parse an ISO UTC time with up to nine fraction digits into nanoseconds."""
    body = text.strip()
    frac_ns = 0
    main = body
    tz = ""
    for sep in ("Z", "+", "-"):
        idx = body.rfind(sep)
        if sep == "Z" and body.endswith("Z"):
            main, tz = body[:-1], "+00:00"
            break
        if sep in "+-" and idx > 10:
            main, tz = body[:idx], body[idx:]
            break
    if "." in main:
        main, frac = main.split(".", 1)
        if not frac.isdigit() or len(frac) > 9:
            msg = f"bad fraction of a second in {text!r}"
            raise ValueError(msg)
        frac_ns = int(frac.ljust(9, "0"))
    parsed = _dt.datetime.fromisoformat(main + tz)
    if parsed.tzinfo is None:
        msg = f"time {text!r} has no timezone"
        raise ValueError(msg)
    secs = (parsed - _EPOCH) // _dt.timedelta(seconds=1)  # exact integer arithmetic, no float
    return secs * 1_000_000_000 + frac_ns
