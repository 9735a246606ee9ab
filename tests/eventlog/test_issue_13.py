"""Issue 13: the holes found by attacking what a reader trusts, one test per hole.

Each attack is made the way the issue describes it, with the project's own format
helpers (the attacker knows the format but not the chain key):

1. a snapshot's body rewritten (one shared-data value), its CRCs recomputed, its seq,
   ts and link kept: in a log directory, in a saved job file, and in PostgreSQL;
5. ``JobState.load`` of ``/dev/zero``, a FIFO, a huge sparse file, a file that grows;
7. a sparse index whose timestamps were changed and CRCs fixed;
8. ``JobStore.create(job_id="job\\n")`` and other ids with control characters.

(Hole 2, deleting ``LOCK`` under a live writer, is in ``test_issue_13_lock.py``.)
"""

from __future__ import annotations

import glob
import os
import resource
import struct
import subprocess
import sys
import time
import tracemalloc
import warnings
import zlib
from pathlib import Path
from typing import Any

import pytest

import eventlog
from eventlog.bounded import RegularFile
from eventlog.encoding import decode_state, encode, encode_state
from eventlog.index import SegmentIndex
from eventlog.snapshot import SNAP_DIR, list_snapshots, pack_snapshot, parse_snapshot
from routilux import JobState
from routilux.job_store import JobStore

KEY = b"the chain key of the audited job"
ATTACKER_KEY = b"a key that is not the log's key"


def _forge_body(body: bytes, key: str = "limit", value: Any = 999) -> bytes:
    """The snapshot body with one shared-data value replaced (as the projection stores it)."""
    state = dict(decode_state(body))
    shared = dict(state["shared_data"])
    shared[key] = encode(value)
    state["shared_data"] = shared
    return encode_state(state)


def forge_snapshot_record(record: bytes, keyed: bool, *, recompute_digest: bool = False) -> bytes:
    """Rewrite a snapshot record's body; recompute its CRCs, keep its seq, ts, link and schema.

    For a keyed log the attacker has no key: the record is sealed with another key (its
    keyed flag set, as the log's). For an unkeyed one the record's tag is a plain digest:
    kept as it was (the issue's edit: "recompute its CRCs"), or with ``recompute_digest``
    recomputed too (what anyone can do without a key).
    """
    parsed = parse_snapshot(record)
    assert not isinstance(parsed, str), parsed
    hdr, body = parsed
    body = _forge_body(body)
    if keyed or recompute_digest:
        return pack_snapshot(hdr.seq, hdr.ts, hdr.link, hdr.schema_version, body, ATTACKER_KEY if keyed else b"")
    head = bytearray(record[:80])
    struct.pack_into("<QI", head, 48, len(body), zlib.crc32(body))
    struct.pack_into("<I", head, 76, zlib.crc32(bytes(head[:76])))
    return bytes(head) + body


def _job(path: str, key: bytes | None) -> None:
    """A job whose ``limit`` is set once, early, then 30 more events (snapshots every 5)."""
    job = JobState.open(path, key=key, job_id="audited")
    job.snapshot_every = 5
    job.update_shared_data("limit", 11)
    for i in range(30):
        job.update_shared_data("counter", i)
    job.close()


def _forge_newest_snapshot(path: str, keyed: bool, *, recompute_digest: bool = False) -> str:
    snap_dir = os.path.join(path, SNAP_DIR)
    _seq, name = list_snapshots(snap_dir)[-1]
    file = os.path.join(snap_dir, name)
    with open(file, "rb") as f:
        forged = forge_snapshot_record(f.read(), keyed, recompute_digest=recompute_digest)
    with open(file, "wb") as f:
        f.write(forged)
    return file


