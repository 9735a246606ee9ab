"""Issue 17: routilux-replay gives right answers, streams, fails safely and follows the
conventions users expect. Exact expected output for each item, on the demo flow's job
(the same story, with the same versions, on every run) and on jobs built for a case."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import eventlog
from replay_tools.cli import cli
from replay_tools.errors import EXIT_CHECK_FAILED, EXIT_DAMAGED, EXIT_NOT_A_JOB, EXIT_USAGE
from replay_tools.timefmt import format_time, format_time_ns
from routilux.job_events import SCHEMA_VERSION
from routilux.job_state import JobState


def records(path: str) -> list[Any]:
    """Every record of a durable job directory, read straight from eventlog."""
    log = eventlog.open_log(path, readonly=True, create=False)
    try:
        return list(log.read())
    finally:
        log.close()


def one_line_error(result: Any) -> str:
    """The error output must be exactly one line on stderr."""
    err = result.stderr.strip()
    assert err and "\n" not in err and "Traceback" not in err, err
    return err


def ok(result: Any) -> str:
    assert result.exit_code == 0, result.stderr
    return str(result.stdout)


# -- bisect: right for every condition ---------------------------------------------------------
def test_the_demo_story_has_the_versions_the_issue_names(flow_job: str) -> None:
    """The demo job: completed at 13 (after fetch), paused at 17, resumed at 18, completed at 38."""
    kinds = {r.seq: (r.kind, r.data) for r in records(flow_job)}
    assert len(kinds) == 38
    assert kinds[13] == ("status_set", {"status": "completed"})
    assert kinds[17][0] == "paused" and kinds[18][0] == "resumed"
    assert kinds[38] == ("status_set", {"status": "completed"})


def test_bisect_status_paused_is_17(run: Any, flow_job: str) -> None:
    """`status == paused` holds only at 17 (resumed at 18): bisect says 17, exactly."""
    paused = records(flow_job)[16]
    assert ok(run("bisect", flow_job, "--where", "status == paused")) == (
        "first version where 'status == paused' holds: 17\n"
        f"time:    {format_time(paused.ts)}\n"
        "event:   paused\n"
        "routine: fetch\n"
        'data:    {"reason": "operator check", "checkpoint": {"after": "fetch"}}\n'
        "search:  4 states evaluated, 17 of 38 events read\n"
    )


def test_bisect_status_completed_is_13(run: Any, flow_job: str) -> None:
    """`status == completed` first holds at 13, though it is false again from 17 to 37."""
    data = json.loads(ok(run("bisect", flow_job, "--where", "status == completed", "--json")))
    rec = records(flow_job)[12]
    assert data == {
        "condition": "status == completed", "version": 13, "ts": rec.ts, "time": format_time_ns(rec.ts),
        "kind": "status_set", "routine": "fetch", "data": {"status": "completed"}, "probes": 3,
        "events_read": 13, "method": "scan", "exhaustive": True,
    }


def test_bisect_all_lists_every_transition(run: Any, flow_job: str) -> None:
    """--all: each version where the condition becomes true or false, with its time."""
    recs = records(flow_job)
    out = ok(run("bisect", flow_job, "--where", "status == completed", "--all"))
    assert out == (
        "VERSION  TIME                         BECOMES  KIND        DATA\n"
        f"     13  {format_time(recs[12].ts)}  true     status_set  {{\"status\": \"completed\"}}\n"
        f"     17  {format_time(recs[16].ts)}  false    paused      "
        '{"reason": "operator check", "checkpoint": {"after": "fetch"}}\n'
        f"     38  {format_time(recs[37].ts)}  true     status_set  {{\"status\": \"completed\"}}\n"
    )
    data = json.loads(ok(run("bisect", flow_job, "--where", "status == paused", "--all", "--json")))
    assert data["condition"] == "status == paused"
    assert [(t["version"], t["holds"], t["kind"]) for t in data["transitions"]] == [
        (17, True, "paused"), (18, False, "resumed")]
    assert data["transitions"][0]["time"] == format_time_ns(recs[16].ts)
    never = run("bisect", flow_job, "--where", "status == cancelled", "--all")
    assert never.exit_code == EXIT_CHECK_FAILED
    assert never.stdout == "the condition 'status == cancelled' holds at no version of this job (1..38)\n"


def test_a_condition_that_flips_back_is_found(run: Any, tmp_path: Path) -> None:
    """shared_data.limit == 0, then 5 again: bisect finds the 0; a binary search would miss it."""
    path = str(tmp_path / "flip")
    job = JobState.open(path, flow_id="flip")
    job.update_shared_data("limit", 5)
    for _ in range(30):
        job.record_execution("work", "tick", {})
    job.update_shared_data("limit", 0)  # version 33
    job.record_execution("work", "tick", {})
    job.update_shared_data("limit", 5)  # version 35
    for _ in range(30):
        job.record_execution("work", "tick", {})
    job.close()
    found = json.loads(ok(run("bisect", path, "--where", "shared_data.limit == 0", "--json")))
    assert (found["version"], found["data"], found["exhaustive"]) == (33, {"key": "limit", "value": 0}, True)
    flips = json.loads(ok(run("bisect", path, "--where", "shared_data.limit == 0", "--all", "--json")))
    assert [(t["version"], t["holds"]) for t in flips["transitions"]] == [(33, True), (35, False)]
    binary = run("bisect", path, "--where", "shared_data.limit == 0", "--assume-monotonic")
    assert binary.exit_code == EXIT_CHECK_FAILED
    assert binary.stdout == ("the condition 'shared_data.limit == 0' does not hold at the head (version 65); "
                             "with --assume-monotonic that means never (drop the flag to scan every version)\n")


def test_assume_monotonic_agrees_on_a_monotonic_condition(run: Any, flow_job: str) -> None:
    """A condition that stays true once true: the binary search finds the same version."""
    scan = json.loads(ok(run("bisect", flow_job, "--where", "shared_data.done == true", "--json")))
    binary = json.loads(ok(run("bisect", flow_job, "--where", "shared_data.done == true", "--assume-monotonic",
                               "--json")))
    assert scan["version"] == binary["version"] == 35
    assert binary["method"] == "binary search (assumes monotonic)" and binary["probes"] <= 8
    assert (scan["routine"], binary["routine"]) == ("report", "report")


def test_bisect_miss_says_how_many_versions_were_evaluated(run: Any, flow_job: str) -> None:
    """A condition that never holds: exit 1, and the count is of states evaluated, not events."""
    res = run("bisect", flow_job, "--where", "shared_data.limit < 0")
    assert res.exit_code == EXIT_CHECK_FAILED
    assert res.stdout == ("the condition 'shared_data.limit < 0' holds at no version of this job (1..38; "
                          "evaluated at the 5 versions where its fields change)\n")


def test_exhaustive_is_still_accepted(run: Any, flow_job: str) -> None:
    """The old --exhaustive flag keeps working (the default scan is exhaustive now)."""
    data = json.loads(ok(run("bisect", flow_job, "--where", "status == paused", "--exhaustive", "--json")))
    assert data["version"] == 17


# -- a typed condition language ---------------------------------------------------------------
def test_lists_and_sets(run: Any, flow_job: str) -> None:
    """`in [0, 1]` is a list of numbers (23: the limit becomes 1); `{...}` and `(...)` too."""
    for text in ("shared_data.limit in [0, 1]", "shared_data.limit in {0,1}", "shared_data.limit in (1, 0)"):
        assert json.loads(ok(run("bisect", flow_job, "--where", text, "--json")))["version"] == 23
    assert json.loads(ok(run("bisect", flow_job, "--where",
                             "routine_states.validate.status in [failed, completed]", "--json")))["version"] == 25


def test_number_against_text_is_an_error_at_the_token(run: Any, flow_job: str) -> None:
    """`limit > abc`: exit 2, one line naming the field's type and value and the column."""
    res = run("bisect", flow_job, "--where", "shared_data.limit > abc")
    assert res.exit_code == EXIT_USAGE
    assert one_line_error(res) == (
        "routilux-replay: error: bad condition 'shared_data.limit > abc': cannot order shared_data.limit "
        "(number: 3) with abc (text) at version 8 at column 21 ('abc')")


