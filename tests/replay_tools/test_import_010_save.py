"""`routilux-replay import` of a routilux 0.10 JSON save (issue 12): all or nothing, like any import.

The save becomes a new job (a directory, a saved ``.rjob`` file) whose first event names
the file and the SHA-256 of its bytes; a save that is not JSON, not a JobState, or altered
into an impossible shape is refused with one line and exit code 4, leaving nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

import eventlog
from replay_tools.errors import EXIT_NOT_A_JOB
from routilux import JobState

SAVES = Path(__file__).resolve().parent.parent / "fixtures" / "routilux010" / "saves"


def one_line_error(result: Any) -> str:
    """The error output, checked to be one line."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize("name", ["completed", "paused"])
def test_import_of_a_0_10_save_into_a_directory_and_a_file(run: Any, tmp_path: Path, name: str) -> None:
    """Both destinations hold the same job as the save; verify passes; the first event names the file."""
    source = SAVES / f"{name}.json"
    saved = json.loads(source.read_text(encoding="utf-8"))
    for dest in (tmp_path / "job", tmp_path / "job.rjob"):
        result = run("import", str(source), str(dest), "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["events"] > 1
        job = JobState.open(dest, readonly=True) if dest.suffix != ".rjob" else JobState.load(dest)
        try:
            assert job.serialize() == saved
            first = job.events()[0].data["imported_from"]
            assert first["file"] == f"{name}.json"
            assert first["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
        finally:
            job.close()
        check = run("verify", str(dest))
        assert check.exit_code == 0, check.output
    assert eventlog.verify(tmp_path / "job").ok


@pytest.mark.parametrize(("content", "reason"), [
    (b"{\n  \"_type\": \"JobState\",\n  \"job_id\": ", "not JSON Lines or a JSON export"),
    (b'{"_type": "JobState", "job_id": "j", "routine_states": {"r": [1]}}', "routine_states['r'] must be a dict"),
    (b'{"_type": "JobState", "job_id": "j", "status": 7}', "invalid job status"),
    (b'{"_type": "JobState", "job_id": "j", "execution_history": [{"routine_id": "r", "event_name": "e", '
     b'"timestamp": "not a time"}]}', "not an ISO datetime"),
])
def test_a_bad_or_tampered_save_is_one_line_and_leaves_nothing(run: Any, tmp_path: Path, content: bytes,
                                                              reason: str) -> None:
    """Refused with exit code 4 and one line; no destination directory or file is left behind."""
    source = tmp_path / "save.json"
    source.write_bytes(content)
    for dest in (tmp_path / "job", tmp_path / "job.rjob"):
        result = run("import", str(source), str(dest))
        assert result.exit_code == EXIT_NOT_A_JOB, result.output
        assert reason in one_line_error(result)
    assert sorted(os.listdir(tmp_path)) == ["save.json"]