def _read_everything(path: str, key: bytes | None) -> list[Any]:
    """``limit`` as every read sees it: read-only open, writer open, at(version) and at(timestamp)."""
    seen = []
    with JobState.open(path, key=key, readonly=True) as ro:
        seen.append(ro.shared_data["limit"])
        seen.append(ro.at(version=ro.version - 1).shared_data["limit"])
        last = ro.get_execution_history()
        del last
    with JobState.open(path, key=key) as writer:
        seen.append(writer.shared_data["limit"])
        ts = writer.updated_at
        seen.append(writer.at(timestamp=ts).shared_data["limit"])
    return seen


# -- hole 1: a forged snapshot ---------------------------------------------------------
@pytest.mark.parametrize("keyed", [True, False], ids=["keyed", "unkeyed"])
def test_hole_1_forged_snapshot_in_a_log_directory_is_ignored_and_reported(tmp_path: Path, keyed: bool) -> None:
    """A rewritten snapshot body with recomputed CRCs is not the state: open replays, verify reports."""
    path = str(tmp_path / "job")
    key = KEY if keyed else None
    _job(path, key)
    file = _forge_newest_snapshot(path, keyed)
    report = eventlog.verify(path, key=key)
    assert not report.ok
    assert [p.kind for p in report.problems] == ["snapshot"]
    assert report.problems[0].file == file
    with pytest.warns(RuntimeWarning, match="ignoring snapshot"):
        seen = _read_everything(path, key)
    assert seen == [11, 11, 11, 11]
    assert os.path.exists(file + ".broken")  # the writer set it aside
    assert eventlog.verify(path, key=key).ok


def test_hole_1_unkeyed_log_forgery_with_recomputed_digest_is_found_by_replay_verify(tmp_path: Path) -> None:
    """The limit of an unkeyed log: a forger who recomputes the digest is caught by replaying.

    Without a key nothing stops a rewrite of every checksum (the unkeyed chain itself
    can be rewritten too), so reads may use the snapshot; ``routilux-replay verify``
    compares every snapshot with the replay of the log and names it.
    """
    from replay_tools.source import open_job
    from replay_tools.verify import verify_job

    path = str(tmp_path / "job")
    _job(path, None)
    file = _forge_newest_snapshot(path, False, recompute_digest=True)
    result = verify_job(open_job(path), parallel=False)
    assert not result.ok
    assert any(p.kind == "snapshot_state" and p.file and os.path.basename(file) in p.file
               for p in result.problems), result.problems


def test_hole_1_keyed_log_refuses_even_a_digest_recomputed_by_the_attacker(tmp_path: Path) -> None:
    """With a keyed chain, a forger who recomputes every unkeyed check still fails the tag."""
    path = str(tmp_path / "job")
    _job(path, KEY)
    snap_dir = os.path.join(path, SNAP_DIR)
    _seq, name = list_snapshots(snap_dir)[-1]
    file = os.path.join(snap_dir, name)
    hdr, body = parse_snapshot(Path(file).read_bytes())  # type: ignore[misc]
    # Unkeyed seal (a plain digest), then the keyed flag set and the header CRC fixed.
    forged = bytearray(pack_snapshot(hdr.seq, hdr.ts, hdr.link, hdr.schema_version, _forge_body(body)))
    forged[6] |= 1
    struct.pack_into("<I", forged, 76, zlib.crc32(bytes(forged[:76])))
    Path(file).write_bytes(bytes(forged))
    assert not eventlog.verify(path, key=KEY).ok
    with pytest.warns(RuntimeWarning, match="authentication tag mismatch"):
        assert _read_everything(path, KEY) == [11, 11, 11, 11]


def _forge_bundle_snapshot(file: str, keyed: bool) -> None:
    raw = Path(file).read_bytes()
    pos = raw.index(b"EVSNAP\0\0") + 8
    version = struct.unpack_from("<H", raw, pos + 4)[0]
    header = 80 if version == 2 else 64
    end = pos + header + struct.unpack_from("<Q", raw, pos + 48)[0]
    forged = forge_snapshot_record(raw[pos:end], keyed)
    end += -(end - pos) & 7
    Path(file).write_bytes(raw[:pos] + forged + bytes(-len(forged) & 7) + raw[end:])


