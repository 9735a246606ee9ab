"""Issue 13, import holes: a refused import leaves nothing behind; hostile lines are one-line errors.

The attacker's edits are made with the project's own export format (``routilux-replay
export``), as an attacker with the file would make them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from replay_tools.errors import EXIT_NOT_A_JOB, ImportFormatError


def one_line_error(result: Any) -> str:
    err = result.stderr.strip()
    assert err and "\n" not in err and "Traceback" not in err, err
    return err


@pytest.fixture
def trail(run: Any, flow_job: str, tmp_path: Path) -> Path:
    """The demo job's export (JSON Lines), in its own directory."""
    out = tmp_path / "exports" / "trail.jsonl"
    out.parent.mkdir()
    assert run("export", flow_job, "-o", str(out)).exit_code == 0
    return out


def _altered(trail: Path) -> tuple[Path, int]:
    """The export with one shared-data value changed (limit 0 -> 1): its link no longer matches."""
    lines = trail.read_text().splitlines()
    target = next(i for i, line in enumerate(lines) if '"limit"' in line and '"value":0' in line)
    lines[target] = lines[target].replace('"value":0', '"value":1')
    bad = trail.with_name("altered.jsonl")
    bad.write_text("\n".join(lines) + "\n")
    return bad, target + 1


@pytest.mark.parametrize("dest_name", ["restored", "restored.rjob", "empty-dir"])
def test_an_altered_export_leaves_nothing_at_the_destination(run: Any, trail: Path, tmp_path: Path,
                                                             dest_name: str) -> None:
    """Exit 4 at the altered line, and the destination is as before: absent (or still empty);
    no staging directory left either."""
    bad, line = _altered(trail)
    dest = tmp_path / dest_name
    if dest_name == "empty-dir":
        dest.mkdir()
    before = sorted(os.listdir(tmp_path))
    res = run("import", str(bad), str(dest))
    assert res.exit_code == EXIT_NOT_A_JOB
    assert f"cannot import '{bad}' line {line}: hash-chain link of seq {line} does not match" in one_line_error(res)
    assert sorted(os.listdir(tmp_path)) == before
    if dest_name == "empty-dir":
        assert os.listdir(dest) == []
    # The retry with the intact export is not blocked by anything left behind.
    assert run("import", str(trail), str(dest)).exit_code == 0
    assert run("verify", str(dest)).exit_code == 0


def test_a_line_of_100000_nested_brackets_is_exit_4_in_one_line(run: Any, trail: Path, tmp_path: Path) -> None:
    """No RecursionError traceback: a one-line error naming the line, exit 4, nothing left."""
    deep = tmp_path / "deep.jsonl"
    deep.write_text("[" * 100_000 + "]" * 100_000 + "\n")
    res = run("import", str(deep), str(tmp_path / "dest"))
    assert res.exit_code == EXIT_NOT_A_JOB
    assert one_line_error(res) == f"routilux-replay: error: cannot import '{deep}' line 1: the JSON nests deeper " \
                                  "than 72 levels"
    lines = trail.read_text().splitlines()
    lines[5] = '{"seq":6,"ts":1,"kind":"x","data":' + "[" * 100_000 + "]" * 100_000 + "}"
    inside = tmp_path / "inside.jsonl"
    inside.write_text("\n".join(lines) + "\n")
    res = run("import", str(inside), str(tmp_path / "dest"))
    assert res.exit_code == EXIT_NOT_A_JOB and "line 6: the JSON nests deeper than 72 levels" in one_line_error(res)
    shallow = tmp_path / "shallow.json"
    shallow.write_text('{"format": "routilux-replay-export/1", "events": ' + "[" * 50_000 + "]" * 50_000 + "}")
    res = run("import", str(shallow), str(tmp_path / "dest"))
    assert res.exit_code == EXIT_NOT_A_JOB and "nests deeper" in one_line_error(res)
    assert not (tmp_path / "dest").exists()


def test_nesting_within_the_bound_still_imports_deep_data(run: Any, tmp_path: Path) -> None:
    """The bound leaves room for what the log accepts (64 levels of data)."""
    from routilux.job_state import JobState

    job_dir = str(tmp_path / "deepjob")
    job = JobState.open(job_dir, flow_id="deep")
    value: Any = 1
    for _ in range(60):
        value = [value]
    job.update_shared_data("deep", value)
    job.close()
    out = tmp_path / "deep.jsonl"
    assert run("export", job_dir, "-o", str(out)).exit_code == 0
    assert run("import", str(out), str(tmp_path / "back")).exit_code == 0


