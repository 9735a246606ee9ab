"""T2: simulated power loss (LevelDB FaultInjectionEnv / ALICE style).

Every file-system call of the file log goes through :mod:`eventlog._fs`, so the test
replaces those functions with a shim that keeps a *shadow model* of what a power cut
would leave on disk:

* a file's durable content is its content at its last ``fsync``/``fdatasync``;
* a directory's durable entries are its entries at its last directory fsync (a new
  file, or a rename, is lost unless the directory was fsynced after it).

At every call boundary the model's crash state is recorded (deduplicated), together
with what had been acknowledged as durable by then: in ``"always"`` mode every append
that returned (also with several appending threads sharing fsyncs); in ``"batch"`` mode
every seq up to what ``sync()`` returned or ``durable_seq`` reported. After the
workload each crash state is materialised in a fresh directory, opened with the real
file system, and checked: every acknowledged record present and byte-identical, any
further record one the workload really wrote, every snapshot equal to the fold of the
records it covers, and the next append gets ``head + 1``.

Variants of each state keep a random prefix of the unsynced bytes (appended, or stored
into reserved space through the mapped segment), or replace them with zeros (SQLite's
"garbage after grow"). A compound test cuts the power again
while recovery repairs such a torn tail and appends behind it. Two mutation checks
patch out the directory fsync, or every file fsync, and assert that the harness then
does report lost acknowledgements (so a passing run means something).
"""

from __future__ import annotations

import os
import random
import shutil
import stat
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

import eventlog
from eventlog import _fs
from eventlog.encoding import encode_event
from eventlog.merkle import event_leaf, leaf_hash, root_of

APPENDS = int(os.environ.get("EVENTLOG_T2_APPENDS", "200"))
SEGMENT_BYTES = 4096
DIR = "dir"  # marks a subdirectory in a directory's entries


def _read_fd_content(fd: int) -> bytes:
    # Reopen through /proc so write-only descriptors can be read too.
    with open(f"/proc/self/fd/{fd}", "rb") as fh:
        return fh.read()