@pytest.mark.parametrize("keyed", [True, False], ids=["keyed", "unkeyed"])
def test_hole_1_forged_snapshot_in_a_saved_job_file_is_refused(tmp_path: Path, keyed: bool) -> None:
    """JobState.load of a saved file whose snapshot section was forged raises ValueError."""
    path = str(tmp_path / "job")
    key = KEY if keyed else None
    _job(path, key)
    saved = str(tmp_path / "saved.rjob")
    with JobState.open(path, key=key) as job:
        job.save(saved)
    assert JobState.load(saved, key=key).shared_data["limit"] == 11
    _forge_bundle_snapshot(saved, keyed)
    with pytest.raises(ValueError, match="snapshot section"):
        JobState.load(saved, key=key)
    with pytest.raises(eventlog.BundleError):
        eventlog.read_bundle(saved, key=key, check_chain=True)


def test_hole_1_forged_snapshot_row_in_postgresql_is_ignored(pg_url: str) -> None:
    """PostgreSQL: a snapshot row with a changed body and a recomputed CRC is not the state."""
    import psycopg

    from eventlog.postgres import SNAPSHOTS_TABLE

    location = f"{pg_url}#issue13-forged-{os.getpid()}-{time.monotonic_ns()}"
    job = JobState.open(location, key=KEY)
    job.snapshot_every = 5
    job.update_shared_data("limit", 11)
    for i in range(30):
        job.update_shared_data("counter", i)
    job.close()
    log = eventlog.postgres.open_pg_log(location, key=KEY)
    log_id = log.log_id
    log.close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        seq, ts, link, schema, body = conn.execute(
            f"SELECT seq, ts, link, schema_version, body FROM {SNAPSHOTS_TABLE} WHERE log_id = %s "
            "ORDER BY seq DESC LIMIT 1", (log_id,)).fetchone()
        forged = _forge_body(bytes(body))
        # The attacker recomputes what they can: the old CRC32 formula, and a tag with their key.
        crc = eventlog.postgres.PostgresEventLog._legacy_checksum(seq, ts, schema, bytes(link), forged)
        for checksum in (crc, int.from_bytes(__import__("eventlog.snapshot").snapshot.snapshot_tag(
                ATTACKER_KEY, seq, ts, bytes(link), schema, forged)[:8], "little", signed=True)):
            conn.execute(f"UPDATE {SNAPSHOTS_TABLE} SET body = %s, checksum = %s WHERE log_id = %s AND seq = %s",
                         (forged, checksum, log_id, seq))
            with pytest.warns(UserWarning, match="ignoring snapshot"):
                with JobState.open(location, key=KEY, readonly=True) as ro:
                    assert ro.shared_data["limit"] == 11


@pytest.fixture
def pg_url() -> str:
    url = os.environ.get("EVENTLOG_PG_URL")
    if not url:
        pytest.skip("set EVENTLOG_PG_URL=postgresql://... to run the PostgreSQL tests")
    pytest.importorskip("psycopg")
    return url


def test_format_1_snapshot_is_not_trusted_by_a_keyed_log(tmp_path: Path) -> None:
    """An old (format 1, untagged) snapshot in a keyed log is ignored and the state replayed."""
    path = str(tmp_path / "job")
    _job(path, KEY)
    file = _forge_newest_snapshot(path, True)
    hdr, body = parse_snapshot(Path(file).read_bytes())  # type: ignore[misc]
    head = struct.pack("<4sHHQq16sqQI", b"EVSN", 1, 1, hdr.seq, hdr.ts, hdr.link, hdr.schema_version,
                       len(body), zlib.crc32(body))
    Path(file).write_bytes(head + struct.pack("<I", zlib.crc32(head)) + body)
    with pytest.warns(RuntimeWarning, match="format 1 snapshot has no authentication tag"):
        with JobState.open(path, key=KEY, readonly=True) as ro:
            assert ro.shared_data["limit"] == 11


