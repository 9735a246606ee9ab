"""The comparison benchmarks' workloads still run against our implementation.

Each workload runs once, at a tiny size, on ours only: no peer venv, no network, no timing
assertions. A renamed API then fails here, in CI, rather than in the next benchmark run.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))

import flow_workloads  # noqa: E402
import peer  # noqa: E402
import report  # noqa: E402
import workloads  # noqa: E402
import workloads_floor  # noqa: E402
import workloads_ours  # noqa: E402


def _positive(result: dict[str, float], *metrics: str) -> None:
    for metric in metrics:
        value = result[metric]
        assert math.isfinite(value) and value > 0, (metric, result)


@pytest.mark.parametrize("shape", sorted(workloads.SHAPES))
@pytest.mark.parametrize("workload", [workloads.record_execution, workloads.update_routine_state,
                                      workloads.update_shared_data])
def test_mutator_workloads_time_a_call(workload, shape):
    """record_execution, update_routine_state, update_shared_data: µs per call, both shapes."""
    _positive(workload({"n": 50, "shape": shape}), "us_per_call")


@pytest.mark.parametrize("shape", sorted(workloads.SHAPES))
def test_save_load_round_trips_every_record(tmp_path, shape):
    """save_load times both and checks that load gave back every record."""
    result = workloads.save_load({"n": 30, "shape": shape, "dir": str(tmp_path)})
    _positive(result, "save_ms", "load_ms", "file_bytes")
    assert list(tmp_path.iterdir()) == []  # the saved file is removed


def test_memory_workloads_measure_bytes():
    """record_memory and the big-list workload report memory kept per record."""
    _positive(workloads.record_memory({"n": 50, "shape": "nested"}), "bytes_per_record",
              "bytes_per_record_after_read")
    result = workloads.record_execution_beside_big_list({"n": 50, "present": True, "list_len": 1000})
    _positive(result, "us_per_call", "state_bytes", "bytes_per_record", "total_bytes")


@pytest.mark.parametrize("workload", [workloads.inplace_list_appends, workloads.inplace_routine_state_edit])
def test_inplace_workloads_measure_or_say_unsupported(workload):
    """Issue 12's rows: a time, or a one-line reason why the edit is refused (never a crash)."""
    result = workload({"n": 20})
    if "unsupported" in result:
        assert result["unsupported"].startswith("raises ")
    else:
        _positive(result, next(iter(result)))


@pytest.mark.parametrize("op", ["shared_data", "routine_state", "list_append", "state_edit"])
def test_event_floor_records_one_event_per_call(op):
    """bench_floor's floor loop: one event per call, timed (it raises if the count is off)."""
    _positive(workloads_floor.event_floor({"op": op, "n": 40, "shape": "nested"}), "us_per_call", "ms")


@pytest.mark.parametrize("durable", [False, True])
def test_record_floor_records_one_event_per_call(tmp_path, durable):
    """bench_floor's record_execution floor, in memory and durable; the durable one leaves no file."""
    _positive(workloads_floor.record_floor({"n": 40, "durable": durable, "dir": str(tmp_path)}), "us_per_call")
    assert list(tmp_path.iterdir()) == []


def test_replay_floor_reads_every_event_of_the_prepared_job(tmp_path):
    """The replay floor counts the same events as ours and SQLite, and refuses a damaged frame."""
    paths = {"job_dir": str(tmp_path / "job"), "db_path": str(tmp_path / "events.sqlite")}
    workloads_ours.prepare_replay({**paths, "events": 300, "shape": "nested"})
    result = workloads_floor.replay_floor(paths)
    assert result["events"] == 300
    _positive(result, "events_per_s")
    segment = next((tmp_path / "job").glob("*.seg"))
    data = bytearray(segment.read_bytes())
    data[56 + 48 + 5] ^= 0xFF  # a byte of the first event
    segment.write_bytes(bytes(data))
    with pytest.raises(AssertionError, match="bad frame CRC"):
        workloads_floor.replay_floor(paths)


