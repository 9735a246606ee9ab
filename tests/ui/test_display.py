"""Values the page receives are plain JSON that shows them exactly."""

from __future__ import annotations

import datetime as dt
import json
import math

from hypothesis import given
from hypothesis import strategies as st

from replay_tools.ui.display import MAX_SAFE_INT, dumps, escape_segment, summary, to_display


def test_tags_for_what_json_cannot_hold() -> None:
    """bytes, datetimes, non-finite floats, huge ints and $-keys are tagged, never lost."""
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    out = to_display({"b": b"\x00\xff", "t": when, "nan": math.nan, "inf": -math.inf, "big": 2**64,
                      "ok": MAX_SAFE_INT, "$k": 1, "l": (1, 2)})
    assert out == {"b": {"$bytes": "AP8="}, "t": {"$datetime": when.isoformat()}, "nan": {"$float": "nan"},
                   "inf": {"$float": "-inf"}, "big": {"$int": str(2**64)}, "ok": MAX_SAFE_INT, "$$k": 1, "l": [1, 2]}
    assert escape_segment("$k") == "$$k" and escape_segment("k") == "k"


@given(st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(), st.binary()),
                    lambda inner: st.one_of(st.lists(inner), st.dictionaries(st.text(), inner)), max_leaves=20))
def test_always_valid_json(value: object) -> None:
    """Whatever the payload, the page gets strict JSON (no NaN, no bytes)."""
    json.loads(dumps(to_display(value)))
    assert len(summary(value, 40)) <= 40
