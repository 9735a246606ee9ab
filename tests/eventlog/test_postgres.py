"""The PostgreSQL backend (``eventlog.postgres``) against a real server.

Needs ``EVENTLOG_PG_URL`` (``.ci/run`` starts a throw-away server with
``scripts/pg_server``); without it every test here is skipped with that reason.
Each test uses fresh job ids, so runs never collide, and deletes its rows afterwards.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import eventlog
from eventlog import (
    GENESIS,
    ConcurrencyError,
    CorruptionError,
    EventEncodingError,
    InMemoryEventLog,
    LogClosedError,
    UnsupportedFormatError,
)
from eventlog.errors import LogReadOnlyError, WrongKeyError
from eventlog.postgres import (
    EVENTS_TABLE,
    LOGS_TABLE,
    SCHEMA_VERSION,
    SNAPSHOTS_TABLE,
    VERSION_TABLE,
    LogNotFoundError,
    PostgresError,
    PostgresEventLog,
    is_pg_location,
    open_pg_log,
    parse_pg_location,
)

PG_URL = os.environ.get("EVENTLOG_PG_URL", "")
pytestmark = pytest.mark.skipif(
    not PG_URL,
    reason="set EVENTLOG_PG_URL=postgresql://... to run the PostgreSQL tests; .ci/run starts a throw-away server",
)

T0 = 1_700_000_000_000_000_000


class PgLogs:
    """Opens logs under unique job ids; closes them and deletes their rows at teardown."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.url = url
        self.admin = psycopg.connect(url, autocommit=True)
        self.prefix = f"test-{uuid.uuid4().hex[:12]}"
        self._made: list[PostgresEventLog] = []
        self._jobs: set[str] = set()
        self._count = 0

    def job(self, name: str = "job") -> str:
        """A job id no other test (or run) uses."""
        self._count += 1
        job = f"{self.prefix}-{name}-{self._count}"
        self._jobs.add(job)
        return job

    def open(self, job: str | None = None, **kwargs: Any) -> PostgresEventLog:
        """Open (by default create) a log; a fresh job unless ``job`` is given."""
        job = self.job() if job is None else job
        self._jobs.add(job)
        log = open_pg_log(self.url, job, **kwargs)
        self._made.append(log)
        return log

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """Run SQL on a separate admin connection (to damage or inspect rows)."""
        cur = self.admin.execute(query, params or None)
        return cur.fetchall() if cur.description else []

    def cleanup(self) -> None:
        for log in self._made:
            log.close()
        ids = [r[0] for r in self.sql(f"SELECT log_id FROM {LOGS_TABLE} WHERE name = ANY(%s)", list(self._jobs))]
        for table in (EVENTS_TABLE, SNAPSHOTS_TABLE, LOGS_TABLE):
            self.sql(f"DELETE FROM {table} WHERE log_id = ANY(%s)", ids)
        self.admin.close()


@pytest.fixture
def pg() -> Iterator[PgLogs]:
    """Log factory and admin connection for one test."""
    logs = PgLogs(PG_URL)
    yield logs
    logs.cleanup()


@pytest.fixture
def private_schema(pg_schema_url: str) -> str:
    """A URL whose search_path is a new, empty PostgreSQL schema (tests/conftest.py)."""
    return pg_schema_url


def fill(log: eventlog.EventLog, n: int, *, step: int = 10) -> list[eventlog.Record]:
    """Append ``n`` events with explicit increasing timestamps."""
    return [log.append("tick", {"i": i}, ts=T0 + i * step) for i in range(1, n + 1)]


# -- opening and locations ---------------------------------------------------------------
def test_url_forms() -> None:
    """The job id may be the URL fragment (percent-decoded); it is stripped from the conninfo."""
    assert parse_pg_location("postgresql://u@h:5/db#job%2F1") == ("postgresql://u@h:5/db", "job/1")
    assert parse_pg_location("postgres://h/db?sslmode=disable") == ("postgres://h/db?sslmode=disable", None)
    assert is_pg_location("postgresql://h/db") and not is_pg_location("/var/logs/job")
    with pytest.raises(ValueError, match="not a PostgreSQL URL"):
        parse_pg_location("/tmp/x")


def test_open_by_fragment_and_by_argument_is_the_same_log(pg: PgLogs) -> None:
    """``open_pg_log(url#job)`` and ``open_pg_log(url, job)`` open the same log."""
    job = pg.job()
    a = pg.open(job)
    a.append("k", {"v": 1})
    b = open_pg_log(f"{PG_URL}#{job}")
    try:
        assert b.head_seq == 1 and b.job_id == job and b.log_id == a.log_id
        assert b.location.endswith(f"#{job}")
    finally:
        b.close()
    with pytest.raises(ValueError, match="job id given twice"):
        open_pg_log(f"{PG_URL}#{job}", "other")
    with pytest.raises(ValueError, match="job id is required"):
        open_pg_log(PG_URL)