def test_unknown_field_is_an_error_listing_the_nearest(run: Any, flow_job: str) -> None:
    """A field no version has: exit 2 naming the nearest known fields; --allow-missing accepts it."""
    res = run("bisect", flow_job, "--where", "shared_data.limt == 0")
    assert res.exit_code == EXIT_USAGE
    assert one_line_error(res) == (
        "routilux-replay: error: bad condition 'shared_data.limt == 0': no version of this job has "
        "shared_data.limt (did you mean shared_data.limit?; --allow-missing to accept it) at column 1 "
        "('shared_data.limt')")
    top = run("bisect", flow_job, "--where", "stauts == paused")
    assert "unknown field 'stauts' (did you mean status?)" in one_line_error(top)
    allowed = run("bisect", flow_job, "--where", "shared_data.limt == 0", "--allow-missing")
    assert allowed.exit_code == EXIT_CHECK_FAILED and "holds at no version" in allowed.stdout
    absent = run("bisect", flow_job, "--where", "shared_data.gone missing")  # absence asked for: fine
    assert json.loads(ok(run("bisect", flow_job, "--where", "shared_data.gone missing", "--json")))["version"] == 1
    assert absent.exit_code == 0


def test_blame_of_a_field_that_never_existed_is_an_error(run: Any, flow_job: str) -> None:
    """blame JOB nosuch: exit 2 naming the fields, not "no event changed nosuch" with rc 0."""
    res = run("blame", flow_job, "nosuch")
    assert res.exit_code == EXIT_USAGE
    assert "unknown field 'nosuch' (fields: status, job_id, " in one_line_error(res)
    deeper = run("blame", flow_job, "shared_data.limt")
    assert deeper.exit_code == EXIT_USAGE
    assert "no version of this job has shared_data.limt (did you mean shared_data.limit?)" in one_line_error(deeper)