def test_an_overlong_line_is_refused_before_it_is_parsed(run: Any, trail: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Line length is bounded (MAX_LINE): a longer line is exit 4 naming it."""
    import replay_tools.exporting as exporting

    monkeypatch.setattr(exporting, "MAX_LINE", 4096)
    lines = trail.read_text().splitlines()
    lines[2] = lines[2][:-1] + ',"pad":"' + "x" * 5000 + '"}'
    big = tmp_path / "big.jsonl"
    big.write_text("\n".join(lines) + "\n")
    res = run("import", str(big), str(tmp_path / "dest"))
    assert res.exit_code == EXIT_NOT_A_JOB
    assert one_line_error(res) == f"routilux-replay: error: cannot import '{big}' line 3: the line is longer " \
                                  "than 4096 characters"
    assert not (tmp_path / "dest").exists()


def test_an_export_that_is_not_a_job_is_refused(run: Any, tmp_path: Path) -> None:
    """An eventlog log whose first event is not job_created is not a job: exit 4, nothing left."""
    import eventlog

    log_dir = str(tmp_path / "plain-log")
    log = eventlog.open_log(log_dir)
    log.append("note", {"text": "not a job"})
    log.close()
    out = tmp_path / "plain.jsonl"
    assert run("export", log_dir, "-o", str(out)).exit_code == EXIT_NOT_A_JOB  # not a job log to begin with
    from replay_tools.exporting import export_log

    log = eventlog.open_log(log_dir, readonly=True, create=False)
    with out.open("w") as fh:
        export_log(log, fh)
    log.close()
    res = run("import", str(out), str(tmp_path / "dest"))
    assert res.exit_code == EXIT_NOT_A_JOB
    assert "it is not a job's trail: its first event is 'note', not job_created" in one_line_error(res)
    assert not (tmp_path / "dest").exists()


def test_an_event_that_cannot_be_replayed_is_refused(run: Any, trail: Path, tmp_path: Path) -> None:
    """A well-linked export whose event is malformed for routilux (a status that is not a str)
    is refused: the import folds every event before anything appears."""
    from eventlog import InMemoryEventLog
    from replay_tools.exporting import export_log
    from replay_tools.jsonform import record_from_json

    recs = [record_from_json(json.loads(line))[0] for line in trail.read_text().splitlines()]
    log = InMemoryEventLog()
    for rec in recs[:5]:
        log.append(rec.kind, rec.data, ts=rec.ts)
    log.append("status_set", {"status": 5}, ts=recs[5].ts)
    out = tmp_path / "malformed.jsonl"
    with out.open("w") as fh:
        export_log(log, fh)
    res = run("import", str(out), str(tmp_path / "dest"))
    assert res.exit_code == EXIT_NOT_A_JOB
    assert "event 6 cannot be replayed" in one_line_error(res)
    assert not (tmp_path / "dest").exists()


def test_a_crash_during_import_leaves_only_a_hidden_staging_name(trail: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever fails mid-way (here: the disk), the destination never exists half-written."""
    import replay_tools.exporting as exporting

    real = exporting.read_export_into

    def failing(path: str, log: Any, **kwargs: Any) -> Any:
        log.append("job_created", {"job_id": "x", "flow_id": "y", "schema": 2})
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(exporting, "read_export_into", failing)
    with pytest.raises(OSError):
        exporting.import_job(str(trail), str(tmp_path / "dest"))
    assert sorted(os.listdir(tmp_path)) == ["exports", "job"]
    monkeypatch.setattr(exporting, "read_export_into", real)
    assert exporting.import_job(str(trail), str(tmp_path / "dest")).events == 38


def test_import_refuses_an_occupied_destination(run: Any, trail: Path, flow_job: str) -> None:
    """A destination that holds anything is refused (exit 2) and left untouched."""
    before = sorted(os.listdir(flow_job))
    res = run("import", str(trail), flow_job)
    assert res.exit_code == 2 and "non-empty directory" in one_line_error(res)
    assert sorted(os.listdir(flow_job)) == before
    with pytest.raises(ImportFormatError):
        from replay_tools.exporting import iter_export

        bad = Path(trail).with_name("latin1.jsonl")
        bad.write_bytes(b'{"seq": 1, "kind": "\xff"}\n')
        list(iter_export(str(bad)))
