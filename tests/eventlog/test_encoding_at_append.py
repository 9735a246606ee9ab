"""T12: values that cannot be stored are refused at the append call, on every backend.

Every bad value of RELIABILITY.md T12 raises :class:`~eventlog.EventEncodingError`
(a ``TypeError``; :class:`~eventlog.RecordTooLargeError` for size, a ``ValueError``)
whose message names the path of the bad value. Afterwards the log is exactly as before:
every file byte-for-byte (and its mtime) unchanged, the same head, and the next valid
append gets the expected seq. No msgpack exception leaks out. The edges: values at
the limits are accepted *and readable back*, and a kind is judged the same way
whatever was appended before.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import threading
import uuid
from typing import Any

import pytest

import eventlog
from eventlog import EventEncodingError, RecordTooLargeError, encoding


def _recursive_dict() -> dict:
    d: dict = {"a": 1}
    d["me"] = d
    return d


def _recursive_list() -> list:
    x: list = [1]
    x.append(x)
    return x


def _deep(n: int) -> Any:
    """A list nested ``n`` levels deep (the outermost counts as level 1)."""
    root: list = []
    cur = root
    for _ in range(n - 1):
        nxt: list = []
        cur.append(nxt)
        cur = nxt
    return root


# (data passed to append, a fragment the error's path must contain, the error class)
BAD: list[tuple[str, Any, str, type[Exception]]] = [
    ("object", {"x": object()}, "data['x']", EventEncodingError),
    ("lock in a list", {"items": [0, 1, 2, threading.Lock()]}, "data['items'][3]", EventEncodingError),
    ("function", {"deep": {"f": [1.0, len]}}, "data['deep']['f'][1]", EventEncodingError),
    ("recursive dict", {"r": _recursive_dict()}, "data['r']['me']", EventEncodingError),
    ("recursive list", {"r": _recursive_list()}, "data['r'][1]", EventEncodingError),
    ("lone surrogate", {"s": "ok\ud800"}, "data['s']", EventEncodingError),
    ("depth 65", {"d": _deep(encoding.MAX_DEPTH)}, "data['d']", EventEncodingError),
    ("too large", {"blob": b"x" * (encoding.MAX_RECORD_BYTES + 1)}, "data", RecordTooLargeError),
    ("not a dict", [1, 2, 3], "data", EventEncodingError),
    ("complex", {"c": 1j}, "data['c']", EventEncodingError),
    ("generator in a tuple", {"c": (1, (i for i in range(2)))}, "data['c'][1]", EventEncodingError),
]


def _state(factory: Any, log: eventlog.EventLog, tree_digest: Any) -> Any:
    """Everything observable about a log: head, records, snapshots, and (file) every file's bytes."""
    raw = [(s, t, bytes(b)) for s, t, b in log.read_raw()]
    snaps = [(s.seq, s.state) for s in log.snapshots()]
    files = tree_digest(factory.path_of(log)) if factory.is_file else None
    return log.head_seq, log.head_ts, log.head_hash, raw, snaps, files


@pytest.mark.parametrize(("name", "data", "path", "err_cls"), BAD, ids=[b[0] for b in BAD])
def test_bad_value_is_refused_and_nothing_changes(make_log: Any, tree_digest: Any, name: str, data: Any,
                                                  path: str, err_cls: type[Exception]) -> None:
    """append() and append_batch() raise a path-naming encoding error; the log is byte-for-byte unchanged."""
    log = make_log(durability="always")
    log.append("good", {"i": 1})
    log.append_batch([("good", {"i": 2}), ("good", {"i": 3})])
    log.save_snapshot({"upto": 3}, schema_version=1)
    log.sync()
    before = _state(make_log, log, tree_digest)

    with pytest.raises(err_cls) as info:
        log.append("bad", data)
    exc = info.value
    assert isinstance(exc, TypeError) if err_cls is EventEncodingError else isinstance(exc, ValueError)
    assert isinstance(exc, EventEncodingError) and isinstance(exc, ValueError)
    assert exc.path.startswith(path), f"path {exc.path!r} does not point at {path!r}"
    assert path in str(exc)

    # The same value inside a batch: the good events around it are not written either.
    with pytest.raises(err_cls) as info_batch:
        log.append_batch([("good", {"i": 4}), ("bad", data), ("good", {"i": 5})])
    assert path in str(info_batch.value)
    with pytest.raises(err_cls):
        log.append("bad", data, expected_seq=3)

    assert _state(make_log, log, tree_digest) == before
    assert log.append("good", {"i": 4}, expected_seq=3).seq == 4
    if make_log.is_file:
        again = make_log.reopen(log)
        assert [r.data for r in again.read()] == [{"i": 1}, {"i": 2}, {"i": 3}, {"i": 4}]