class PowerModel:
    """Shadow model of durable state, fed by shims over :mod:`eventlog._fs`."""

    PRIMITIVES = ("open", "close", "write", "fsync", "fdatasync", "ftruncate", "replace", "unlink",
                  "fallocate", "map_write")

    def __init__(self, root: str, rng: random.Random) -> None:
        self.root = os.path.realpath(root)
        self.rng = rng
        self.lock = threading.RLock()
        self.fds: dict[int, Any] = {}  # fd -> file id, or (DIR, path)
        self.ids: dict[tuple[int, int], int] = {}  # (dev, ino) -> file id
        self.paths: dict[int, str] = {}  # file id -> current path
        self.next_id = 0
        self.durable_data: dict[int, bytes] = {}
        self.durable_dirs: dict[str, dict[str, Any]] = {}
        self.dirty: set[int] = set()
        self.version = 0  # bumps on every change of the durable model
        self.write_version = 0  # bumps on every write/truncate (unsynced changes)
        self.acked = 0  # seqs 1..acked were acknowledged as durable
        self.states: list[dict[str, Any]] = []
        self._seen: set[tuple[int, int]] = set()
        self._seen_variant: set[tuple[int, int, int]] = set()
        self.real = {name: getattr(_fs, name) for name in self.PRIMITIVES}

    # -- the shims ------------------------------------------------------------------
    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in self.PRIMITIVES:
            monkeypatch.setattr(_fs, name, getattr(self, "_" + name))

    def _under(self, path: Any) -> bool:
        try:
            full = os.path.realpath(os.fspath(path))
        except TypeError:
            return False
        return full == self.root or full.startswith(self.root + os.sep)

    def _new_id(self, key: tuple[int, int], path: str) -> int:
        self.next_id += 1
        self.ids[key] = self.next_id
        self.paths[self.next_id] = path
        return self.next_id

    def _open(self, path: Any, flags: int, mode: int = 0o777, *args: Any, **kw: Any) -> int:
        if not self._under(path):
            return self.real["open"](path, flags, mode, *args, **kw)
        with self.lock:
            self.boundary(f"open {os.path.basename(os.fspath(path))}")
            full = os.path.realpath(os.fspath(path))
            existed = os.path.exists(full)
            fd = self.real["open"](path, flags, mode, *args, **kw)
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                self.fds[fd] = (DIR, full)
                return fd
            key = (st.st_dev, st.st_ino)
            if (flags & os.O_CREAT and not existed) or key not in self.ids:
                fid = self._new_id(key, full)
            else:
                fid = self.ids[key]
                self.paths[fid] = full
            self.fds[fd] = fid
            if flags & os.O_TRUNC and existed:
                self._touched(fid)
            return fd

    def _close(self, fd: int) -> None:
        with self.lock:
            self.fds.pop(fd, None)
            return self.real["close"](fd)

    def _touched(self, fid: int) -> None:
        self.dirty.add(fid)
        self.write_version += 1

    def _write(self, fd: int, data: Any) -> int:
        if fd not in self.fds:
            return self.real["write"](fd, data)
        with self.lock:
            self.boundary("write")
            n = self.real["write"](fd, data)
            self._touched(self.fds[fd])
            return n

    def _map_write(self, fd: int, mapping: Any, offset: int, data: Any) -> None:
        # A store into the mapped segment: like a write, it is in the page cache (and
        # unsynced) until the next fsync of the file.
        if fd not in self.fds:
            return self.real["map_write"](fd, mapping, offset, data)
        with self.lock:
            self.boundary("map_write")
            self.real["map_write"](fd, mapping, offset, data)
            self._touched(self.fds[fd])

    def _fallocate(self, fd: int, offset: int, length: int) -> None:
        if fd not in self.fds:
            return self.real["fallocate"](fd, offset, length)
        with self.lock:
            self.boundary("fallocate")
            self.real["fallocate"](fd, offset, length)
            self._touched(self.fds[fd])

    def _ftruncate(self, fd: int, length: int) -> None:
        if fd not in self.fds:
            return self.real["ftruncate"](fd, length)
        with self.lock:
            self.boundary("ftruncate")
            self.real["ftruncate"](fd, length)
            self._touched(self.fds[fd])

    def _sync(self, name: str, fd: int) -> None:
        if fd not in self.fds:
            return self.real[name](fd)
        with self.lock:
            self.boundary(name)
            # The real fsync is skipped: the shadow model, not the disk, decides what a
            # power cut keeps, and real fsyncs on a busy shared disk only cost time.
            target = self.fds[fd]
            if isinstance(target, tuple):
                self._capture_dir(target[1])
            else:
                self.durable_data[target] = _read_fd_content(fd)
                self.dirty.discard(target)
            self.version += 1

    def _fsync(self, fd: int) -> None:
        self._sync("fsync", fd)

    def _fdatasync(self, fd: int) -> None:
        self._sync("fdatasync", fd)

    def _replace(self, src: Any, dst: Any) -> None:
        if not self._under(src):
            return self.real["replace"](src, dst)
        with self.lock:
            self.boundary(f"replace {os.path.basename(os.fspath(src))}")
            self.real["replace"](src, dst)
            st = os.stat(dst)
            fid = self.ids.get((st.st_dev, st.st_ino))
            if fid is not None:
                self.paths[fid] = os.path.realpath(os.fspath(dst))

    def _unlink(self, path: Any, *args: Any, **kw: Any) -> None:
        if not self._under(path):
            return self.real["unlink"](path, *args, **kw)
        with self.lock:
            self.boundary(f"unlink {os.path.basename(os.fspath(path))}")
            self.real["unlink"](path, *args, **kw)

    def _capture_dir(self, path: str) -> None:
        entries: dict[str, Any] = {}
        with os.scandir(path) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    entries[entry.name] = DIR
                    continue
                st = entry.stat(follow_symlinks=False)
                key = (st.st_dev, st.st_ino)
                fid = self.ids.get(key)
                if fid is None:  # made outside _fs: its data was never fsynced through _fs
                    fid = self._new_id(key, entry.path)
                entries[entry.name] = fid
        self.durable_dirs[path] = entries

    def adopt_existing(self) -> None:
        """Treat everything already under the root as durable (the start of a new session)."""
        for dirpath, _dirs, files in os.walk(self.root):
            self._capture_dir(dirpath)
            for name in files:
                full = os.path.join(dirpath, name)
                st = os.stat(full)
                with open(full, "rb") as fh:
                    self.durable_data[self.ids[(st.st_dev, st.st_ino)]] = fh.read()

    # -- crash states ---------------------------------------------------------------
    def boundary(self, what: str) -> None:
        """Record the crash state at this point (before the call ``what`` runs)."""
        with self.lock:
            key = (self.version, self.acked)
            if key not in self._seen:
                self._seen.add(key)
                self.states.append(self._state(what, {}))
            if not self.dirty:
                return
            vkey = (self.version, self.acked, self.write_version)
            if vkey in self._seen_variant:
                return
            self._seen_variant.add(vkey)
            overrides = self._variant()
            if overrides:
                self.states.append(self._state(what, overrides))

    def _durable_ids(self) -> set[int]:
        return {v for entries in self.durable_dirs.values() for v in entries.values() if v != DIR}

    def _variant(self) -> dict[int, bytes]:
        """Unsynced bytes that partly landed: a random prefix of them, or zeros in their place.

        The unsynced bytes run from the first byte where the current content differs
        from the durable one: appended at the end (a write) or stored into space
        reserved earlier (the mapped segment). Past the cut the durable content stays.
        Within the durable extent the cut falls on a 512-byte sector boundary.
        """
        overrides = {}
        zeros = self.rng.random() < 0.5
        for fid in self.dirty & self._durable_ids():
            try:
                with open(self.paths[fid], "rb") as fh:
                    cur = fh.read()
            except OSError:
                continue
            dur = self.durable_data.get(fid, b"")
            if len(cur) < len(dur) or cur == dur:
                continue  # a truncation: its own boundary states cover it
            d = _common_prefix(cur, dur)
            r = self.rng.randrange(d + 1, len(cur) + 1)
            if r < len(dur):
                # Inside the file's durable extent (stores into reserved space) a power
                # cut keeps or loses whole 512-byte sectors, the unit a drive writes
                # atomically; past it, the file's size may tear anywhere.
                r = max(r - r % 512, d)
            landed = bytes(r - d) if zeros else cur[d:r]
            overrides[fid] = cur[:d] + landed + dur[r:]
        return overrides

    def _state(self, what: str, overrides: dict[int, bytes]) -> dict[str, Any]:
        return {
            "at": what,
            "index": len(self.states),
            "acked": self.acked,
            "dirs": {d: dict(e) for d, e in self.durable_dirs.items()},
            "data": dict(self.durable_data),
            "overrides": overrides,
        }

    def final_state(self) -> None:
        with self.lock:
            self._seen.discard((self.version, self.acked))
            self.boundary("end")

    def materialise(self, state: dict[str, Any], dest: str) -> None:
        """Create the crash state's files under ``dest`` (the log's directory)."""

        def build(src_dir: str, out_dir: str) -> None:
            os.makedirs(out_dir, exist_ok=True)
            for name, fid in state["dirs"].get(src_dir, {}).items():
                if fid == DIR:
                    build(os.path.join(src_dir, name), os.path.join(out_dir, name))
                    continue
                content = state["overrides"].get(fid, state["data"].get(fid, b""))
                with open(os.path.join(out_dir, name), "wb") as fh:
                    fh.write(content)

        build(self.root, dest)