def test_location_hides_the_password() -> None:
    """A password in the URL never appears in messages."""
    from eventlog.postgres import redact_url

    assert redact_url("postgresql://bob:s3cret@h:5/db") == "postgresql://bob:***@h:5/db"
    assert redact_url("postgresql://h/db?user=bob&password=s3cret") == "postgresql://h/db?user=bob&password=***"
    assert redact_url("postgresql://bob@h/db") == "postgresql://bob@h/db"


def test_location_reopens_the_same_log(pg: PgLogs) -> None:
    """``log.location`` is a URL that opens the same log, even for a job id with reserved characters."""
    log = pg.open(pg.job("a b#c%d"))
    log.append("k", {})
    assert "#" not in log.location.split("#", 1)[1]
    again = open_pg_log(log.location)
    try:
        assert again.log_id == log.log_id and again.job_id == log.job_id
    finally:
        again.close()


def test_unreachable_server_is_a_clear_error() -> None:
    """A server that does not answer gives PostgresError naming the location."""
    with pytest.raises(PostgresError, match=r"opening the log on postgresql://nobody@127\.0\.0\.1:1/none\?connect_timeout=2#j: .*refused"):
        open_pg_log("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2#j")


def test_missing_log_with_create_false_or_readonly(pg: PgLogs) -> None:
    """Without ``create`` (or read-only) a missing log is LogNotFoundError, and nothing is created."""
    job = pg.job()
    with pytest.raises(LogNotFoundError, match=job):
        open_pg_log(PG_URL, job, create=False)
    with pytest.raises(LogNotFoundError, match=job):
        open_pg_log(PG_URL, job, readonly=True)
    assert pg.sql(f"SELECT 1 FROM {LOGS_TABLE} WHERE name = %s", job) == []


def test_readonly_handle_reads_but_refuses_writes(pg: PgLogs) -> None:
    """A read-only handle sees the writer's events and refuses to append or snapshot."""
    writer = pg.open()
    fill(writer, 3)
    reader = pg.open(writer.job_id, readonly=True)
    assert [r.seq for r in reader.read()] == [1, 2, 3]
    with pytest.raises(LogReadOnlyError, match="read-only"):
        reader.append("k", {})
    with pytest.raises(LogReadOnlyError):
        reader.save_snapshot({}, schema_version=1)
    assert writer.head_seq == 3


def test_schema_created_on_first_use_and_versioned(private_schema: str, pg: PgLogs) -> None:
    """An empty database gets its tables on first open; a newer schema version is refused."""
    import psycopg

    with pytest.raises(LogNotFoundError, match="no eventlog tables"):
        open_pg_log(private_schema, "j", readonly=True)
    log = open_pg_log(private_schema, "j")
    log.append("k", {"v": 1})
    log.close()
    with psycopg.connect(private_schema, autocommit=True) as conn:
        assert conn.execute(f"SELECT version FROM {VERSION_TABLE}").fetchall() == [(SCHEMA_VERSION,)]
        conn.execute(f"UPDATE {VERSION_TABLE} SET version = 99")
    with pytest.raises(UnsupportedFormatError, match="schema version 99, newer"):
        open_pg_log(private_schema, "j")