def test_format_1_snapshot_is_still_read_by_an_unkeyed_log(tmp_path: Path) -> None:
    """Old files stay readable: an unkeyed log uses a good format 1 snapshot as before."""
    path = str(tmp_path / "log")
    with eventlog.open_log(path) as log:
        for i in range(10):
            log.append("e", {"i": i})
        snap = log.save_snapshot({"n": 10}, schema_version=3)
        file = os.path.join(path, SNAP_DIR, snap.name)
    hdr, body = parse_snapshot(Path(file).read_bytes())  # type: ignore[misc]
    head = struct.pack("<4sHHQq16sqQI", b"EVSN", 1, 0, hdr.seq, hdr.ts, hdr.link, hdr.schema_version,
                       len(body), zlib.crc32(body))
    Path(file).write_bytes(head + struct.pack("<I", zlib.crc32(head)) + body)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with eventlog.open_log(path, readonly=True) as log:
            got = log.latest_snapshot()
    assert got is not None and got.state == {"n": 10} and got.seq == 10
    assert eventlog.verify(path).ok


def test_keyed_log_read_without_its_key_replays_instead_of_trusting_snapshots(tmp_path: Path) -> None:
    """A reader without the key cannot authenticate snapshots: it says so once and replays."""
    path = str(tmp_path / "job")
    _job(path, KEY)
    _forge_newest_snapshot(path, True)
    with pytest.warns(RuntimeWarning, match="cannot be authenticated") as caught:
        with JobState.open(path, readonly=True) as ro:
            assert ro.shared_data["limit"] == 11
            assert ro.at(version=20).shared_data["limit"] == 11
    assert len([w for w in caught if "cannot be authenticated" in str(w.message)]) == 1


# -- hole 5: readers check magic and sizes before reading a body --------------------------
_LOAD_CHILD = r"""
import resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (768 << 20, 768 << 20))
from routilux import JobState
start = time.monotonic()
try:
    JobState.load(sys.argv[1])
except ValueError as exc:
    print("VALUEERROR", round(time.monotonic() - start, 3), str(exc).splitlines()[0][:300])
else:
    print("LOADED")
"""