def _common_prefix(a: bytes, b: bytes) -> int:
    """Length of the longest common prefix of ``a`` and ``b``."""
    n = min(len(a), len(b))
    lo = 0
    while lo < n and a[lo : lo + 4096] == b[lo : lo + 4096]:
        lo += 4096
    while lo < n and a[lo] == b[lo]:
        lo += 1
    return min(lo, n)


@pytest.fixture
def scratch(tmp_path: Path) -> Any:
    """A directory for the workload and the crash states: in RAM when /dev/shm exists.

    Hundreds of crash states are written, opened and deleted; on a busy shared disk that
    file churn, not the checks, would dominate the run time. Nothing here needs a disk.
    """
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK):
        path = tempfile.mkdtemp(prefix="evlog-t2-", dir=shm)
        try:
            yield Path(path)
        finally:
            shutil.rmtree(path, ignore_errors=True)
    else:
        yield tmp_path


def _fold(datas: list[dict]) -> dict:
    return {"n": len(datas), "sum": sum(d["i"] for d in datas)}


def run_workload(path: str, mode: str, model: PowerModel, appends: int) -> list[tuple[int, bytes, dict]]:
    """Append ``appends`` events (some batched), roll segments, snapshot; return what was written."""
    written: list[tuple[int, bytes, dict]] = []  # (ts, event bytes, data) by seq-1
    log = eventlog.open_log(path, durability=mode, segment_bytes=SEGMENT_BYTES)
    try:
        i = 0
        snap_at = {appends // 4, appends // 2, (3 * appends) // 4}
        while i < appends:
            if i % 9 == 4:
                batch = [("b", {"i": i + j, "pad": "y" * ((i + j) % 30)}) for j in range(3)]
                recs = log.append_batch(batch)
            else:
                # now and then an event larger than a whole segment
                recs = [log.append("a", {"i": i, "pad": "x" * (5000 if i % 23 == 0 else i % 40)})]
            for r in recs:
                written.append((r.ts, encode_event(r.kind, r.data), r.data))
            i += len(recs)
            if mode == "always":
                model.acked = recs[-1].seq  # the append returned: acknowledged as durable
            elif i % 10 < len(recs):
                model.acked = log.sync()
            else:
                # what the background flusher claims is durable counts as acknowledged too
                model.acked = max(model.acked, log.durable_seq)
            if snap_at & set(range(i - len(recs) + 1, i + 1)):
                log.save_snapshot(_fold([w[2] for w in written]), schema_version=1)
        model.acked = log.sync()
    finally:
        log.close()
    return written


def _no_sync(fd: int) -> None:
    """Replaces fsync while crash states are checked (their durability is not the question)."""


def check_state(model: PowerModel, state: dict[str, Any], dest: str, mode: str,
                written: list[tuple[int, bytes, dict]]) -> str | None:
    """Open one crash state; return a description of what is wrong, or None."""
    model.materialise(state, dest)
    try:
        with warnings.catch_warnings(), mock.patch.object(_fs, "fsync", _no_sync), \
                mock.patch.object(_fs, "fdatasync", _no_sync):
            warnings.simplefilter("ignore")  # torn-tail repairs and skipped snapshots warn by design
            log = eventlog.open_log(dest, durability=mode, segment_bytes=SEGMENT_BYTES)
            try:
                raw = list(log.read_raw())
                snap = log.latest_snapshot()
                head = log.head_seq
                root = log.merkle_root()
                nxt = log.append("after", {}).seq
                root_after = log.merkle_root()
                raw_after = list(log.read_raw())
            finally:
                log.close()
            report = eventlog.verify(dest)
    except Exception as exc:  # any failure to open a reachable state is a finding
        return f"open/read failed: {type(exc).__name__}: {exc}"
    finally:
        shutil.rmtree(dest, ignore_errors=True)
    if not report.ok:
        return f"verify after recovery: {report.first_problem}"
    if len(raw) < state["acked"]:
        return f"lost acknowledged records: head {len(raw)} < acked {state['acked']}"
    for seq, ts, b in raw:
        if seq > len(written):
            return f"seq {seq} was never written"
        if (ts, bytes(b)) != written[seq - 1][:2]:
            return f"seq {seq} differs from what was written"
    if [s for s, _, _ in raw] != list(range(1, len(raw) + 1)) or head != len(raw):
        return "seqs are not contiguous"
    if snap is not None and snap.seq > head:
        return f"snapshot at seq {snap.seq} is beyond the recovered head {head}"
    if snap is not None and snap.state != _fold([w[2] for w in written[: snap.seq]]):
        return f"snapshot at seq {snap.seq} does not equal the fold of its records"
    if nxt != head + 1:
        return f"the next append got seq {nxt}, expected {head + 1}"
    # The Merkle tree's store crashed with the log: the tree opened is the log's, exactly.
    if root != root_of(leaf_hash(event_leaf(seq, ts, b)) for seq, ts, b in raw):
        return "the Merkle root after recovery is not the root of the recovered records"
    if root_after != root_of(leaf_hash(event_leaf(seq, ts, b)) for seq, ts, b in raw_after):
        return "the Merkle root after the next append is not the root of the records"
    return None


def run_threaded_workload(path: str, model: PowerModel, appends: int, threads: int = 4
                          ) -> list[tuple[int, bytes, dict]]:
    """"always" mode, several appending threads (group commit): each return is an ack."""
    by_seq: dict[int, tuple[int, bytes, dict]] = {}
    log = eventlog.open_log(path, durability="always", segment_bytes=SEGMENT_BYTES)
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            barrier.wait()
            for i in range(k, appends, threads):
                rec = log.append("a", {"i": i, "pad": "x" * (i % 40)})
                with model.lock:
                    by_seq[rec.seq] = (rec.ts, encode_event(rec.kind, rec.data), rec.data)
                    # seqs are contiguous, so "the highest acked seq" stands for all below it
                    model.acked = max(model.acked, rec.seq)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    try:
        for t in pool:
            t.start()
        for t in pool:
            t.join(120)
    finally:
        log.close()
    assert not errors, errors
    assert sorted(by_seq) == list(range(1, appends + 1))
    return [by_seq[s] for s in range(1, appends + 1)]


def run_power_loss(root: Path, mode: str, rng: random.Random, monkeypatch: pytest.MonkeyPatch,
                   *, stop_after: int | None = None, threads: int = 0,
                   mutate: Any = None) -> tuple[int, list[str]]:
    """Run the workload under the model, then check every crash state; return (states, problems)."""
    path = str(root / "log")
    os.makedirs(path)
    model = PowerModel(path, rng)
    with monkeypatch.context() as m:
        model.install(m)
        if mutate is not None:
            mutate(m)  # a deliberately broken log, for the mutation checks
        if threads:
            written = run_threaded_workload(path, model, APPENDS, threads)
        else:
            written = run_workload(path, mode, model, APPENDS)
        model.final_state()
    problems = []
    for state in model.states:
        problem = check_state(model, state, str(root / "crash"), mode, written)
        if problem:
            kind = "variant" if state["overrides"] else "drop"
            problems.append(f"state {state['index']} ({kind}) before {state['at']}, acked {state['acked']}: {problem}")
            if stop_after is not None and len(problems) >= stop_after:
                break
    return len(model.states), problems


@pytest.mark.parametrize("mode", ["always", "batch"])
def test_power_loss_keeps_every_synced_record(mode: str, scratch: Path, rng: random.Random,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """At every syscall boundary, a power cut keeps every record that sync()/"always" acknowledged."""
    n_states, problems = run_power_loss(scratch, mode, rng, monkeypatch)
    assert n_states > APPENDS // 2, f"only {n_states} crash states: the shim saw too few calls"
    assert not problems, f"{len(problems)} of {n_states} crash states are wrong:\n" + "\n".join(problems[:15])


def test_harness_catches_missing_directory_fsync(scratch: Path, rng: random.Random,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Mutation check: with directory fsync patched out, the harness reports lost acknowledged records."""
    monkeypatch.setattr(_fs, "fsync_dir", lambda path: None)
    _n, problems = run_power_loss(scratch, "always", rng, monkeypatch, stop_after=5)
    assert any("lost acknowledged records" in p for p in problems), problems


def test_power_loss_with_group_commit(scratch: Path, rng: random.Random, monkeypatch: pytest.MonkeyPatch) -> None:
    """With 4 threads appending in "always" mode (shared fsyncs), no returned append is lost to a power cut."""
    n_states, problems = run_power_loss(scratch, "always", rng, monkeypatch, threads=4)
    assert n_states > APPENDS // 4, f"only {n_states} crash states"
    assert not problems, f"{len(problems)} of {n_states} crash states are wrong:\n" + "\n".join(problems[:15])


def test_power_loss_during_recovery(scratch: Path, rng: random.Random, monkeypatch: pytest.MonkeyPatch) -> None:
    """A power cut while recovery repairs a torn tail loses nothing either (compound failure)."""
    path = str(scratch / "log")
    os.makedirs(path)
    model = PowerModel(path, rng)
    with monkeypatch.context() as m:
        model.install(m)
        written = run_workload(path, "always", model, APPENDS // 2)
        model.final_state()
    torn = [st for st in model.states if st["overrides"]]
    assert torn, "the workload produced no crash state with a partly written tail"
    problems: list[str] = []
    n_states = 0
    for first in rng.sample(torn, min(12, len(torn))):
        rdir = str(scratch / f"recover-{first['index']}")
        model.materialise(first, rdir)
        second = PowerModel(rdir, rng)
        second.adopt_existing()
        second.acked = first["acked"]
        with monkeypatch.context() as m:
            second.install(m)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                log = eventlog.open_log(rdir, durability="always", segment_bytes=SEGMENT_BYTES)
            # Appends right after the repair: a truncation that was not made durable
            # could bring the torn bytes back in front of these acknowledged records.
            written2 = written[: log.head_seq]
            try:
                for i in range(3):
                    rec = log.append("r", {"i": 10_000 + i, "pad": ""})
                    written2.append((rec.ts, encode_event(rec.kind, rec.data), rec.data))
                    second.acked = rec.seq
            finally:
                log.close()
            second.final_state()
        n_states += len(second.states)
        for state in second.states:
            problem = check_state(second, state, str(scratch / "crash"), "always", written2)
            if problem:
                problems.append(f"crash during recovery of state {first['index']}, "
                                f"before {state['at']}: {problem}")
        shutil.rmtree(rdir, ignore_errors=True)
    assert n_states > len(torn[:12]), "recovery made no file-system calls"
    assert not problems, f"{len(problems)} of {n_states} crash states are wrong:\n" + "\n".join(problems[:15])


def test_harness_catches_missing_file_sync(scratch: Path, rng: random.Random,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Mutation check: if no file were ever fsynced (directories still are), the harness reports lost records."""

    def drop_file_syncs(m: pytest.MonkeyPatch) -> None:
        model_fsync = _fs.fsync  # the shim installed by the model

        def only_dirs(fd: int) -> None:
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                model_fsync(fd)

        m.setattr(_fs, "fsync", only_dirs)
        m.setattr(_fs, "fdatasync", only_dirs)

    _n, problems = run_power_loss(scratch, "always", rng, monkeypatch, stop_after=5, mutate=drop_file_syncs)
    assert any("lost acknowledged records" in p for p in problems), problems
