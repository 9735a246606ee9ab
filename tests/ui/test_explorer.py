"""The page's API: answers agree with the library, and every bad parameter is refused."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from replay_tools import bisect, blame, diff, parse_condition
from replay_tools.ui.errors import BadRequestError
from replay_tools.ui.explorer import Explorer, pack_tasks
from replay_tools.ui.index import JobIndex


@pytest.fixture
def explorer(demo_job: Any) -> Explorer:
    ex = Explorer(demo_job)
    ex.index.scan()
    return ex


def q(**kw: Any) -> dict[str, list[str]]:
    return {k: [str(v)] for k, v in kw.items()}


def test_meta_names_the_job(explorer: Explorer, demo_job: Any) -> None:
    """meta: identity, head, kinds and routines as indexed."""
    m = explorer.meta()
    assert m["job_id"] == demo_job.job_id and m["head"] == demo_job.head and m["scanned"]
    assert "paused" in m["kinds"] and m["routines"] == ["fetch", "validate", "price", "report"]


def test_rows_pages_and_filters(explorer: Explorer, demo_job: Any) -> None:
    """rows: unfiltered pages follow the log; a kind filter keeps only that kind."""
    page = explorer.rows(q(**{"from": 10, "count": 5}))
    assert page["total"] == demo_job.head and [r[0] for r in page["rows"]] == [11, 12, 13, 14, 15]
    kinds = {rec.seq: rec.kind for rec in demo_job.read()}
    f = explorer.rows(q(kinds="shared_data_set,paused"))
    assert [r[0] for r in f["rows"]] == [s for s, k in kinds.items() if k in ("shared_data_set", "paused")]
    r = explorer.rows(q(routine="validate"))
    assert r["rows"] and all(row[4] == "validate" for row in r["rows"])
    t = explorer.rows(q(text="OPERATOR check"))
    assert {row[3] for row in t["rows"]} == {"pause_point_added", "paused"}
    pos = explorer.position(q(kinds="shared_data_set", v=20))
    assert pos["position"] == [s for s, k in kinds.items() if k == "shared_data_set" and s < 20].__len__()


def test_diff_blame_bisect_are_the_library_s(explorer: Explorer, demo_job: Any) -> None:
    """diff, blame and bisect answer what replay_tools answers."""
    d = explorer.diff(q(a=17, b=demo_job.head))
    lib = diff(demo_job, 17, demo_job.head)
    assert [i["path"] for g in d["groups"] for i in g["items"]] == [x.path for x in lib]
    assert d["history"] == "entries"
    b = explorer.blame(q(path="shared_data.limit"))
    assert [c["version"] for c in b["changes"]] == [e.version for e in blame(demo_job, "shared_data.limit")]
    assert b["changes"][0]["old_exists"] is False and not b["more"]
    s = explorer.bisect(q(where="shared_data.limit == 0"))
    assert s["version"] == bisect(demo_job, parse_condition("shared_data.limit == 0")).version
    none = explorer.bisect(q(where="status == cancelled"))
    assert none["version"] is None


@pytest.mark.parametrize(("method", "params", "name"), [
    ("window", {}, "v"),
    ("window", {"v": "0"}, "v"),
    ("window", {"v": "-3"}, "v"),
    ("window", {"v": "1e3"}, "v"),
    ("window", {"v": "99999"}, "v"),
    ("diff", {"a": "1"}, "b"),
    ("rows", {"count": "100000"}, "count"),
    ("rows", {"kinds": "status_set,<script>"}, "kinds"),
    ("rows", {"text": "x" * 2000}, "text"),
    ("blame", {"path": 'shared_data."open'}, "path"),
    ("blame", {}, "path"),
    ("bisect", {"where": "status =="}, "where"),
    ("bisect", {"where": "__import__('os').system('x')"}, "where"),
    ("bisect", {"where": "status == x", "exhaustive": "yes"}, "exhaustive"),
    ("version_at", {"ms": "nan"}, "ms"),
    ("verify", {"again": "2"}, "again"),
])
def test_bad_parameters_are_refused(explorer: Explorer, method: str, params: dict[str, str], name: str) -> None:
    """Every invalid parameter is a BadRequestError naming it (nothing is evaluated)."""
    with pytest.raises(BadRequestError) as info:
        getattr(explorer, method)({k: [v] for k, v in params.items()})
    assert info.value.param == name


def test_repeated_parameter_is_refused(explorer: Explorer) -> None:
    """A parameter given twice is ambiguous: refused."""
    with pytest.raises(BadRequestError):
        explorer.window({"v": ["1", "2"]})


def test_window_has_counts_times_and_caching(explorer: Explorer, demo_job: Any) -> None:
    """A window carries counts, times and ms per version; complete windows are cached."""
    w = explorer.window(q(v=5))
    n = w["last"] - w["base"] + 1
    assert len(w["counts"]) == len(w["times"]) == len(w["ms"]) == len(w["patches"]) == n
    assert w["counts"][-1] == [explorer.index.counts(w["last"])[k] for k in explorer.meta()["counted"]]


def test_tasks_are_packed_little_endian(explorer: Explorer) -> None:
    """pack_tasks: a count, three float64 columns, four int32 columns, one byte column."""
    data = pack_tasks(explorer.index)
    n = struct.unpack_from("<I", data)[0]
    assert n == 4 and len(data) == 8 + n * (3 * 8 + 4 * 4 + 1)
    queued = struct.unpack_from(f"<{n}d", data, 8)
    assert queued == tuple(sorted(queued)) and queued[0] >= 0
    assert pack_tasks(explorer.index, since=10 ** 9)[:4] == b"\0\0\0\0"


def test_rows_before_the_index_is_built(demo_job: Any) -> None:
    """Before the index is built, a filtered list says it is not complete; rows still name their routines."""
    ex = Explorer(demo_job, JobIndex(demo_job))
    first = ex.rows(q(kinds="paused"))
    assert first["complete"] is False and first["total"] == 0 and first["upto"] == 0
    rows = ex.rows(q(count=50))
    assert rows["complete"] is True and rows["routines_after"] is None
    assert [row[4] for row in rows["rows"][21:24]] == ["validate"] * 3  # attributed on demand
    ex.index.scan()
    assert ex.rows(q(kinds="paused"))["complete"] is True
