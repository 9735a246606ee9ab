"""The text filter: the fast scan of stored bytes finds exactly the events the definition matches."""

from __future__ import annotations

import datetime as dt
import math
import os
import tempfile
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from replay_tools import open_job
from replay_tools.ui.textsearch import atoms, event_matches, fold, needs_numbers, scan_text
from routilux.job_state import JobState

# Strings built to trip a byte search: case, control characters (JSON escapes), quotes,
# the Kelvin sign and dotted I (whose lower case is ASCII), bytes that look like msgpack
# headers, and words that also appear as keys, kinds and tags.
_words = st.sampled_from(["limit", "LIMIT", "Item-7", "bad item", "a\nb", "tab\there", 'say "hi"', "back\\slash",
                          "\u212aelvin", "\u0130stanbul", "é", "\x00nul", "\xa5x", "true", "null", "bytes", "set",
                          "shared_data_set", "$tag", "4711", "12.5", "e"])
_text = st.one_of(_words, st.text(max_size=6))
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.integers(-5000, 5000),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([5.0, 12.5, 1e-05, 1e16, 4711.0]),
    _text, st.binary(max_size=6), st.just(dt.datetime(2026, 11, 28, 7, 13, 4, tzinfo=dt.timezone.utc)),
)
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(_text, inner, max_size=3),
    st.lists(inner, max_size=3).map(tuple), st.frozensets(st.sampled_from(["set", "limit", 7]), max_size=2),
), max_leaves=8)


def _needles(values: list[Any]) -> st.SearchStrategy[str]:
    """Needles: pieces of the atoms the job holds (hits), and other texts (misses, numbers)."""
    pieces = []
    for value in values:
        for atom in atoms(value):
            if atom:
                pieces.extend({atom, atom[: max(1, len(atom) // 2)], atom[len(atom) // 2 :], atom.upper()})
    hits = st.sampled_from(sorted(pieces)) if pieces else st.just("limit")
    return st.one_of(hits, _text, st.sampled_from(["shared", "data_set", "47", "1e", "-", "."]))


@given(st.lists(st.tuples(_text, _values), min_size=1, max_size=12), st.data())
@settings(max_examples=60, deadline=None)
def test_fast_scan_is_the_definition(entries: list[tuple[str, Any]], data: st.DataObject) -> None:
    """scan_text over the stored bytes == event_matches over the decoded events, for any needle."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "job")
        job = JobState.open(path, flow_id="text")
        try:
            for key, value in entries:
                job.update_shared_data(key, value)
        finally:
            job.close()
        with open_job(path) as opened:
            records = list(opened.read())
            kinds = {rec.seq: rec.kind for rec in records}
            for _ in range(4):
                needle = fold(data.draw(_needles([rec.data for rec in records]), label="needle"))
                want = [rec.seq for rec in records if event_matches(needle, rec.kind, rec.data)]
                assert scan_text(opened, needle, 1, opened.head, kinds.__getitem__) == want, needle
                some = sorted(kinds)[::2]
                assert scan_text(opened, needle, 1, opened.head, kinds.__getitem__, wanted=some) == \
                    [s for s in want if s in some]


def test_atoms_and_the_case_rule() -> None:
    """Atoms are keys, strings and finite numbers as the list writes them; only A-Z fold."""
    payload = {"Key": [1, 2.0, 1e-05, True, None, b"by", float("nan"), ("t", {"in": "ner"})], 7: "seven"}
    assert sorted(atoms(payload)) == sorted(["Key", "1", "2.0", "1e-05", "t", "in", "ner", "7", "seven"])
    assert list(atoms(payload, numbers=False)) == ["Key", "t", "in", "ner", "seven"]
    assert fold("ÀBC \u212a") == "Àbc \u212a"
    assert event_matches("key", "shared_data_set", payload) and event_matches("set", "shared_data_set", {})
    assert event_matches("05", "k", payload) and not event_matches("true", "k", payload)
    assert not event_matches("key 1", "k", payload)  # a text never spans two atoms
    assert needs_numbers("4711") and needs_numbers("-1.5e") and not needs_numbers("a1")
    assert not any(math.isnan(float(a)) for a in atoms(payload) if a.replace(".", "").isdigit())