def test_events_of_an_unknown_kind_list_the_kinds(run: Any, flow_job: str) -> None:
    """--kind nosuchkind is refused with the kinds that exist; a real kind absent here says so."""
    res = run("events", flow_job, "--kind", "pausd")
    assert res.exit_code == EXIT_USAGE
    assert one_line_error(res).startswith(
        "routilux-replay: error: no event kind 'pausd' (did you mean paused? kinds: job_created, status_set, ")
    absent = run("events", flow_job, "--kind", "cancelled")
    assert ok(absent).startswith("no matching events (this job has no cancelled events; its kinds: "
                                 "shared_data_set, execution_recorded, ")


def test_events_where_filters_by_a_condition_on_the_event(run: Any, flow_job: str) -> None:
    """events --where: a typed condition on version, kind, routine, data..."""
    rows = [json.loads(line) for line in ok(run(
        "events", flow_job, "--where", "data.key == limit and data.value < 3", "--json")).splitlines()]
    assert [(r["seq"], r["data"]["value"], r["routine"]) for r in rows] == [
        (22, 2, "validate"), (23, 1, "validate"), (24, 0, "validate")]
    by_routine = ok(run("events", flow_job, "--where", "routine == report and version > 30", "--fields", "seq,kind"))
    assert by_routine == "VERSION  KIND\n     33  task_queued\n     34  output_sent\n     35  shared_data_set\n" \
                         "     37  task_finished\n"
    bad = run("events", flow_job, "--where", "data.kee == limit")
    assert bad.exit_code == EXIT_USAGE and "did you mean data.key?" in one_line_error(bad)


# -- one attribution rule ---------------------------------------------------------------------
def test_events_and_blame_name_the_same_routine(run: Any, flow_job: str) -> None:
    """The routine of an event is the same in events and blame, for every field blamed."""
    rows = {json.loads(line)["seq"]: json.loads(line)["routine"]
            for line in ok(run("events", flow_job, "--json")).splitlines()}
    for field in ("shared_data.limit", "shared_data.done", "status", "routine_states", "current_routine_id",
                  "deferred_events", "output_log", "execution_history", "pause_points"):
        changes = json.loads(ok(run("blame", flow_job, field, "--json")))["changes"]
        assert changes, field
        for change in changes:
            assert rows[change["version"]] == change["routine_id"], (field, change["version"])
    assert [rows[v] for v in (8, 22, 23, 24, 35)] == ["fetch", "validate", "validate", "validate", "report"]


def test_events_routine_finds_the_events_blame_attributes(run: Any, flow_job: str) -> None:
    """events --routine validate includes the limit changes made before validate's task_started."""
    seqs = [json.loads(line)["seq"] for line in ok(run("events", flow_job, "--routine", "validate", "--json"))
            .splitlines()]
    assert seqs == [20, 21, 22, 23, 24, 25, 26, 27, 30]
    nobody = run("events", flow_job, "--routine", "nosuch")
    assert ok(nobody) == "no matching events (no event belongs to routine 'nosuch'; routines: fetch, price, " \
                         "report, validate)\n"


def test_a_read_from_the_middle_attributes_as_a_read_from_the_start(run: Any, flow_job: str) -> None:
    """--from N, --reverse and --last give each event the routine a full read gives it."""
    full = [json.loads(line) for line in ok(run("events", flow_job, "--json")).splitlines()]
    for args in (("--from", "22"), ("--from", "35"), ("--reverse",), ("--last", "5")):
        part = [json.loads(line) for line in ok(run("events", flow_job, *args, "--json")).splitlines()]
        for row in part:
            assert row == full[row["seq"] - 1], args