def _load_in_child(path: str, timeout: float = 60) -> str:
    """``JobState.load(path)`` in a child with 768 MiB of address space; its one-line verdict."""
    proc = subprocess.run([sys.executable, "-c", _LOAD_CHILD, path], capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip()


def test_hole_5_load_dev_zero_is_refused_at_once() -> None:
    """/dev/zero is refused before a byte is read (it used to read until memory ran out)."""
    out = _load_in_child("/dev/zero")
    assert out.startswith("VALUEERROR") and "character device" in out, out
    assert float(out.split()[1]) < 5


def test_hole_5_load_of_a_fifo_does_not_block(tmp_path: Path) -> None:
    """A FIFO (no writer) is refused at once instead of blocking the reader forever."""
    fifo = str(tmp_path / "job.rjob")
    os.mkfifo(fifo)
    out = _load_in_child(fifo, timeout=30)
    assert out.startswith("VALUEERROR") and "FIFO" in out, out


@pytest.mark.parametrize("prefix", ["none", "bundle-header"])
def test_hole_5_load_of_a_huge_sparse_file_reads_only_its_header(tmp_path: Path, prefix: str) -> None:
    """A 64 GiB sparse file (zeros, or a valid bundle header announcing 2**40 events) is refused fast."""
    big = str(tmp_path / "huge.rjob")
    with open(big, "wb") as f:
        if prefix == "bundle-header":
            import zlib

            head = struct.pack("<8sHHIQI", b"EVBUNDLE", 1, 0, 0, 2**31, 0)
            f.write(head + struct.pack("<I", zlib.crc32(head)))
        f.truncate(64 << 30)
    out = _load_in_child(big)
    assert out.startswith("VALUEERROR"), out
    assert float(out.split()[1]) < 5


def test_hole_5_load_of_a_file_that_grows_while_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A saved job that grows by 1 GiB while it is being read loads as it was, in bounded memory."""
    path = str(tmp_path / "job")
    _job(path, None)
    saved = str(tmp_path / "saved.rjob")
    with JobState.open(path) as job:
        job.save(saved)
    expected = JobState.load(saved).serialize()
    real_read = RegularFile.read
    grown: list[int] = []

    def read_then_grow(self: RegularFile, n: int, what: str = "data") -> bytes:
        data = real_read(self, n, what)
        if not grown:  # right after the header was read, the file grows (a sparse GiB)
            grown.append(os.path.getsize(self.path))
            os.truncate(self.path, grown[0] + (1 << 30))
        return data

    monkeypatch.setattr(RegularFile, "read", read_then_grow)
    tracemalloc.start()
    try:
        loaded = JobState.load(saved)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert grown and os.path.getsize(saved) == grown[0] + (1 << 30)
    assert loaded.serialize() == expected
    assert peak < 32 << 20, f"{peak} bytes allocated: the reader went past the size it saw at open"
    with pytest.raises(ValueError, match="trailing garbage"):  # opened after the growth: refused
        JobState.load(saved)


def test_hole_5_snapshot_and_index_files_that_are_not_regular_files_are_ignored(tmp_path: Path) -> None:
    """A snapshot that is a FIFO and an index that is a huge sparse file: open neither blocks nor reads them."""
    path = str(tmp_path / "log")
    with eventlog.open_log(path, segment_bytes=4096) as log:
        for i in range(200):
            log.append("e", {"i": i, "pad": "p" * 50})
        log.save_snapshot({"n": 200}, schema_version=1)
    snap = glob.glob(os.path.join(path, SNAP_DIR, "*.snap"))[0]
    os.unlink(snap)
    os.mkfifo(snap)
    idx = sorted(glob.glob(os.path.join(path, "*.idx")))[0]
    with open(idx, "r+b") as f:
        f.truncate(64 << 30)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    start = time.monotonic()
    with pytest.warns(RuntimeWarning, match="FIFO"):
        with eventlog.open_log(path, readonly=True) as log:
            assert log.latest_snapshot() is None
            assert [r.data["i"] for r in log.read(150, 152)] == [149, 150, 151]
    assert time.monotonic() - start < 5
    report = eventlog.verify(path)
    assert {p.kind for p in report.problems} == {"snapshot", "index"}


# -- hole 7: a forged sparse index --------------------------------------------------------
def _timed_log(path: str, n: int = 3000, key: bytes | None = None) -> None:
    with eventlog.open_log(path, segment_bytes=64 * 1024, key=key) as log:
        for i in range(n):
            log.append("e", {"i": i, "pad": "x" * 40}, ts=1_000_000 + i * 10)


def _forge_index_times(path: str, shift: int = -500) -> list[str]:
    """Move every index entry's timestamp but the first; fix the CRCs (SegmentIndex.to_bytes)."""
    files = sorted(glob.glob(os.path.join(path, "*.idx")))
    for file in files:
        base = int(os.path.basename(file)[:20])
        # Parsed without a key (the attacker has none), rewritten with fresh CRCs.
        raw = Path(file).read_bytes()
        idx = SegmentIndex.from_bytes(raw, base, keyed=bool(raw[6] & 1))
        assert idx is not None
        for k in range(1, len(idx.tss)):
            idx.tss[k] += shift
        Path(file).write_bytes(idx.to_bytes())
    return files


@pytest.mark.parametrize("keyed", [False, True], ids=["unkeyed", "keyed"])
def test_hole_7_forged_index_timestamps_never_give_a_wrong_seq(tmp_path: Path, keyed: bool) -> None:
    """seq_at_time over a forged index answers like the log (all 3,000 probes), and verify reports it."""
    path = str(tmp_path / "log")
    key = KEY if keyed else None
    _timed_log(path, key=key)
    forged = _forge_index_times(path)
    assert len(forged) > 3
    report = eventlog.verify(path, key=key)
    assert not report.ok
    assert {p.kind for p in report.problems} == {"index"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the forged index is reported, then ignored
        with eventlog.open_log(path, readonly=True, key=key) as log:
            wrong = [i for i in range(3000) if log.seq_at_time(1_000_000 + i * 10) != i + 1]
            wrong += [i for i in range(3000) if log.seq_at_time(1_000_000 + i * 10 - 1) != i]
    assert wrong == []


def test_hole_7_forged_index_is_rebuilt_by_a_writer(tmp_path: Path) -> None:
    """A writer that finds a forged index says so, rebuilds it, and verify is clean again."""
    path = str(tmp_path / "log")
    _timed_log(path)
    forged = _forge_index_times(path, shift=+7)
    before = {p.file for p in eventlog.verify(path).problems}
    assert before == set(forged)
    with pytest.warns(RuntimeWarning, match="index") as caught:
        with eventlog.open_log(path) as log:
            assert log.seq_at_time(1_000_000 + 2500 * 10) == 2501
            assert log.get(1400).data["i"] == 1399  # by seq: the (true) seqs of the entries serve
            assert log.seq_at_time(1_000_000 + 1000 * 10) == 1001
    rebuilt = {file for file in forged if any(file in str(w.message) for w in caught)}
    assert len(rebuilt) == 2  # the indexes the two lookups used; the others wait for their turn
    assert {p.file for p in eventlog.verify(path).problems} == before - rebuilt


# -- hole 8: identifiers that become paths ----------------------------------------------
@pytest.mark.parametrize("job_id", ["job\n", "job\r", "jo\tb", "job\x00", "job\x7f", "\njob", "job\u2028",
                                    "job/x", "..", "job\n\n", "j\u0661"])
def test_hole_8_job_ids_with_control_characters_are_refused(tmp_path: Path, job_id: str) -> None:
    """JobStore refuses an id that is not a plain portable name, with a clear error; nothing is created."""
    store = JobStore(tmp_path / "store")
    with pytest.raises(ValueError, match="invalid job id"):
        store.create(job_id=job_id)
    assert os.listdir(store.directory) == []
    assert job_id not in store
    with pytest.raises(ValueError, match="invalid job id"):
        store.open(job_id)


def test_hole_8_a_directory_named_with_a_newline_is_not_listed_as_a_job(tmp_path: Path) -> None:
    """A stray directory 'job\\n' (made by the old bug) is not taken for the job 'job'."""
    store = JobStore(tmp_path / "store")
    with store.create(job_id="job") as job:
        job.update_shared_data("x", 1)
    os.mkdir(os.path.join(store.directory, "other\n"))
    assert store.job_ids() == ["job"]
    assert [row.job_id for row in store.list()] == ["job"]


@pytest.mark.parametrize("job_id", ["job\n", "a\x00b", "x\x1b[31m"])
def test_hole_8_postgres_job_ids_with_control_characters_are_refused(job_id: str) -> None:
    """A PostgreSQL job id with a control character is refused before any connection."""
    pytest.importorskip("psycopg")
    with pytest.raises(ValueError, match="control character"):
        eventlog.postgres.open_pg_log("postgresql://nobody@127.0.0.1:1/none", job_id)


@pytest.mark.parametrize("name", ["00000000000000000001.seg\n", "0000000000000000000\u0661.seg"])
def test_hole_8_segment_names_are_matched_whole(name: str) -> None:
    """A file whose name only starts like a segment's (newline, non-ASCII digit) is not a segment."""
    from eventlog.segment import parse_seg_name

    assert parse_seg_name(name) is None
    assert parse_seg_name("00000000000000000001.seg") == 1


def test_hole_5_a_fifo_named_like_a_segment_does_not_block_open_or_verify(tmp_path: Path) -> None:
    """A FIFO where a segment should be is corruption, found at once (open never waits on it)."""
    path = str(tmp_path / "log")
    with eventlog.open_log(path) as log:
        log.append("e", {"i": 1})
    os.mkfifo(os.path.join(path, "00000000000000000002.seg"))
    start = time.monotonic()
    with pytest.raises(eventlog.CorruptionError, match="FIFO"):
        eventlog.open_log(path, readonly=True)
    report = eventlog.verify(path)
    assert [p.kind for p in report.problems] == ["header"] and "FIFO" in report.problems[0].message
    assert time.monotonic() - start < 5


@pytest.mark.parametrize("last_byte", [0, 1], ids=["zeros", "data-at-the-end"])
def test_hole_5_a_huge_sparse_segment_tail_is_judged_without_reading_it(tmp_path: Path, last_byte: int) -> None:
    """64 GiB of hole after the last frame: read to the last frame, a writer refuses data far out; both fast."""
    path = str(tmp_path / "log")
    with eventlog.open_log(path) as log:
        for i in range(10):
            log.append("e", {"i": i})
    seg = os.path.join(path, "00000000000000000001.seg")
    with open(seg, "r+b") as f:
        f.truncate(64 << 30)
        if last_byte:
            f.seek((64 << 30) - 1)
            f.write(b"\x01")
    start = time.monotonic()
    # Readers stop at the zeros after the last frame (a frame not stored yet looks the same).
    with eventlog.open_log(path, readonly=True) as log:
        assert [r.data["i"] for r in log.read()] == list(range(10))
    assert eventlog.verify(path).ok
    if last_byte:  # a writer must judge the rest before reusing it: too big to be a torn write
        with pytest.raises(eventlog.CorruptionError, match="too many to be a torn write"):
            eventlog.open_log(path)
    assert time.monotonic() - start < 10


def _as_index_v1(file: str) -> None:
    """Rewrite an index file in format 1 (no flags, no tag), as older versions wrote it."""
    raw = Path(file).read_bytes()
    base = int(os.path.basename(file)[:20])
    idx = SegmentIndex.from_bytes(raw, base, keyed=bool(raw[6] & 1))
    assert idx is not None
    v2 = idx.to_bytes()
    head = bytearray(v2[:76])
    struct.pack_into("<HH", head, 4, 1, 0)
    Path(file).write_bytes(bytes(head) + struct.pack("<I", zlib.crc32(bytes(head))) + v2[96:])


def test_format_1_index_is_still_used_by_an_unkeyed_log(tmp_path: Path) -> None:
    """Old files stay readable: an unkeyed log opens with a format 1 index without rescanning."""
    path = str(tmp_path / "log")
    _timed_log(path, n=600)
    for file in glob.glob(os.path.join(path, "*.idx")):
        _as_index_v1(file)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with eventlog.open_log(path, readonly=True) as log:
            assert [log.seq_at_time(1_000_000 + i * 10) for i in range(0, 600, 7)] == list(range(1, 601, 7))
    assert eventlog.verify(path).ok


def test_format_1_index_is_refused_and_rebuilt_by_a_keyed_log(tmp_path: Path) -> None:
    """A keyed log does not trust an untagged (format 1) index: it says so and rebuilds it, tagged."""
    path = str(tmp_path / "log")
    _timed_log(path, n=600, key=KEY)
    files = sorted(glob.glob(os.path.join(path, "*.idx")))
    for file in files:
        _as_index_v1(file)
    assert {p.kind for p in eventlog.verify(path, key=KEY).problems} == {"index"}
    with pytest.warns(RuntimeWarning, match="format 1 index has no authentication tag"):
        with eventlog.open_log(path, key=KEY) as log:
            assert log.seq_at_time(1_000_000 + 300 * 10) == 301
    assert all(struct.unpack_from("<H", Path(f).read_bytes(), 4)[0] == 2 for f in files[:-1])
    assert eventlog.verify(path, key=KEY).ok
