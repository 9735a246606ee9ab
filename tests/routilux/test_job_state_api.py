"""The JobState API items of issue 17: store refusal, at("head"), iter_events, JobEvent.time, ISO times."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import tracemalloc
from pathlib import Path

import pytest

import routilux
from routilux import JobState, JobStore


# -- JobState.open refuses a JobStore directory -------------------------------------------------
def test_open_refuses_a_job_store_directory_naming_it(tmp_path: Path) -> None:
    """Opening a store's root as a job would create a job there (and break the store): refused."""
    store = JobStore(tmp_path / "store")
    for job_id in ("alpha", "beta"):
        store.create(flow_id="f", job_id=job_id).close()
    before = sorted(os.listdir(tmp_path / "store"))
    for readonly in (False, True):
        with pytest.raises(ValueError, match=r"is a JobStore directory holding 2 jobs \(alpha, beta\)") as err:
            JobState.open(tmp_path / "store", readonly=readonly)
        assert "JobStore(" in str(err.value) and "\n" not in str(err.value)
    assert sorted(os.listdir(tmp_path / "store")) == before  # nothing created at the store's root
    assert [s.job_id for s in store.list()] == ["alpha", "beta"]
    with JobState.open(tmp_path / "store" / "alpha") as job:  # a job inside it opens as before
        assert job.flow_id == "f"


def test_open_of_an_empty_or_new_directory_still_creates_a_job(tmp_path: Path) -> None:
    """An empty directory (a new job) is not a store."""
    (tmp_path / "empty").mkdir()
    with JobState.open(tmp_path / "empty", flow_id="f") as job:
        assert job.version == 1


# -- at("head"), at("head-N") ----------------------------------------------------------------
def _job(n: int = 5) -> JobState:
    job = JobState("f")
    for i in range(n):
        job.update_shared_data("i", i)
    return job


@pytest.mark.parametrize(("point", "version"), [("head", 6), ("HEAD", 6), ("head-1", 5), ("head~2", 4),
                                                 ("head - 5", 1), ("3", 3), (3, 3)])
def test_at_takes_head_and_head_minus_n_like_the_cli(point: str | int, version: int) -> None:
    """at("head"), at("head-N") / "head~N" and numeric strings, as the CLI's --at takes them."""
    job = _job()
    view = job.at(point)
    assert view.version == version and view.readonly
    assert view.serialize() == job.at(version=version).serialize()


@pytest.mark.parametrize("bad", ["head-6", "head+1", "tail", "", "-1", 0, 7])
def test_at_refuses_a_point_outside_the_job(bad: str | int) -> None:
    """A point that is not a version of the job is a ValueError saying what is accepted."""
    with pytest.raises(ValueError, match="version"):
        _job().at(bad)


def test_load_takes_head_minus_n_and_iso_times(tmp_path: Path) -> None:
    """load(version="head-1") and load(timestamp=ISO string) like at()."""
    job = _job()
    job.save(tmp_path / "j.rjob")
    assert JobState.load(tmp_path / "j.rjob", version="head-1").version == 5
    third = job.events()[2]
    iso = third.time.isoformat()
    assert JobState.load(tmp_path / "j.rjob", timestamp=iso).version >= 3


# -- iter_events -----------------------------------------------------------------------------------
def test_iter_events_is_lazy_with_the_same_filters_as_events() -> None:
    """iter_events yields what events() returns, filter for filter."""
    job = _job(20)
    job.record_execution("r", "e", {"x": 1})
    it = job.iter_events()
    assert iter(it) is it and not isinstance(it, list)
    for kwargs in ({}, {"kind": "shared_data_set"}, {"kind": ["job_created", "execution_recorded"]},
                   {"routine_id": "r"}, {"start": 3, "stop": 7}, {"since": job.events()[5].ts},
                   {"until": job.events()[5].timestamp}):
        assert list(job.iter_events(**kwargs)) == job.events(**kwargs), kwargs  # type: ignore[arg-type]
    head = job.version
    later = job.iter_events()
    job.update_shared_data("after", 1)
    assert [e.seq for e in later][-1] == head  # up to the version at the call


def test_iter_events_memory_stays_bounded() -> None:
    """Reading 50,000 events one by one holds a handful at a time, a list holds them all."""
    job = JobState("f")
    payload = {"values": list(range(20)), "note": "x" * 40}
    for i in range(50_000):
        job.record_execution("r", "e", {**payload, "i": i})
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        count = 0
        for _event in job.iter_events(kind="execution_recorded"):
            count += 1
        _, lazy_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        everything = job.events(kind="execution_recorded")
        _, list_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == len(everything) == 50_000
    assert lazy_peak < 1_000_000 and lazy_peak * 20 < list_peak, (lazy_peak, list_peak)


# -- JobEvent.time and ISO times --------------------------------------------------------------------
def test_job_event_time_is_an_aware_utc_datetime() -> None:
    """JobEvent.time: aware UTC, the same instant as the local timestamp; ts stays integer ns."""
    event = _job(1).events()[-1]
    assert isinstance(event.ts, int)
    assert event.time.tzinfo == dt.timezone.utc
    assert event.time == event.timestamp.astimezone(dt.timezone.utc)
    assert event.time.microsecond == (event.ts // 1000) % 1_000_000


def test_iso_strings_and_datetimes_are_accepted_wherever_a_time_is() -> None:
    """events(since=, until=) and at(timestamp=) take ISO strings (Z, offsets, naive = local, ns)."""
    job = _job(10)
    mid = job.events()[5]
    forms = [mid.time.isoformat(), mid.time.isoformat().replace("+00:00", "Z"), mid.timestamp.isoformat(),
             mid.time.astimezone(dt.timezone(dt.timedelta(hours=5, minutes=30))).isoformat(), mid.time,
             mid.timestamp, mid.ts]
    for form in forms:
        assert job.events(until=form)[-1].seq >= mid.seq, form
        assert job.events(since=form)[0].seq <= mid.seq, form
        assert job.at(timestamp=form).version >= mid.seq, form
    exact = mid.time.strftime("%Y-%m-%dT%H:%M:%S.") + f"{mid.ts % 1_000_000_000:09d}Z"
    assert job.events(until=exact)[-1].ts <= mid.ts
    assert job.events(since=exact)[0].ts >= mid.ts
    with pytest.raises(ValueError, match="not an ISO 8601 time"):
        job.events(since="last tuesday")


# -- routilux re-exports the codec names ---------------------------------------------------------------
def test_routilux_exports_register_type() -> None:
    """`from routilux import register_type` registers a class kept in a job's state."""

    @dataclasses.dataclass
    class Point:
        x: int
        y: int

    routilux.register_type(Point)
    try:
        job = JobState()
        job.update_shared_data("p", Point(1, 2))
        assert JobState.from_events(job.events()).get_shared_data("p") == Point(1, 2)
    finally:
        routilux.unregister_type(Point)
    assert {"register_type", "StoredObject", "EventEncodingError", "DetachedValueError"} <= set(routilux.__all__)