# -- times: one convention ----------------------------------------------------------------------
def test_times_are_utc_with_z_in_text_and_json(run: Any, flow_job: str) -> None:
    """Text shows the JSON time to the microsecond; both end in Z."""
    text = ok(run("events", flow_job, "--from", "17", "--to", "17", "--fields", "time", "--format", "tsv"))
    row = json.loads(ok(run("events", flow_job, "--from", "17", "--to", "17", "--json")))
    shown = text.splitlines()[1]
    assert shown.endswith("Z") and row["time"].endswith("Z")
    assert row["time"][:26] == shown[:26]  # the same instant, ns in JSON


@pytest.mark.skipif(not hasattr(time, "tzset"), reason="time.tzset is needed to switch the local zone")
def test_local_times_carry_their_offset(run: Any, flow_job: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """--local shows local time with its offset, in text and JSON alike."""
    monkeypatch.setenv("TZ", "America/Sao_Paulo")  # UTC-3 all year (no daylight saving since 2019)
    time.tzset()
    try:
        rec = records(flow_job)[16]
        text = ok(run("state", flow_job, "--at", "17", "--local"))
        data = json.loads(ok(run("state", flow_job, "--at", "17", "--local", "--json")))
        assert f"time:            {format_time(rec.ts, 'local')}\n" in text
        assert format_time(rec.ts, "local").endswith("-03:00") and data["time"].endswith("-03:00")
        assert data["time"][:26] == format_time(rec.ts, "local")[:26]
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_relative_and_iso_times_are_accepted(run: Any, tmp_path: Path) -> None:
    """--since 10m / --until 10m ago, and an ISO time with Z, select events by time."""
    path = str(tmp_path / "now")
    job = JobState.open(path, flow_id="now")
    job.status = "running"
    job.close()
    assert len(ok(run("events", path, "--since", "10m", "--json")).splitlines()) == 2
    assert ok(run("events", path, "--until", "10m ago")) == "no matching events\n"
    assert json.loads(ok(run("state", path, "--at", "0s", "--json")))["version"] == 2
    early = run("state", path, "--at", "1d")  # a day ago: before the job (not a hash prefix "1d")
    assert early.exit_code == EXIT_USAGE and "before the job's first event" in one_line_error(early)
    bad = run("events", path, "--since", "10 parsecs")
    assert bad.exit_code == EXIT_USAGE and "relative to now" in one_line_error(bad)


# -- state, verify, info ------------------------------------------------------------------------
def test_state_json_has_every_list(run: Any, flow_job: str) -> None:
    """state --json includes execution_history, shared_log, output_log and pause_points."""
    state = json.loads(ok(run("state", flow_job, "--json")))["state"]
    assert {k: len(state[k]) for k in ("execution_history", "shared_log", "output_log", "pause_points")} == {
        "execution_history": 5, "shared_log": 1, "output_log": 2, "pause_points": 2}
    expected = JobState.open(flow_job, readonly=True)
    try:
        assert state == expected.serialize()
    finally:
        expected.close()


def _flip(path: str, offset: int) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ 0x40]))