@pytest.mark.parametrize("kind", ["", 7, None, b"kind", ["k"]], ids=["empty", "int", "none", "bytes", "list"])
def test_bad_kind_is_refused_and_nothing_changes(make_log: Any, tree_digest: Any, kind: Any) -> None:
    """A kind that is not a non-empty str is an encoding error; nothing is written."""
    log = make_log(durability="always")
    log.append("good", {"i": 1})
    log.sync()
    before = _state(make_log, log, tree_digest)
    with pytest.raises(EventEncodingError):
        log.append(kind, {"i": 2})
    with pytest.raises(EventEncodingError):
        log.append_batch([("good", {"i": 2}), (kind, {"i": 3})])
    assert _state(make_log, log, tree_digest) == before
    assert log.append("good", {"i": 2}).seq == 2


def test_every_standard_type_is_stored_and_read_back_with_its_type(make_log: Any) -> None:
    """The values the first codec refused are stored now, and come back with the same types."""
    data = {"pair": (1, 2), "nested": [(3, (4,))], "s": {1, 2}, "fs": frozenset({"a"}), "nan": float("nan"),
            "inf": float("-inf"), "big": 2**70, "naive": dt.datetime(2026, 1, 1, 12), "ints": {1: "a", (1, 2): "b"},
            "dec": decimal.Decimal("1.10"), "far": dt.datetime(9999, 12, 31, 23, 59,
                                                             tzinfo=dt.timezone(dt.timedelta(hours=-12)))}
    log = make_log()
    rec = log.append("t", data)
    (again,) = log.read()
    assert (again.seq, again.kind) == (rec.seq, rec.kind)
    assert encoding.encode(again.data) == encoding.encode(rec.data) == encoding.encode(data)  # NaN != NaN
    got = again.data
    assert [type(v) for v in got.values()] == [type(v) for v in data.values()]
    assert got["pair"] == (1, 2) and got["nested"] == [(3, (4,))] and got["s"] == {1, 2}
    assert got["big"] == 2**70 and got["ints"] == {1: "a", (1, 2): "b"} and str(got["dec"]) == "1.10"
    assert got["naive"] == data["naive"] and got["far"] == data["far"]
    assert got["nan"] != got["nan"] and got["inf"] == float("-inf")


def test_limits_are_inclusive(make_log: Any) -> None:
    """Values exactly at the limits are accepted: depth 64, ints at both ends of the range."""
    log = make_log()
    rec = log.append("edge", {"d": _deep(encoding.MAX_DEPTH - 1), "lo": -(2**63), "hi": 2**64 - 1})
    assert list(log.read()) == [rec]
    assert rec.data["hi"] == 2**64 - 1


def test_str_enum_kind_is_handled_the_same_every_time(make_log: Any) -> None:
    """A str-enum kind is accepted or refused regardless of history; if accepted, it is stored and returned as str."""
    suffix = uuid.uuid4().hex  # kinds no earlier test (or cache) has seen
    Kind = enum.Enum("Kind", {"FRESH": f"fresh-{suffix}", "SEEN": f"seen-{suffix}"}, type=str)
    log = make_log()
    log.append(f"seen-{suffix}", {})  # the plain string of one member was used before

    def outcome(kind: Any) -> Any:
        try:
            rec = log.append(kind, {})
        except EventEncodingError:
            return "refused"
        stored = log.get(rec.seq)
        assert type(rec.kind) is str and type(stored.kind) is str, "a str subclass leaked into a record"
        assert rec == stored
        return "accepted"

    assert outcome(Kind.FRESH) == outcome(Kind.SEEN)


def test_record_at_the_size_limit_is_refused_or_readable(make_log: Any) -> None:
    """Data of exactly the size limit under a long kind: refused at the call, or stored and readable back."""
    log = make_log()
    # {"b": <bin32 of n bytes>} packs to 1 + 2 + 5 + n bytes: exactly the limit.
    data = {"b": bytes(encoding.MAX_RECORD_BYTES - 8)}
    assert len(encoding.encode(data)) == encoding.MAX_RECORD_BYTES
    try:
        rec = log.append("k" * 1000, data)
    except RecordTooLargeError:
        assert log.head_seq == 0
        return
    log.append("after", {})
    assert [r.seq for r in log.read()] == [1, 2], "an accepted record cannot be read back"
    assert log.get(1) == rec
    if make_log.is_file:
        again = make_log.reopen(log)
        assert [r.seq for r in again.read()] == [1, 2]
        assert eventlog.verify(make_log.path_of(again)).ok


def test_str_enum_map_key_is_judged_the_same_whatever_sits_next_to_it(make_log: Any) -> None:
    """A str-enum map key is stored as the enum member whatever the other values in the record."""
    Key = enum.Enum("Key", {"A": "a"}, type=str)
    log = make_log()

    def outcome(data: dict) -> str:
        try:
            rec = log.append("k", data)
        except EventEncodingError:
            return "refused"
        assert list(rec.data) == list(data)  # an unregistered enum: a record equal to the member
        assert log.get(rec.seq) == rec
        return "accepted"

    plain = outcome({Key.A: 1})
    assert outcome({Key.A: 1, "f": 1.5}) == plain
    assert outcome({Key.A: 1, "b": b"bytes"}) == plain, "a bytes value elsewhere changed the verdict on the key"