def test_durable_replay_and_time_travel_workloads(tmp_path):
    """Durable record_execution, the replay job and its SQLite twin, replay and at()."""
    _positive(workloads_ours.record_execution_durable({"n": 50, "shape": "nested", "dir": str(tmp_path)}),
              "us_per_call")
    paths = {"job_dir": str(tmp_path / "job"), "db_path": str(tmp_path / "events.sqlite")}
    prepared = workloads_ours.prepare_replay({**paths, "events": 300, "shape": "nested"})
    assert prepared["events"] == 300
    ours, sqlite = workloads_ours.replay_ours(paths), workloads_ours.replay_sqlite(paths)
    assert ours["events"] == sqlite["events"] == 300
    _positive(ours, "events_per_s")
    _positive(sqlite, "events_per_s")
    _positive(sqlite, "events_per_s_kept")
    result = workloads_ours.at_versions({**paths, "samples": 3})
    assert result["worst_ms"] >= result["median_ms"] > 0


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_flow_workloads_complete_in_memory_and_durable(tmp_path, strategy):
    """Chain and fan-out run to completion, in memory and with a durable job."""
    for durable in ({}, {"durable_dir": str(tmp_path)}):
        chain = flow_workloads.chain({"length": 5, "strategy": strategy, **durable})
        fanout = flow_workloads.fanout({"events": 20, "strategy": strategy, "repeat": 2, **durable})
        assert chain["events"] == 4 and fanout["events"] == 20
        _positive(chain, "done_ms", "wait_ms")
        _positive(fanout, "done_ms", "wait_ms")
    assert list(tmp_path.iterdir()) == []  # each run's job directory is removed


def test_idle_wait_workload():
    """wait_for_completion on a finished job returns a time."""
    assert flow_workloads.idle_wait({"repeat": 3})["ms"] >= 0


def test_runner_reports_ours_from_a_fresh_process():
    """run_workload starts the child, parses its result and checks which routilux it imported."""
    ours = peer.interpreters(None)[peer.OURS]
    result = peer.run_workload(ours, "workloads", "record_execution", {"n": 20, "shape": "flat"}, timeout=120)
    _positive(result, "us_per_call")


def test_runner_refuses_a_side_that_imported_the_wrong_routilux(tmp_path):
    """A side whose routilux is not where it should be is an error, never a figure."""
    ours = peer.interpreters(None)[peer.OURS]
    wrong = peer.Interpreter(peer.PEER, ours.python, ours.root, str(tmp_path))
    with pytest.raises(peer.WorkloadError, match="imported routilux from"):
        peer.run_workload(wrong, "workloads", "record_execution", {"n": 5, "shape": "flat"}, timeout=120)


def test_peer_venv_path_that_is_not_a_venv_is_refused_and_left_alone(tmp_path):
    """--peer-venv pointing at some other directory: a one-line error, nothing deleted."""
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(peer.PeerUnavailableError, match="is not a venv"):
        peer.ensure_peer_venv(tmp_path, say=lambda _text: None)
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_table_shows_medians_ratio_target_and_unsupported():
    """render_table: median with min-max, the ratio of medians, the verdict, and refusals."""
    results = peer.Results()
    results.runs[("a", peer.OURS)] = [{"us": 1.0}, {"us": 3.0}, {"us": 2.0}]
    results.runs[("a", peer.PEER)] = [{"us": 4.0}, {"us": 4.0}, {"us": 4.0}]
    results.runs[("b", peer.OURS)] = [{"unsupported": "raises TypeError: read-only"}]
    results.runs[("b", peer.PEER)] = [{"us": 1.0}]
    rows = [report.Row("a", "flat", "µs", report.Ref("a", peer.OURS, "us"),
                       report.Ref("a", peer.PEER, "us", "0.10"), report.Target("<=", 0.6, "issue 11")),
            report.Row("b", "flat", "µs", report.Ref("b", peer.OURS, "us"),
                       report.Ref("b", peer.PEER, "us", "0.10"), report.Target("<=", 3, "issue 12"))]
    table = report.render_table(rows, results).splitlines()
    assert "| 2.00 µs (1.00 µs – 3.00 µs) | 0.10: 4.00 µs (4.00 µs – 4.00 µs) | 0.50x | <= 0.6x (issue 11): met |" \
        in table[2]
    assert "unsupported (raises TypeError: read-only)" in table[3]
    assert table[3].endswith("| n/a | <= 3x (issue 12): MISSED (not measurable) |")


@pytest.mark.parametrize("label", ["floor", "append 'batch'"])
def test_append_floor_cases_time_an_event(monkeypatch, label):
    """bench_append_floor's bare loop and the real durable append, at a tiny size."""
    import bench_append_floor

    monkeypatch.setattr(bench_append_floor, "EVENTS", 300)
    _positive(bench_append_floor.run_one(label), "wall", "cpu")