def test_verify_after_one_flipped_byte(run: Any, flow_job: str) -> None:
    """0 snapshots: 'check snapshots: -' (nothing to check); the problem printed once; the head
    hash unknown, with the intact versions and their hash instead."""
    seg = os.path.join(flow_job, "00000000000000000001.seg")
    intact = json.loads(ok(run("export", flow_job, "--format", "json")))["events"][17]["link"]
    _flip(seg, os.path.getsize(seg) // 2)
    res = run("verify", flow_job)
    assert res.exit_code == EXIT_CHECK_FAILED
    assert res.stdout == (
        "result:            FAILED\n"
        "events:            38 (18 intact)\n"
        f"head hash:         unknown: the log is damaged after version 18 (hash there: {intact})\n"
        "snapshots:         0 checked\n"
        "check storage:     FAILED\n"
        "check snapshots:   -\n"
        "check determinism: -\n"
        "check head:        -\n"
        "check audit:       -\n"
    )
    assert one_line_error(res).startswith("routilux-replay: problem: frame: frame body checksum mismatch")
    data = json.loads(run("verify", flow_job, "--json").stdout)
    assert (data["head_seq"], data["head_hash"], data["intact_seq"], data["intact_hash"]) == (38, None, 18, intact)
    assert data["checks"] == {"storage": False, "snapshots": None, "determinism": None, "head": None, "audit": None}
    assert len(data["problems"]) == 1


def test_info_warns_about_a_torn_tail(run: Any, flow_job: str) -> None:
    """The unfinished last write of a crashed writer: info still answers, and warns (one line)."""
    seg = os.path.join(flow_job, "00000000000000000001.seg")
    size = os.path.getsize(seg)
    with open(seg, "ab") as fh:
        fh.write(b"\x30\x01\x00\x00\x01\x00\x00\x00\x27\x00")
    res = run("info", flow_job)
    assert res.exit_code == 0 and "versions:  1..38" in res.stdout
    assert one_line_error(res) == (
        "routilux-replay: warning: the log ends in a torn write (10 bytes at the end that are not a complete "
        f"frame, in 00000000000000000001.seg at byte {size}): version 39 was never completed and is ignored; "
        "a writer cuts it off when it reopens the job")
    assert json.loads(run("info", flow_job, "--json").stdout)["warnings"] == [one_line_error(res)[26:]]


# -- streaming listings and formats -----------------------------------------------------------------
def test_formats_and_fields(run: Any, flow_job: str) -> None:
    """--format csv/tsv/json/jsonl and --fields on events, blame and jobs."""
    csv_out = ok(run("events", flow_job, "--kind", "paused", "--format", "csv", "--fields", "version,kind,data"))
    assert csv_out == 'seq,kind,data\n17,paused,"{""reason"": ""operator check"", ""checkpoint"": ' \
                      '{""after"": ""fetch""}}"\n'
    tsv = ok(run("blame", flow_job, "shared_data.limit", "--format", "tsv", "--fields", "version,old,new"))
    assert tsv == "version\told\tnew\n8\t(absent)\t3\n22\t3\t2\n23\t2\t1\n24\t1\t0\n"
    array = json.loads(ok(run("events", flow_job, "--kind", "resumed", "--format", "json", "--fields", "seq,routine")))
    assert array == [{"seq": 18, "routine": "fetch"}]
    lines = ok(run("blame", flow_job, "shared_data.limit", "--format", "jsonl", "--fields", "version,new"))
    assert lines == '{"version":8,"new":3}\n{"version":22,"new":2}\n{"version":23,"new":1}\n{"version":24,"new":0}\n'
    doc = json.loads(ok(run("blame", flow_job, "shared_data.limit", "--json")))
    assert doc["field"] == "shared_data.limit" and [c["new"] for c in doc["changes"]] == [3, 2, 1, 0]
    bad = run("events", flow_job, "--fields", "seq,kindd")
    assert bad.exit_code == EXIT_USAGE and "unknown field 'kindd' for --fields (did you mean kind?)" in bad.stderr
    clash = run("events", flow_job, "--json", "--format", "csv")
    assert clash.exit_code == EXIT_USAGE and "contradict" in one_line_error(clash)


def test_last_reverse_and_limit(run: Any, flow_job: str) -> None:
    """--last N: the newest N in order; --reverse: newest first; with --limit: the newest N."""
    def seqs(*args: str) -> list[int]:
        return [json.loads(line)["seq"] for line in ok(run("events", flow_job, *args, "--json")).splitlines()]

    assert seqs("--last", "3") == [36, 37, 38]
    assert seqs("--reverse", "--limit", "3") == [38, 37, 36]
    assert seqs("--reverse")[:2] == [38, 37] and len(seqs("--reverse")) == 38
    assert seqs("--kind", "status_set", "--last", "2") == [13, 38]
    assert seqs("--limit", "2") == [1, 2]


def test_tables_have_no_trailing_spaces_and_fit_columns(run: Any, flow_job: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Piped: full rows, no padding at line ends; COLUMNS=60: data cut first, keys whole."""
    full = ok(run("events", flow_job))
    assert all(not line.endswith(" ") for line in full.splitlines())
    assert f'"flow_id": "order-batch", "schema": {SCHEMA_VERSION}}}' in full.splitlines()[1]  # nothing cut without a width
    monkeypatch.setenv("COLUMNS", "100")
    cut = run("events", flow_job)
    lines = cut.stdout.splitlines()
    assert all(len(line) <= 100 for line in lines) and lines[1].endswith("…")
    monkeypatch.setenv("COLUMNS", "60")
    narrow = run("events", flow_job)
    assert narrow.stdout.splitlines()[:3] == [
        "VERSION  KIND                  ROUTINE",
        "      1  job_created           -",
        "      2  status_set            -",
    ]
    assert narrow.stderr == ("routilux-replay: note: TIME, DATA left out to fit 60 columns (widen the terminal, "
                             "or choose with --fields)\n")
    chosen = run("events", flow_job, "--fields", "seq,time,kind")
    assert all(len(line) <= 60 for line in chosen.stdout.splitlines()) and chosen.stderr == ""


def test_table_rows_stream_after_a_bounded_look_ahead() -> None:
    """A table prints its first rows once LOOKAHEAD_ROWS are known, long before the end."""
    import io

    from replay_tools.output import Output
    from replay_tools.rows import LOOKAHEAD_ROWS, Column, row_writer

    buf = io.StringIO()
    writer = row_writer(Output(stream=buf, pager=False), [Column("n", lambda x: x, kind="num"),
                                                          Column("v", lambda x: "x" * x, kind="data")], "table")
    for i in range(LOOKAHEAD_ROWS - 1):
        writer.write(i)
    assert buf.getvalue() == ""
    writer.write(LOOKAHEAD_ROWS)
    assert len(buf.getvalue().splitlines()) == LOOKAHEAD_ROWS + 1  # header + rows, before close()
    writer.write(5)
    assert buf.getvalue().splitlines()[-1] == "  5  xxxxx"


def test_timeline_is_lazy() -> None:
    """timeline() reads the log as it yields: the first event needs only the first chunk."""
    from replay_tools.source import Job
    from replay_tools.summary import timeline

    job = JobState("lazy")
    for i in range(20_000):
        job.record_execution("r", "tick", {"i": i})
    wrapped = Job("<memory>", "memory", job.log, None)
    read = []
    original = job.log.read_raw

    def counting(start: int = 1, stop: int | None = None) -> Any:
        for item in original(start, stop):
            read.append(item[0])
            yield item

    job.log.read_raw = counting  # type: ignore[method-assign]
    first = next(timeline(wrapped))
    assert first.seq == 1 and len(read) < 100


# -- conventions ---------------------------------------------------------------------------------
def test_color_follows_no_color_and_the_option(monkeypatch: pytest.MonkeyPatch) -> None:
    """Colour: auto = a terminal without NO_COLOR; always/never override both."""
    import io

    from replay_tools.output import Output

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert Output(stream=Terminal(), pager=False).color is True
    assert Output(stream=io.StringIO(), pager=False).color is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert Output(stream=Terminal(), pager=False).color is False
    assert Output(stream=Terminal(), pager=False, color="always").color is True
    monkeypatch.delenv("NO_COLOR")
    assert Output(stream=Terminal(), pager=False, color="never").color is False


def test_color_option_on_the_command_line(run: Any, flow_job: str) -> None:
    """--color=always styles headers even when piped; the default off a terminal writes no escape code."""
    assert "\x1b[1mVERSION" in ok(run("events", flow_job, "--color", "always"))
    assert "\x1b[" not in ok(run("events", flow_job)) + ok(run("verify", flow_job)) + ok(run("diff", flow_job,
                                                                                              "1", "head"))


def test_pager_runs_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """On a terminal the text goes to $PAGER (LESS=FRX by default); --no-pager and PAGER=cat do not page."""
    import io

    from replay_tools.output import Output

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    seen = tmp_path / "paged.txt"
    monkeypatch.setenv("PAGER", f"tee {seen}")
    out = Output(stream=Terminal())
    out.line("hello")
    assert out.paging
    out.close()
    assert seen.read_text() == "hello\n"
    assert not Output(stream=Terminal(), pager=False).paging
    off = Output(stream=Terminal(), pager=False)
    off.line("x")
    assert not off.paging
    monkeypatch.setenv("PAGER", "cat")
    plain = Output(stream=Terminal())
    plain.line("x")
    assert not plain.paging
    piped = Output(stream=io.StringIO())
    piped.line("x")
    assert not piped.paging


def test_broken_pipe_exits_0(flow_job: str) -> None:
    """`routilux-replay events JOB | head -1`: exit code 0 and nothing on stderr."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    for args in (["events", flow_job], ["events", flow_job, "--json"], ["export", flow_job]):
        proc = subprocess.Popen([sys.executable, "-m", "replay_tools", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.readline()
        proc.stdout.close()  # the reader goes away after one line
        with proc.stderr:
            err = proc.stderr.read()
        assert proc.wait(timeout=60) == 0, err
        assert err == b"", err


def test_bare_command_prints_the_help(run: Any) -> None:
    """`routilux-replay` alone: the help, exit 0, not an error."""
    res = run.runner.invoke(cli, [], prog_name="routilux-replay")
    assert res.exit_code == 0 and res.stderr == ""
    assert res.stdout.startswith("Usage: routilux-replay [OPTIONS] COMMAND [ARGS]...")


def test_every_command_has_json(run: Any) -> None:
    """--json on every command (demo and export included)."""
    for name in sorted(cli.commands):
        assert "--json" in ok(run(name, "--help")), name


def test_demo_and_export_json(run: Any, tmp_path: Path) -> None:
    """demo --json runs the flow and prints what it made; export -o --json says what it wrote."""
    made = json.loads(ok(run("demo", str(tmp_path / "demo"), "--json")))
    assert set(made) == {"path", "job_id", "flow_id", "events", "head_hash"} and made["events"] == 38
    trail = str(tmp_path / "trail.jsonl")
    wrote = json.loads(ok(run("export", made["path"], "-o", trail, "--json")))
    assert wrote == {"path": trail, "format": "jsonl", "events": 38, "head_hash": made["head_hash"]}
    assert run("export", made["path"], "--json").exit_code == EXIT_USAGE


def test_hash_prefixes(run: Any, flow_job: str) -> None:
    """--expect-head takes a prefix (7+ hex digits); a version's link prefix is a point."""
    head = json.loads(ok(run("info", flow_job, "--json")))["head_hash"]
    assert run("verify", flow_job, "--expect-head", head[:8]).exit_code == 0
    wrong = run("verify", flow_job, "--expect-head", "0000000")
    assert wrong.exit_code == EXIT_CHECK_FAILED
    short = run("verify", flow_job, "--expect-head", head[:4])
    assert short.exit_code == EXIT_USAGE
    assert one_line_error(short) == (f"routilux-replay: error: --expect-head {head[:4]!r}: give at least 7 hex "
                                     "digits of the hash")
    links = [e["link"] for e in json.loads(ok(run("export", flow_job, "--format", "json")))["events"]]
    with_letter = next(v for v, link in enumerate(links, 1) if any(c in "abcdef" for c in link[:10]))
    assert json.loads(ok(run("state", flow_job, "--at", links[with_letter - 1][:10], "--json")))["version"] \
        == with_letter
    none = run("state", flow_job, "--at", "abcdef0123")
    assert none.exit_code == EXIT_USAGE and "no version of this job has a chain link starting with it" in none.stderr


def test_an_ambiguous_hash_prefix_is_an_error(flow_job: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two versions whose links share the prefix: refused, naming both."""
    import replay_tools.source as source
    from replay_tools import open_job
    from replay_tools.errors import BadPointError

    monkeypatch.setattr(source, "MIN_HASH_PREFIX", 1)
    with open_job(flow_job) as job:
        firsts: dict[str, list[int]] = {}
        link = eventlog.GENESIS
        from eventlog.chain import next_link

        for seq, ts, body in job.log.read_raw():
            link = next_link(link, seq, ts, body)
            firsts.setdefault(link.hex()[0], []).append(seq)
        digit, versions = next((d, v) for d, v in firsts.items() if len(v) > 1)  # 38 links, 16 digits
        with pytest.raises(BadPointError) as info:
            job.version_of_hash(digit)
        assert f"versions {versions[0]}, {versions[1]}" in str(info.value) and "ambiguous" in str(info.value)


def test_plural_counts(run: Any, tmp_path: Path, flow_job: str) -> None:
    """'1 event', not '1 events'."""
    path = str(tmp_path / "one")
    log = eventlog.open_log(path)
    log.append("job_created", {"job_id": "one", "flow_id": "f", "schema": 2})
    log.close()
    trail = str(tmp_path / "one.jsonl")
    ok(run("export", path, "-o", trail))
    assert "imported:      1 event into " in ok(run("import", trail, str(tmp_path / "back")))


# -- jobs: every entry of a store, safely ----------------------------------------------------------
def test_jobs_skips_entries_that_are_not_jobs(run: Any, tmp_path: Path, flow_job: str) -> None:
    """An empty folder, a git checkout, a stray file: skipped with a warning each; the jobs are listed."""
    from routilux.job_store import JobStore

    store = tmp_path / "store"
    jobs = JobStore(str(store))
    job = jobs.create(flow_id="a", job_id="job-a")
    job.status = "failed"
    job.close()
    (store / "empty").mkdir()
    (store / "checkout" / ".git").mkdir(parents=True)
    (store / "notes.txt").write_text("hello\n")
    (store / ".staging").mkdir()  # hidden: not looked at
    import shutil

    shutil.copytree(flow_job, store / "renamed")
    res = run("jobs", str(store))
    assert res.exit_code == 0
    assert res.stderr.splitlines() == [
        "routilux-replay: warning: skipped 'checkout': not a job: the directory holds no event log segments "
        "(*.seg files)",
        "routilux-replay: warning: skipped 'empty': not a job: the directory holds no event log segments "
        "(*.seg files)",
        "routilux-replay: warning: skipped 'notes.txt': not a job: a file, not a job directory",
    ]
    ids = [json.loads(line)["job_id"] for line in ok(run("jobs", str(store), "--format", "jsonl")).splitlines()]
    demo_id = records(flow_job)[0].data["job_id"]
    assert ids == sorted([demo_id, "job-a"])
    assert res.stdout.splitlines()[0].split() == ["JOB", "FLOW", "STATUS", "VERSION", "UPDATED", "SIZE", "NAME"]
    assert any(line.startswith(demo_id) and line.endswith("renamed") for line in res.stdout.splitlines())
    failed = [json.loads(line)["job_id"] for line in ok(run("jobs", str(store), "--status", "failed",
                                                             "--format", "jsonl")).splitlines()]
    assert failed == ["job-a"]
    by_version = ok(run("jobs", str(store), "--sort", "version", "--reverse", "--limit", "1", "--fields", "job"))
    assert by_version == f"JOB\n{demo_id}\n"


def test_a_job_store_is_not_a_job(run: Any, tmp_path: Path) -> None:
    """info on a JobStore directory names it and says how to list it (exit 4)."""
    from routilux.job_store import JobStore

    JobStore(str(tmp_path / "store")).create(flow_id="x", job_id="j1").close()
    res = run("info", str(tmp_path / "store"))
    assert res.exit_code == EXIT_NOT_A_JOB
    assert "it looks like a job store holding 1 job (list them with `routilux-replay jobs" in one_line_error(res)


# -- copy and salvage ------------------------------------------------------------------------------
def test_copy_to_an_rjob_path_writes_a_saved_file(run: Any, flow_job: str, tmp_path: Path) -> None:
    """copy SRC x.rjob (no --file): one saved job file, not a directory named x.rjob."""
    dest = tmp_path / "x.rjob"
    out = json.loads(ok(run("copy", flow_job, str(dest), "--json")))
    assert dest.is_file() and out["kind"] == "file"
    assert json.loads(ok(run("verify", str(dest), "--json")))["head_hash"] == out["head_hash"]


def test_a_failed_copy_leaves_nothing_behind(run: Any, flow_job: str, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy that fails half-way (here: the disk 'fills' after 10 events) leaves no directory."""
    import replay_tools.copying as copying

    real = copying._append_all

    def failing(job: Any, dst: Any, start: int, *args: Any) -> Any:
        dst.append_batch([(r.kind, r.data) for r in job.log.read(1, 10)])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(copying, "_append_all", failing)
    with pytest.raises(OSError):
        copying.copy_job(flow_job, str(tmp_path / "dest"))
    assert sorted(os.listdir(tmp_path)) == ["job"]  # the source only: no dest, no staging left
    monkeypatch.setattr(copying, "_append_all", real)
    assert json.loads(ok(run("copy", flow_job, str(tmp_path / "dest"), "--json")))["copied"] == 38


def test_salvage_exports_the_intact_prefix(run: Any, flow_job: str, tmp_path: Path) -> None:
    """A damaged log: salvage exports versions 1..k with their links and reports what was left out;
    import turns it into a job whose head hash is the original's at k."""
    links = [e["link"] for e in json.loads(ok(run("export", flow_job, "--format", "json")))["events"]]
    seg = os.path.join(flow_job, "00000000000000000001.seg")
    size = os.path.getsize(seg)
    _flip(seg, size // 2)
    assert run("info", flow_job).exit_code == EXIT_DAMAGED
    assert "`routilux-replay salvage " in run("info", flow_job).stderr
    out = str(tmp_path / "rescued.jsonl")
    res = run("salvage", flow_job, "-o", out)
    assert res.exit_code == 0
    report = res.stderr.splitlines()
    assert report[0] == f"routilux-replay: salvaged 18 events (versions 1..18) of {flow_job}; head hash there: " \
                        f"{links[17]}"
    assert report[1].startswith("routilux-replay: damage: [frame] 00000000000000000001.seg at byte 1864 (seq 19)")
    assert report[2] == f"routilux-replay: left out: 00000000000000000001.seg: {size - 1864} bytes from byte " \
                        "1864 on (the damage and what follows)"
    assert [json.loads(line)["link"] for line in Path(out).read_text().splitlines()] == links[:18]
    rebuilt = json.loads(ok(run("import", out, str(tmp_path / "rescued"), "--json")))
    assert rebuilt["head_hash"] == links[17] and rebuilt["events"] == 18
    as_json = json.loads(ok(run("salvage", flow_job, "-o", str(tmp_path / "again.jsonl"), "--json")))
    assert (as_json["complete"], as_json["events"], as_json["head_hash"]) == (False, 18, links[17])


def test_salvage_of_an_intact_job_is_complete(run: Any, flow_job: str, tmp_path: Path) -> None:
    """Nothing damaged: everything is exported, and the report says so."""
    res = run("salvage", flow_job, "-o", str(tmp_path / "all.jsonl"), "--json")
    data = json.loads(ok(res))
    assert data["complete"] is True and data["events"] == 38 and data["left_out"] == []