def test_concurrent_first_opens_create_the_schema_once(private_schema: str) -> None:
    """Several processes' first opens racing on an empty database all succeed."""
    errors: list[BaseException] = []
    logs: list[PostgresEventLog] = []

    def opener(i: int) -> None:
        try:
            logs.append(open_pg_log(private_schema, f"j{i}"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=opener, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for log in logs:
        log.close()
    assert errors == [] and len(logs) == 4


# -- append, batch, read --------------------------------------------------------------------
def test_append_and_read_ranges(pg: PgLogs) -> None:
    """Seqs start at 1 without gaps; read(start, stop) is inclusive and clamps to the log."""
    log = pg.open()
    assert (log.head_seq, log.head_ts, log.head_hash) == (0, 0, GENESIS)
    assert list(log.read()) == []
    recs = fill(log, 7)
    assert [r.seq for r in recs] == list(range(1, 8))
    assert list(log.read()) == recs
    assert [r.seq for r in log.read(3, 5)] == [3, 4, 5]
    assert [r.seq for r in log.read(-4, 2)] == [1, 2]
    assert [r.seq for r in log.read(6, 100)] == [6, 7]
    assert list(log.read(8)) == [] and list(log.read(5, 4)) == []
    assert log.get(4) == recs[3]
    with pytest.raises(KeyError):
        log.get(8)
    assert len(log) == 7 and list(log) == recs


def test_reads_are_paged_across_many_rows(pg: PgLogs, monkeypatch: pytest.MonkeyPatch) -> None:
    """A read longer than one page returns every record once, in order."""
    import eventlog.postgres as pgmod

    monkeypatch.setattr(pgmod, "READ_PAGE", 7)
    log = pg.open()
    log.append_batch([("k", {"i": i}) for i in range(50)])
    assert [r.data["i"] for r in log.read()] == list(range(50))
    assert [r.seq for r in log.read(5, 23)] == list(range(5, 24))
    assert [s for s, _, _ in log.read_raw(40)] == list(range(40, 51))


def test_records_read_back_equal_the_returned_data_types_included(pg: PgLogs) -> None:
    """Data comes back as the append returned it: tuples as tuples, aware datetimes with their offset, bytes."""
    log = pg.open()
    when = dt.datetime(2026, 11, 28, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    data = {"t": (1, 2), "when": when, "raw": b"\x00\xff", "f": 1.5, "n": None, "big": 2**64 - 1,
            "nested": {"a": [{"b": "c"}]}, "u": "héllo"}
    rec = log.append("kind", data)
    assert rec.data["t"] == (1, 2)
    got = log.get(1)
    assert got == rec
    assert type(got.data["t"]) is tuple and got.data["when"] == when
    assert got.data["when"].utcoffset() == dt.timedelta(hours=2)


def test_batch_is_one_transaction_with_one_ts(pg: PgLogs) -> None:
    """A batch gets consecutive seqs and one timestamp, and is seen whole or not at all."""
    log = pg.open()
    log.append("first", {}, ts=T0 - 5)
    recs = log.append_batch([("b", {"i": i}) for i in range(4)], ts=T0)
    assert [r.seq for r in recs] == [2, 3, 4, 5]
    assert {r.ts for r in recs} == {T0}
    assert log.head_seq == 5 and log.head_ts == T0
    with pytest.raises(ValueError, match="at least one event"):
        log.append_batch([])


def test_large_batch_is_sent_in_chunks_in_one_transaction(pg: PgLogs, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch split into several INSERTs reads back whole, with the same chain as in memory."""
    import eventlog.postgres as pgmod

    monkeypatch.setattr(pgmod, "INSERT_CHUNK_BYTES", 64)
    log = pg.open()
    mem = InMemoryEventLog()
    events = [("k", {"i": i, "pad": "x" * (i % 40)}) for i in range(30)]
    assert log.append_batch(events, ts=T0) == mem.append_batch(events, ts=T0)
    assert list(log.read_raw()) == list(mem.read_raw()) and log.head_hash == mem.head_hash
    with pytest.raises(EventEncodingError):
        log.append_batch([*events, ("bad", {"s": {1, object()}})])
    assert log.head_seq == 30
    # A stray row at seq 55 makes a late chunk fail: the earlier chunks are rolled back too.
    pg.sql(f"INSERT INTO {EVENTS_TABLE} (log_id, seq, ts, body, crc, link) VALUES (%s, 55, 0, '', 0, '')",
           log.log_id)
    with pytest.raises(PostgresError, match="duplicate key") as info:
        log.append_batch(events)
    assert info.value.committed is False
    assert pg.sql(f"SELECT count(*) FROM {EVENTS_TABLE} WHERE log_id = %s AND seq > 30", log.log_id) == [(1,)]
    assert log.head_seq == 30 and list(log.read_raw()) == list(mem.read_raw())


def test_append_timed_keeps_each_timestamp_in_one_transaction(pg: PgLogs, monkeypatch: pytest.MonkeyPatch) -> None:
    """``append_timed`` stores each event at its own ts, with the chain appends at those ts give;
    a bad timestamp or value writes nothing; a stale handle takes the locking path."""
    import eventlog.postgres as pgmod

    log = pg.open()
    mem = InMemoryEventLog()
    events = [(T0 + 7 * (i // 2), "k", {"i": i}) for i in range(9)]  # some equal, rising
    recs = log.append_timed(events)
    for ts, kind, data in events:
        mem.append(kind, data, ts=ts)
    assert [(r.seq, r.ts) for r in recs] == [(i + 1, ts) for i, (ts, _, _) in enumerate(events)]
    assert list(log.read_raw()) == list(mem.read_raw())
    assert (log.head_seq, log.head_ts, log.head_hash) == (mem.head_seq, mem.head_ts, mem.head_hash)
    head = log.head_seq
    for bad, err in (
        ([(T0 + 100, "k", {}), (T0 + 99, "k", {})], ValueError),  # decreasing
        ([(T0 - 1, "k", {})], ValueError),  # before the log's last timestamp
        ([(float(T0 + 100), "k", {})], TypeError),
        ([(T0 + 100, "k", {"s": {1, object()}})], EventEncodingError),
        ([], ValueError),
    ):
        with pytest.raises(err):
            log.append_timed(bad)
        assert log.head_seq == head
    with pytest.raises(ConcurrencyError):
        log.append_timed([(T0 + 100, "k", {})], expected_seq=head - 1)
    # Another handle appends: this one's cached head is stale, so the locking path runs,
    # here with the batch split over several INSERT statements.
    other = pg.open(log.job_id)
    other.append("x", {}, ts=T0 + 200)
    mem.append("x", {}, ts=T0 + 200)
    monkeypatch.setattr(pgmod, "INSERT_CHUNK_BYTES", 64)
    more = [(T0 + 300 + i, "m", {"pad": "y" * 30, "i": i}) for i in range(6)]
    recs = log.append_timed(more, expected_seq=head + 1)
    for ts, kind, data in more:
        mem.append(kind, data, ts=ts)
    assert [r.ts for r in recs] == [ts for ts, _, _ in more]
    assert list(log.read_raw()) == list(mem.read_raw()) and log.head_hash == mem.head_hash


BAD_VALUES = [
    pytest.param({"s": {1, object()}}, id="set-holding-an-object"),
    pytest.param({"f": math.nan, "l": threading.Lock()}, id="lock"),
    pytest.param({"m": {1: print}}, id="function"),
    pytest.param({"o": object()}, id="object"),
    pytest.param({"s": "\ud800"}, id="surrogate"),
    pytest.param(["not", "a", "dict"], id="not-a-dict"),
]


@pytest.mark.parametrize("bad", BAD_VALUES)
def test_bad_values_raise_encoding_error_and_write_nothing(pg: PgLogs, bad: Any) -> None:
    """An unstorable value raises EventEncodingError (a TypeError) and no row is written, even in a batch."""
    log = pg.open()
    fill(log, 2)
    head = (log.head_seq, log.head_hash)
    with pytest.raises(EventEncodingError) as info:
        log.append("k", bad)
    assert isinstance(info.value, TypeError)
    with pytest.raises(EventEncodingError):
        log.append_batch([("ok", {"v": 1}), ("bad", bad), ("ok", {"v": 2})])
    assert (log.head_seq, log.head_hash) == head
    assert pg.sql(f"SELECT count(*) FROM {EVENTS_TABLE} WHERE log_id = %s", log.log_id) == [(2,)]
    assert log.append("ok", {}).seq == 3


def test_bad_kind_raises_encoding_error(pg: PgLogs) -> None:
    """An empty or non-string kind is refused before anything is written."""
    log = pg.open()
    for kind in ("", 3, None):
        with pytest.raises(EventEncodingError, match="kind"):
            log.append(kind, {})  # type: ignore[arg-type]
    assert log.head_seq == 0


# -- expected seq and timestamps -------------------------------------------------------------
def test_expected_seq(pg: PgLogs) -> None:
    """A wrong expected seq raises ConcurrencyError naming both seqs and writes nothing."""
    log = pg.open()
    assert log.append("a", {}, expected_seq=0).seq == 1
    with pytest.raises(ConcurrencyError) as info:
        log.append("b", {}, expected_seq=0)
    assert (info.value.expected, info.value.actual) == (0, 1)
    assert "nothing was written" in str(info.value) and log.job_id in str(info.value)
    with pytest.raises(ConcurrencyError):
        log.append_batch([("b", {}), ("c", {})], expected_seq=5)
    assert log.head_seq == 1
    assert [r.seq for r in log.append_batch([("b", {}), ("c", {})], expected_seq=1)] == [2, 3]


def test_expected_seq_race_between_handles_has_one_winner(pg: PgLogs) -> None:
    """Threads with their own handles racing for the same seq: exactly one wins it."""
    job = pg.job()
    handles = [pg.open(job) for _ in range(4)]
    barrier = threading.Barrier(len(handles))
    outcome: dict[int, str] = {}

    def racer(i: int) -> None:
        barrier.wait()
        try:
            handles[i].append("race", {"who": i}, expected_seq=0)
            outcome[i] = "won"
        except ConcurrencyError:
            outcome[i] = "lost"

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(len(handles))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for i, o in outcome.items() if o == "won"]
    assert len(winners) == 1 and len(outcome) == len(handles)
    assert [r.data["who"] for r in handles[0].read()] == winners


def test_timestamp_rules(pg: PgLogs) -> None:
    """ts defaults to max(now, head ts); an explicit earlier ts is refused and writes nothing."""
    log = pg.open()
    before = time.time_ns()
    rec = log.append("a", {})
    assert before <= rec.ts <= time.time_ns()
    future = time.time_ns() + 10**15
    log.append("b", {}, ts=future)
    assert log.append("c", {}).ts == future  # the clock is behind the head: the head's ts is kept
    with pytest.raises(ValueError, match="earlier than the log's last timestamp"):
        log.append("d", {}, ts=future - 1)
    with pytest.raises(TypeError, match="ts must be an int"):
        log.append("d", {}, ts=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="64-bit"):
        log.append("d", {}, ts=2**63)
    assert log.head_seq == 3 and log.append("e", {}, ts=future).seq == 4


def test_seq_at_time(pg: PgLogs) -> None:
    """seq_at_time(T) is the highest seq with ts <= T (0 before the first)."""
    log = pg.open()
    assert log.seq_at_time(T0) == 0
    log.append("a", {}, ts=T0 + 10)
    log.append_batch([("b", {}), ("c", {})], ts=T0 + 20)
    log.append("d", {}, ts=T0 + 20)
    log.append("e", {}, ts=T0 + 30)
    expected = {T0: 0, T0 + 9: 0, T0 + 10: 1, T0 + 19: 1, T0 + 20: 4, T0 + 29: 4, T0 + 30: 5, 2**70: 5, -(2**70): 0}
    assert {t: log.seq_at_time(t) for t in expected} == expected


# -- hash chain and equality with the in-memory log --------------------------------------------
events_st = st.lists(
    st.tuples(
        st.lists(st.tuples(st.sampled_from(["a", "bb", "k"]),
                           st.dictionaries(st.text(max_size=4), st.integers(-5, 2**40) | st.text(max_size=6),
                                           max_size=3)),
                 min_size=1, max_size=4),
        st.integers(0, 50),
    ),
    min_size=1, max_size=6,
)


@given(batches=events_st, key=st.sampled_from([b"", b"secret"]))
def test_head_hash_equals_in_memory_log(batches: list[tuple[list[tuple[str, dict]], int]], key: bytes) -> None:
    """The same events, batching and timestamps give the same links and bytes as InMemoryEventLog."""
    logs = PgLogs(PG_URL)
    try:
        log = logs.open(key=key or None)
        mem = InMemoryEventLog(key=key or None)
        ts = T0
        for events, step in batches:
            ts += step
            if len(events) == 1:
                assert log.append(*events[0], ts=ts) == mem.append(*events[0], ts=ts)
            else:
                assert log.append_batch(events, ts=ts) == mem.append_batch(events, ts=ts)
        assert log.head_hash == mem.head_hash and log.head_seq == mem.head_seq
        assert list(log.read_raw()) == list(mem.read_raw())
        assert [log.link_at(s) for s in range(mem.head_seq + 1)] == [mem.link_at(s) for s in range(mem.head_seq + 1)]
    finally:
        logs.cleanup()


def test_wrong_key_is_refused_at_open(pg: PgLogs) -> None:
    """A missing, wrong or superfluous key is WrongKeyError at open, before any write."""
    log = pg.open(key=b"k1")
    fill(log, 3)
    for key in (None, b"k2"):
        with pytest.raises(WrongKeyError, match="key"):
            pg.open(log.job_id, key=key)
    plain = pg.open()
    with pytest.raises(WrongKeyError, match="unkeyed hash chain, but a key was given"):
        pg.open(plain.job_id, key=b"k1")
    again = pg.open(log.job_id, key=b"k1")
    assert again.head_hash == log.head_hash and len(list(again.read())) == 3
    # Like the file log, a reader needs no key (CRCs are still checked).
    reader = pg.open(log.job_id, readonly=True)
    assert list(reader.read()) == list(log.read())


def test_altered_last_event_is_refused_at_open(pg: PgLogs) -> None:
    """A writer does not extend a chain whose last event was altered: CorruptionError at open."""
    log = pg.open()
    fill(log, 3)
    body = eventlog.encoding.encode_event("tick", {"i": -1})
    pg.sql(f"UPDATE {EVENTS_TABLE} SET body = %s, crc = %s WHERE log_id = %s AND seq = 3",
           body, zlib.crc32(body), log.log_id)
    with pytest.raises(CorruptionError, match="hash chain mismatch") as info:
        pg.open(log.job_id)
    assert info.value.seq == 3


# -- corruption ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        pytest.param(f"UPDATE {EVENTS_TABLE} SET body = body || '\\x00'::bytea WHERE log_id = %s AND seq = 3",
                     "checksum mismatch", id="body"),
        pytest.param(f"UPDATE {EVENTS_TABLE} SET crc = crc + 1 WHERE log_id = %s AND seq = 3",
                     "checksum mismatch", id="crc"),
        pytest.param(f"UPDATE {EVENTS_TABLE} SET ts = ts + 1 WHERE log_id = %s AND seq = 3",
                     "hash chain mismatch", id="ts"),
        pytest.param(f"UPDATE {EVENTS_TABLE} SET link = '\\x00000000000000000000000000000000'::bytea "
                     "WHERE log_id = %s AND seq = 3", "hash chain mismatch", id="link"),
        pytest.param(f"DELETE FROM {EVENTS_TABLE} WHERE log_id = %s AND seq = 3", "missing", id="deleted"),
    ],
)
def test_damaged_row_is_a_corruption_error_naming_table_log_and_seq(pg: PgLogs, damage: str, reason: str) -> None:
    """A row whose CRC, chain or presence is wrong raises CorruptionError naming the table, log id and seq."""
    log = pg.open()
    fill(log, 5)
    assert [r.seq for r in log.read(1, 2)] == [1, 2]
    pg.sql(damage, log.log_id)
    with pytest.raises(CorruptionError, match=reason) as info:
        list(log.read())
    err = info.value
    assert err.seq == 3
    assert EVENTS_TABLE in str(err) and log.job_id in str(err) and f"log id {log.log_id}" in str(err)
    assert [r.seq for r in log.read(1, 2)] == [1, 2]  # the rows before the damage still read


def test_body_replaced_with_valid_crc_is_caught_by_the_chain(pg: PgLogs) -> None:
    """Rewriting an event with a matching CRC (a deliberate edit) still fails the chain."""
    log = pg.open()
    fill(log, 4)
    body = eventlog.encoding.encode_event("tick", {"i": 999})
    pg.sql(f"UPDATE {EVENTS_TABLE} SET body = %s, crc = %s WHERE log_id = %s AND seq = 2",
           body, zlib.crc32(body), log.log_id)
    with pytest.raises(CorruptionError, match="hash chain mismatch") as info:
        list(log.read())
    assert info.value.seq == 2


# -- follow ------------------------------------------------------------------------------------------
def test_follow_before_and_after_appends(pg: PgLogs) -> None:
    """A follower started before appends (another thread) and one after each see every event once, in order."""
    log = pg.open()
    writer = pg.open(log.job_id)
    seen: list[int] = []
    started = threading.Event()

    def follower() -> None:
        started.set()
        for rec in log.follow(timeout=10):
            seen.append(rec.seq)
            if rec.seq == 60:
                return

    t = threading.Thread(target=follower, daemon=True)
    t.start()
    started.wait()
    for i in range(20):
        writer.append("one", {"i": i})
    for _ in range(4):
        writer.append_batch([("many", {}) for _ in range(10)])
    t.join(timeout=30)
    assert not t.is_alive()
    assert seen == list(range(1, 61))
    assert [r.seq for r in writer.follow(start=55, timeout=0.2)] == list(range(55, 61))
    assert list(log.follow(start=61, timeout=0.1)) == []


def test_follow_is_woken_by_notify_not_by_polling(pg: PgLogs, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the fallback re-read set to a minute, a commit still reaches a waiting follower at once (NOTIFY)."""
    import eventlog.postgres as pgmod

    monkeypatch.setattr(pgmod, "FOLLOW_FALLBACK_WAIT", 60.0)
    log = pg.open()
    writer = pg.open(log.job_id)
    waiting = threading.Event()
    got: list[int] = []

    def follower() -> None:
        stream = log.follow()
        waiting.set()
        for rec in stream:
            got.append(rec.seq)
            if rec.seq == 2:
                return

    t = threading.Thread(target=follower, daemon=True)
    t.start()
    waiting.wait()
    time.sleep(0.2)  # let the follower find nothing and start waiting
    writer.append("one", {})
    writer.append("two", {})
    t.join(timeout=20)
    assert not t.is_alive() and got == [1, 2]


def test_follow_stops_when_the_handle_is_closed(pg: PgLogs) -> None:
    """follow(timeout=None) returns once its log is closed."""
    log = pg.open()
    fill(log, 2)
    seen: list[int] = []
    t = threading.Thread(target=lambda: seen.extend(r.seq for r in log.follow()), daemon=True)
    t.start()
    deadline = time.monotonic() + 10
    while len(seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    log.close()
    t.join(timeout=10)
    assert not t.is_alive() and seen == [1, 2]


# -- snapshots --------------------------------------------------------------------------------------------
def test_snapshots_latest_max_seq_and_schema(pg: PgLogs) -> None:
    """latest_snapshot picks the newest with seq <= max_seq (and the schema version); snapshots() lists all."""
    log = pg.open()
    s0 = log.save_snapshot({"n": 0}, schema_version=1, seq=0)
    assert (s0.seq, s0.ts, s0.link) == (0, 0, GENESIS)
    recs = fill(log, 6)
    s3 = log.save_snapshot({"n": 3}, schema_version=1, seq=3)
    s6 = log.save_snapshot({"n": 6, "t": (1,)}, schema_version=2)
    assert (s3.ts, s3.link) == (recs[2].ts, log.link_at(3))
    assert s6.seq == 6 and s6.state == {"n": 6, "t": (1,)} and s6.link == log.head_hash
    assert log.latest_snapshot() == s6
    assert log.latest_snapshot(max_seq=5) == s3
    assert log.latest_snapshot(max_seq=2) == s0
    assert log.latest_snapshot(schema_version=1) == s3
    assert log.latest_snapshot(schema_version=3) is None
    assert log.snapshots() == [s0, s3, s6]
    with pytest.raises(ValueError, match="cannot snapshot seq 7"):
        log.save_snapshot({}, schema_version=1, seq=7)
    with pytest.raises(EventEncodingError, match=r"state\['bad'\]"):
        log.save_snapshot({"bad": {1, object()}}, schema_version=1)
    again = log.save_snapshot({"n": "replaced"}, schema_version=1, seq=3)
    assert log.latest_snapshot(max_seq=3) == again


def test_bad_snapshot_is_skipped_with_a_warning(pg: PgLogs) -> None:
    """A snapshot failing its checksum, or anchored to another history, is skipped for an older one."""
    log = pg.open()
    fill(log, 6)
    s2 = log.save_snapshot({"n": 2}, schema_version=1, seq=2)
    log.save_snapshot({"n": 4}, schema_version=1, seq=4)
    log.save_snapshot({"n": 6}, schema_version=1, seq=6)
    pg.sql(f"UPDATE {SNAPSHOTS_TABLE} SET body = %s WHERE log_id = %s AND seq = 6", b"\x81\xa1n\x07", log.log_id)
    # seq 4: a consistent snapshot (checksum recomputed) whose link belongs to another history.
    other = b"\x01" * 16
    (ts4,) = pg.sql(f"SELECT ts FROM {SNAPSHOTS_TABLE} WHERE log_id = %s AND seq = 4", log.log_id)[0]
    (body4,) = pg.sql(f"SELECT body FROM {SNAPSHOTS_TABLE} WHERE log_id = %s AND seq = 4", log.log_id)[0]
    checksum = log._snapshot_checksum(4, ts4, 1, other, bytes(body4))
    pg.sql(f"UPDATE {SNAPSHOTS_TABLE} SET link = %s, checksum = %s WHERE log_id = %s AND seq = 4",
           other, checksum, log.log_id)
    with pytest.warns(UserWarning) as caught:
        assert log.latest_snapshot() == s2
    messages = " | ".join(str(w.message) for w in caught)
    assert "checksum mismatch" in messages and "another history" in messages and "seq 6" in messages
    with pytest.warns(UserWarning):
        assert log.snapshots() == [s2]


# -- durability, closing, handles ----------------------------------------------------------------------------
def test_durability_and_close(pg: PgLogs) -> None:
    """Commits are durable ("always"); close is idempotent and later calls raise LogClosedError."""
    log = pg.open()
    fill(log, 3)
    assert log.durability == "always" and log.durable_seq == 3 and log.sync() == 3
    log.close()
    log.close()
    assert log.closed and log.head_seq == 3
    sep = "&" if "?" in PG_URL else "?"
    lax = open_pg_log(f"{PG_URL}{sep}options=-csynchronous_commit%3Doff", log.job_id)
    try:
        assert lax.durability == "none"  # commits acknowledged before they are flushed
    finally:
        lax.close()
    with pytest.raises(LogClosedError):
        log.append("k", {})
    with pytest.raises(LogClosedError):
        list(log.read())
    assert list(log.follow(timeout=1)) == []


def test_other_handles_see_appends_and_continue_the_log(pg: PgLogs) -> None:
    """A second handle (another host, in effect) sees the head and appends continue where it left off."""
    a = pg.open()
    fill(a, 3)
    b = pg.open(a.job_id)
    assert (b.head_seq, b.head_ts, b.head_hash) == (a.head_seq, a.head_ts, a.head_hash)
    assert b.append("from-b", {}).seq == 4
    assert a.head_seq == 4 and a.get(4).kind == "from-b"


def test_handle_reconnects_after_its_connection_is_killed(pg: PgLogs) -> None:
    """A terminated idle connection gives one PostgresError; the next call reconnects."""
    log = pg.open()
    fill(log, 2)
    pid = log._conn.info.backend_pid  # type: ignore[union-attr]
    pg.sql("SELECT pg_terminate_backend(%s)", pid)
    with pytest.raises(PostgresError) as info:
        log.append("k", {})
    assert info.value.committed is False and "nothing was written" in str(info.value)
    assert log.append("k", {}).seq == 3
    assert [r.seq for r in log.read()] == [1, 2, 3]


def test_connection_lost_during_commit_is_resolved_after_reconnecting(pg: PgLogs,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """When the connection dies during COMMIT, a fresh connection finds out whether the events were written."""
    import contextlib

    import psycopg

    log = pg.open()
    other = pg.open(log.job_id)
    fill(log, 2)
    conn = log._conn
    assert conn is not None
    real = conn.transaction

    @contextlib.contextmanager
    def committed_then_lost() -> Iterator[None]:
        with real():
            yield
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    @contextlib.contextmanager
    def lost_before_commit() -> Iterator[None]:
        with real():
            yield
            raise psycopg.Rollback()
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    # Another handle appends first, so this handle's cached head is stale and it takes
    # the locking path (an explicit transaction).
    monkeypatch.setattr(conn, "transaction", committed_then_lost)
    other.append("k", {"n": 0})
    with pytest.raises(PostgresError, match="lost before the commit was confirmed, but the events were committed") as info:
        log.append("k", {"n": 1})
    assert info.value.committed is True and log.head_seq == 4
    monkeypatch.setattr(conn, "transaction", lost_before_commit)
    other.append("k", {"n": 0})
    with pytest.raises(PostgresError, match="lost before the commit was confirmed; nothing was written") as info:
        log.append_batch([("k", {"n": 2}), ("k", {"n": 3})])
    assert info.value.committed is False and log.head_seq == 5
    assert [r.data for r in log.read(3)] == [{"n": 0}, {"n": 1}, {"n": 0}]


@pytest.mark.parametrize("committed", [True, False])
def test_connection_lost_during_a_one_statement_append(pg: PgLogs, monkeypatch: pytest.MonkeyPatch,
                                                       committed: bool) -> None:
    """The one-statement append (head unchanged since last seen) reports a lost connection the same way."""
    import psycopg

    log = pg.open()
    fill(log, 2)
    conn = log._conn
    assert conn is not None
    real = conn.execute

    def execute(query: Any, params: Any = None, **kw: Any) -> Any:
        if "WITH upd AS" in str(query):
            if committed:
                real(query, params, **kw)
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return real(query, params, **kw)

    monkeypatch.setattr(conn, "execute", execute)
    with pytest.raises(PostgresError, match="lost before the commit was confirmed") as info:
        log.append("k", {"n": 1})
    assert info.value.committed is committed
    assert log.head_seq == (3 if committed else 2)


# -- differential: PostgreSQL against the in-memory oracle ------------------------------------------
class PostgresAgreesWithMemory(RuleBasedStateMachine):
    """Random appends, batches, expected seqs, reads and snapshots give the same results on both logs."""

    def __init__(self) -> None:
        super().__init__()
        self.logs = PgLogs(PG_URL)
        self.pg = self.logs.open()
        self.mem = InMemoryEventLog()
        self.ts = T0

    def _both(self, call: Any) -> tuple[Any, Any]:
        """Run ``call`` on both logs; results or the exception types must agree."""
        out = []
        for log in (self.pg, self.mem):
            try:
                out.append(("ok", call(log)))
            except Exception as exc:  # noqa: BLE001 - compared across backends
                out.append(("err", type(exc)))
        assert out[0] == out[1]
        return out[0]

    @rule(kind=st.sampled_from(["a", "b"]), value=st.integers(-3, 3) | st.text(max_size=3),
          step=st.integers(0, 5), expect=st.sampled_from([None, "head", "stale"]))
    def append(self, kind: str, value: Any, step: int, expect: str | None) -> None:
        self.ts += step
        expected = {None: None, "head": self.mem.head_seq, "stale": max(0, self.mem.head_seq - 1)}[expect]
        self._both(lambda log: log.append(kind, {"v": value}, ts=self.ts, expected_seq=expected))

    @rule(n=st.integers(1, 5), step=st.integers(0, 5))
    def batch(self, n: int, step: int) -> None:
        self.ts += step
        self._both(lambda log: log.append_batch([("b", {"i": i}) for i in range(n)], ts=self.ts))

    @rule(back=st.integers(1, 3))
    def earlier_ts_is_refused(self, back: int) -> None:
        self._both(lambda log: log.append("late", {}, ts=self.ts - back))

    @rule(start=st.integers(-1, 40), length=st.integers(0, 40))
    def read(self, start: int, length: int) -> None:
        self._both(lambda log: list(log.read(start, start + length)))

    @rule(delta=st.integers(-3, 60))
    def seq_at_time(self, delta: int) -> None:
        self._both(lambda log: log.seq_at_time(T0 + delta))

    @rule(version=st.integers(1, 2), back=st.integers(0, 3))
    def snapshot(self, version: int, back: int) -> None:
        seq = max(0, self.mem.head_seq - back)
        self._both(lambda log: log.save_snapshot({"at": seq}, schema_version=version, seq=seq)[:5])

    @rule(max_seq=st.none() | st.integers(0, 40), version=st.none() | st.integers(1, 2))
    def latest_snapshot(self, max_seq: int | None, version: int | None) -> None:
        def latest(log: eventlog.EventLog) -> Any:
            snap = log.latest_snapshot(max_seq=max_seq, schema_version=version)
            return None if snap is None else snap[:5]

        self._both(latest)

    @invariant()
    def same_head(self) -> None:
        assert (self.pg.head_seq, self.pg.head_ts, self.pg.head_hash) == (
            self.mem.head_seq, self.mem.head_ts, self.mem.head_hash)

    def teardown(self) -> None:
        self.logs.cleanup()


TestPostgresAgreesWithMemory = PostgresAgreesWithMemory.TestCase
TestPostgresAgreesWithMemory.settings = settings(stateful_step_count=20)
