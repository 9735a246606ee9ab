"""Export to JSON and import back: exact values, the same head hash, tampering refused."""

from __future__ import annotations

import datetime as dt
import io
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from eventlog import InMemoryEventLog
from replay_tools.errors import ImportFormatError
from replay_tools.exporting import export_log, import_to_memory
from replay_tools.jsonform import _parse_iso_ns, from_jsonable, iso_utc_ns, to_jsonable

keys = st.one_of(st.text(max_size=6), st.sampled_from(["$bytes", "$datetime", "$", "$$x"]))
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8), st.binary(max_size=8),
    st.datetimes(timezones=st.just(dt.timezone.utc)),
)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                      st.dictionaries(keys, inner, max_size=3)), max_leaves=10)


@given(st.dictionaries(keys, values, max_size=4))
@example({"$bytes": b"\x00", "$$": {"$datetime": "x"}})
def test_export_import_reproduces_the_head_hash(data: dict[str, Any]) -> None:
    """Any storable payload survives export/import byte for byte (same chain head)."""
    log = InMemoryEventLog()
    log.append("job_created", {"job_id": "j", "flow_id": "f"})
    log.append("x", data)
    for fmt in ("jsonl", "json"):
        buf = io.StringIO()
        assert export_log(log, buf, fmt=fmt) == 2
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"trail.{fmt}"
            path.write_text(buf.getvalue(), encoding="utf-8")
            rebuilt, result = import_to_memory(str(path))
        assert result.head_hash == log.head_hash.hex()
        assert list(rebuilt.read()) == list(log.read())
        assert from_jsonable(to_jsonable(data)) == data


@given(st.integers(0, 2**63 - 1))
def test_iso_nanosecond_times_round_trip(ts: int) -> None:
    """The ISO 'time' field holds the exact nanosecond."""
    assert _parse_iso_ns(iso_utc_ns(ts)) == ts


def test_keyed_log_exports_links_only_with_the_key(tmp_path: Path) -> None:
    """A keyed chain's links are exported with the key; import with the key rebuilds it."""
    key = b"secret-key"
    log = InMemoryEventLog(key=key)
    log.append("job_created", {"job_id": "j", "flow_id": "f"})
    log.append("status_set", {"status": "running"})
    without = io.StringIO()
    export_log(log, without)
    assert '"link"' not in without.getvalue()
    with_key = io.StringIO()
    export_log(log, with_key, key=key)
    path = tmp_path / "t.jsonl"
    path.write_text(with_key.getvalue())
    rebuilt, result = import_to_memory(str(path), key=key)
    assert result.head_hash == log.head_hash.hex() and result.links_checked == 2
    with pytest.raises(ImportFormatError, match="line 1"):
        import_to_memory(str(path))  # no key: the first link does not match


def test_import_names_the_bad_line(tmp_path: Path) -> None:
    """Gaps in seq and malformed lines are refused with their line number."""
    log = InMemoryEventLog()
    for i in range(3):
        log.append("job_created" if i == 0 else "e", {"i": i})
    buf = io.StringIO()
    export_log(log, buf)
    lines = buf.getvalue().splitlines()
    gap = tmp_path / "gap.jsonl"
    gap.write_text("\n".join([lines[0], lines[2]]) + "\n")
    with pytest.raises(ImportFormatError, match="line 2.*expected seq 2"):
        import_to_memory(str(gap))
    broken = tmp_path / "broken.jsonl"
    broken.write_text(lines[0] + "\n" + '{"seq": 2, "kind": 5, "data": {}}\n')
    with pytest.raises(ImportFormatError, match="line 2.*'kind'"):
        import_to_memory(str(broken))
