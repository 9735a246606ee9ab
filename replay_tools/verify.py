"""Audit a job: its bytes, its chain, its snapshots and the determinism of its replay.

``verify_job`` answers "is this trail exactly what was written, and does replaying it
still give the same state?" in four checks, like diskcache's ``Cache.check``:

1. storage: checksums, seq continuity and the hash chain (keyed if a key is given),
   by ``eventlog.verify`` for a durable directory; a saved job file is checked the
   same way as it is read (``eventlog.read_bundle`` refuses any bad frame or link); a
   PostgreSQL job is checked by the replay's own read (``read_raw`` from seq 1 checks
   every row's CRC, its seq and its chain link), and its snapshots by the log's checks
   (a snapshot the log refuses is reported as a ``snapshot`` problem);
2. snapshots: every stored snapshot equals the state rebuilt from the events up to
   its seq (one pass over the log: the fold is compared as it passes each snapshot).
   On long logs the pass is split at a snapshot S near the middle: this process folds
   1..S and checks S, a child folds S+1..head starting from S; since S equals the fold
   of 1..S, the two halves are one full replay, on two cores;
3. determinism: a second, independent replay gives the same state (``apply`` must be
   pure: no clock, no randomness). It starts from the newest snapshot, so it costs
   only the tail; ``full_determinism=True`` replays everything again from the start;
4. optionally, the head hash equals one written down earlier (``--expect-head``).

The report names the first bad version, or file and byte offset.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import eventlog
from eventlog import CorruptionError, EventLogError
from routilux.errors import ReplayError as RoutiluxReplayError
from routilux.events import SCHEMA_VERSION
from routilux.frozen import thaw
from routilux.projection import JobProjection, apply, from_snapshot, snapshot_state

from .diff import diff_states, same_value
from .errors import DamagedLogError
from .replay import HISTORY_FIELDS, fast_tuples
from .scan import no_gc
from .source import Job

__all__ = ["Problem", "VerifyResult", "verify_job"]

Progress = Callable[[int], None]


class Problem(NamedTuple):
    """One thing that does not hold.

    Attributes:
        kind: a storage check of ``eventlog.verify`` (``frame``, ``chain``, ``continuity``,
            ``torn_tail``, ``snapshot``, ...), or ``snapshot_state`` (a snapshot differs from
            the replay), ``replay`` (the events cannot be folded), ``determinism`` or ``head``.
        file: the damaged file, if any.
        offset: byte offset in that file, if known.
        seq: the first bad version, if known.
        message: what is wrong, in words.
    """

    kind: str
    file: str | None
    offset: int | None
    seq: int | None
    message: str

    def to_json(self) -> dict[str, Any]:
        """The stable JSON shape."""
        return self._asdict()

    def __str__(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.offset is not None:
            where.append(f"byte {self.offset}")
        if self.seq is not None:
            where.append(f"version {self.seq}")
        loc = f" ({', '.join(where)})" if where else ""
        return f"{self.kind}: {self.message}{loc}"


class VerifyResult(NamedTuple):
    """What :func:`verify_job` found.

    Attributes:
        ok: every check held.
        head_seq: the newest version.
        head_hash: the head of the hash chain (32 hex digits).
        records: events checked.
        snapshots_checked: snapshots compared with the replay.
        problems: everything that failed, storage problems first.
        checks: the name of each check and whether it held (``None``: not run, or
            nothing to check, e.g. ``snapshots`` on a job without snapshots).
        intact_seq: the last version up to which the bytes and the chain were checked
            intact (``head_seq`` when the storage check passed).
        intact_hash: the chain link at ``intact_seq`` (hex). ``head_hash`` is ``None``
            when the chain could not be checked up to the head.
    """

    ok: bool
    head_seq: int
    head_hash: str | None
    records: int
    snapshots_checked: int
    problems: list[Problem]
    checks: dict[str, bool | None]
    intact_seq: int = 0
    intact_hash: str | None = None
    #: The erasures of personal values the job records (listed, not problems): eventlog.erasure.ErasureRecord s.
    erasures: tuple[Any, ...] = ()

    @property
    def first_problem(self) -> Problem | None:
        """The first problem found, or ``None``."""
        return self.problems[0] if self.problems else None

    def to_json(self) -> dict[str, Any]:
        """The stable JSON shape."""
        return {
            "ok": self.ok,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "records": self.records,
            "snapshots_checked": self.snapshots_checked,
            "checks": self.checks,
            "problems": [p.to_json() for p in self.problems],
            "intact_seq": self.intact_seq,
            "intact_hash": self.intact_hash,
            "erasures": [{"seq": e.seq, "reason": e.reason, "key": e.key_name, "signature_ok": e.signature_ok,
                          "refs": [list(r) for r in e.refs], "values": len(e.commitments)} for e in self.erasures],
        }


#: Logs at least this long have their storage checked in a second process, and the second
#: half of their replay folded in a third (from a snapshot near the middle), in parallel
#: with the replay (both are CPU-bound; on two cores the wall time is the longer of the two).
PARALLEL_MIN_EVENTS = 100_000

# The child reads the key from stdin, never from argv: argv is visible to every user.
_CHILD = """
import json, sys
import eventlog
key = sys.stdin.buffer.read() or None
report = eventlog.verify(sys.argv[1], key=key, audit=False)
json.dump({"ok": report.ok, "head_hash": report.head_hash, "records": report.records, "head_seq": report.head_seq,
           "problems": [[p.kind, p.file, p.offset, p.seq, p.message] for p in report.problems]}, sys.stdout)
"""


def _convert(ok: bool, head_hash: Any, records: int | None,
             raw: list[tuple[str, str | None, int | None, int | None, str]]) -> tuple[list[Problem], str, int | None]:
    # eventlog's problem kinds (frame, chain, continuity, torn_tail, snapshot, ...) are
    # kept as they are: they already say which check failed.
    problems = [Problem(kind, os.path.basename(file) if file else None, offset, seq, message)
                for kind, file, offset, seq, message in raw]
    if not ok and not problems:
        problems.append(Problem("storage", None, None, None, "eventlog.verify reported a problem"))
    if isinstance(head_hash, bytes):
        head_hash = head_hash.hex()
    return problems, str(head_hash), records


def _storage_now(job: Job) -> tuple[list[Problem], str | None, int | None]:
    """Check the bytes and the chain; return problems, the verified head hash and count."""
    if job.form == "file":
        # open_job read the bundle trusting its stored links (for speed); verify reads it
        # again with every event decoded and the whole chain recomputed.
        try:
            eventlog.read_bundle(job.path, key=job.key, check_events=True, check_chain=True)
        except (eventlog.EventLogError, ValueError, OSError) as exc:
            return [Problem("storage", os.path.basename(job.path), None, None, str(exc))], None, None
    if job.form != "directory":
        return [], job.log.head_hash.hex(), job.log.head_seq
    report = eventlog.verify(job.path, key=job.key, audit=False)  # the audit checks run in verify_job
    return _convert(report.ok, report.head_hash, report.records,
                    [(p.kind, p.file, p.offset, p.seq, p.message) for p in report.problems])


def _storage_start(job: Job, parallel: bool | None) -> Callable[[], tuple[list[Problem], str | None, int | None]]:
    """Start the storage check; return a function that waits for its result."""
    if parallel is None:
        parallel = job.form == "directory" and job.head >= PARALLEL_MIN_EVENTS
    if not parallel or job.form != "directory":
        result = _storage_now(job)
        return lambda: result
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    try:
        proc = subprocess.Popen([sys.executable, "-c", _CHILD, job.path], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    except OSError:
        result = _storage_now(job)
        return lambda: result
    assert proc.stdin is not None
    proc.stdin.write(job.key or b"")
    proc.stdin.close()

    def collect() -> tuple[list[Problem], str | None, int | None]:
        assert proc.stdout is not None and proc.stderr is not None
        with proc.stdout, proc.stderr:
            out = proc.stdout.read()
            proc.stderr.read()
        proc.wait()
        try:
            data = json.loads(out)
            return _convert(data["ok"], data["head_hash"], data["records"], data["problems"])
        except (ValueError, KeyError, TypeError):
            return _storage_now(job)  # the child failed: check here instead

    return collect


def _replay(job: Job, snapshots: dict[int, Any], progress: Progress | None, *,
            p: JobProjection | None = None, stop: int | None = None,
            mark: int = -1) -> tuple[list[Problem], JobProjection | None, int, dict[str, int]]:
    """Fold the events after ``p`` (default: all, from an empty projection) up to ``stop``;
    compare with each snapshot as the fold passes its seq.

    Returns the problems, the projection (``None`` if the fold failed), how many
    snapshots were compared, and the length of each history list when the fold stood
    at version ``mark`` (so the history added after ``mark`` can be compared later).
    """
    problems: list[Problem] = []
    p = JobProjection() if p is None else p
    stop = job.head if stop is None else stop
    checked = 0
    lengths: dict[str, int] = {}
    if p.version == mark:
        lengths = {name: len(getattr(p, name)) for name in HISTORY_FIELDS}
    try:
        with no_gc():
            get = snapshots.get
            for item in fast_tuples(job, p.version + 1, stop):
                apply(p, item)
                seq = item[0]
                snap = get(seq)
                if snap is not None:
                    checked += 1
                    expected = snapshot_state(p)
                    if not same_value(dict(snap.state), dict(expected)):
                        fields = sorted({d.group for d in diff_states(
                            {k: v for k, v in expected.items()}, dict(snap.state))})
                        problems.append(Problem(
                            "snapshot_state", snap.name or None, None, seq,
                            f"snapshot at version {seq} differs from the state rebuilt from events "
                            f"(fields: {', '.join(fields) or 'types'})"))
                if seq == mark:
                    lengths = {name: len(getattr(p, name)) for name in HISTORY_FIELDS}
                if progress is not None and not seq & 0x1FFF:
                    progress(seq)
    except DamagedLogError as exc:
        problems.append(Problem("storage", os.path.basename(exc.file) if exc.file else None, exc.offset, exc.seq,
                                exc.reason))
        return problems, None, checked, lengths
    except RoutiluxReplayError as exc:
        problems.append(Problem("replay", None, None, exc.seq, f"replay failed: {exc}"))
        return problems, None, checked, lengths
    return problems, p, checked, lengths


class _Folded(NamedTuple):
    """The end of the first replay: its state, and the history it added after ``mark``."""

    state: dict[str, Any]
    tails: dict[str, list[Any]] | None  # None: the whole projection is at hand instead
    projection: JobProjection | None


def _folded(p: JobProjection, lengths: dict[str, int]) -> _Folded:
    tails = {name: [_plain(x) for x in getattr(p, name)[lengths[name]:]] for name in lengths}
    return _Folded(thaw(snapshot_state(p)), tails if lengths else None, p)


# -- the second half of the first replay, in a child process ------------------------------
#: The child that folds the second half of the log (from a snapshot) while this process
#: folds the first half and a third process checks the storage. The key comes on stdin.
_FOLD_CHILD = "from replay_tools.verify import _fold_child_main; _fold_child_main()"


def _fold_tail(path: str, key: bytes | None, start: int, stop: int, mark: int) -> dict[str, Any]:
    """Fold ``start+1..stop`` from the snapshot at ``start``; what the parent needs, as plain data."""
    from .source import open_job

    with open_job(path, key=key) as job:
        base = job.log.latest_snapshot(max_seq=start, schema_version=SCHEMA_VERSION)
        if base is None or base.seq != start:
            return {"error": f"no usable snapshot at version {start}"}
        snapshots = {s.seq: s for s in job.log.snapshots() if start < s.seq <= stop}
        p = from_snapshot(base.state, start)
        problems, p2, checked, lengths = _replay(job, snapshots, None, p=p, stop=stop, mark=mark)
        out: dict[str, Any] = {"problems": [list(x) for x in problems], "checked": checked}
        if p2 is not None:
            folded = _folded(p2, lengths)
            out["state"] = folded.state
            out["tails"] = folded.tails
        return out


def _fold_child_main() -> None:
    """Entry point of the fold child: argv is path, start, stop, mark; prints msgpack."""
    from eventlog.encoding import SNAPSHOT_MAX_BYTES, SNAPSHOT_MAX_DEPTH, encode

    path, start, stop, mark = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    key = sys.stdin.buffer.read() or None
    try:
        out = _fold_tail(path, key, start, stop, mark)
    except Exception as exc:  # noqa: BLE001 - the parent redoes the work itself; say why
        out = {"error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.buffer.write(encode(out, path="result", max_depth=SNAPSHOT_MAX_DEPTH + 4,
                                         max_bytes=SNAPSHOT_MAX_BYTES * 4))


def _fold_start(job: Job, start: int, stop: int, mark: int) -> Callable[[], dict[str, Any] | None]:
    """Start folding ``start+1..stop`` in a child; return a function that waits for it."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    try:
        proc = subprocess.Popen([sys.executable, "-c", _FOLD_CHILD, job.path, str(start), str(stop), str(mark)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    except OSError:
        return lambda: None
    assert proc.stdin is not None
    proc.stdin.write(job.key or b"")
    proc.stdin.close()

    def collect() -> dict[str, Any] | None:
        from eventlog import CorruptionError as _Bad
        from eventlog.encoding import SNAPSHOT_MAX_DEPTH, decode

        assert proc.stdout is not None
        with proc.stdout:
            raw = proc.stdout.read()
        proc.wait()
        try:
            out = decode(raw, max_depth=SNAPSHOT_MAX_DEPTH + 4)
        except (_Bad, ValueError):
            return None
        if not isinstance(out, dict) or "error" in out:
            return None  # the parent folds the rest itself
        return out

    return collect


def _split_point(job: Job, snapshots: dict[int, Any], newest: int) -> int:
    """A snapshot near the middle of the log to split the fold at (0: do not split)."""
    head = job.head
    if job.form != "directory" or head < PARALLEL_MIN_EVENTS:
        return 0
    near = [seq for seq, snap in snapshots.items()
            if snap.schema_version == SCHEMA_VERSION and head // 4 <= seq <= newest and seq < head]
    return min(near, key=lambda seq: abs(seq - head // 2), default=0)


def _determinism(job: Job, first: _Folded, snap: Any, full: bool) -> Problem | None:
    """Replay a second time, independently, and compare with the first replay.

    By default the second replay starts from the newest snapshot ``snap`` (a different
    code path: ``from_snapshot`` plus the tail) and is compared on the current state and
    on the history the tail added; ``full=True`` replays everything again from the first
    event and compares the whole state, history included.
    """
    if full:
        snap = None
    try:
        if snap is not None and snap.seq > 0:
            second = from_snapshot(snap.state, snap.seq)
        else:
            second = JobProjection()
        with no_gc():
            for item in fast_tuples(job, second.version + 1, job.head):
                apply(second, item)
    except (RoutiluxReplayError, CorruptionError, DamagedLogError) as exc:
        return Problem("determinism", None, None, None, f"the second replay failed: {exc}")
    a = first.state
    b = thaw(snapshot_state(second))
    where = None
    if not same_value(a, b):
        diffs = diff_states(a, b)
        where = diffs[0].path if diffs else "types"
    else:
        for name in HISTORY_FIELDS:
            mine = [_plain(x) for x in getattr(second, name)]
            if first.tails is not None and second.history_from:
                theirs = first.tails.get(name, [])
            else:
                assert first.projection is not None
                whole = getattr(first.projection, name)
                if second.history_from == 0 and len(mine) != len(whole):
                    where = name
                    break
                theirs = [_plain(x) for x in whole[len(whole) - len(mine):]] if mine else []
            if theirs != mine:
                where = name
                break
    if where is None:
        return None
    return Problem("determinism", None, None, None,
                   f"two replays of the same events differ (first at {where}): apply is not pure")


def _plain(item: Any) -> Any:
    return item.serialize() if hasattr(item, "serialize") else thaw(item)


def verify_job(job: Job, *, expect_head: str | None = None, determinism: bool = True,
               full_determinism: bool = False, parallel: bool | None = None,
               progress: Progress | None = None, audit_key: Any = None) -> VerifyResult:
    """Run every check on ``job`` and return a :class:`VerifyResult`.

    Args:
        expect_head: a head hash written down earlier (hex); a mismatch is a problem.
        determinism: also replay the log a second time and compare the two states.
        full_determinism: make that second replay start from the first event (not from
            the newest snapshot) and compare every history entry.
        parallel: check storage in a second process, and fold the second half of the log
            in a third (from a snapshot near the middle, which this process checks against
            its own fold of the first half), while replaying (default: for directories of
            at least :data:`PARALLEL_MIN_EVENTS` events). ``False`` runs everything here.
        progress: called with the version reached, now and then.
        audit_key: an ``eventlog.signing.Verifier``: the audit check also checks the
            signatures of the kept checkpoints and erasures against it.
    """
    checks: dict[str, bool | None] = {"storage": None, "snapshots": None, "determinism": None, "head": None,
                                      "audit": None}
    storage = _storage_start(job, parallel)
    problems: list[Problem] = []
    snapshots: dict[int, Any] = {}
    try:
        with warnings.catch_warnings(record=job.form == "postgres") as caught:
            if job.form == "postgres":
                warnings.simplefilter("always")
            for snap in job.log.snapshots():
                snapshots[snap.seq] = snap
        # eventlog.verify reports a bad snapshot file of a directory; the database has
        # no such pass, so the log's own refusal (a warning) becomes the problem here.
        for w in caught or ():
            problems.append(Problem("snapshot", None, None, None, str(w.message)))
    except EventLogError as exc:
        problems.append(Problem("snapshot", None, None, None, f"cannot read snapshots: {exc}"))
    newest = None
    if determinism and not full_determinism:
        try:
            newest = job.log.latest_snapshot(schema_version=SCHEMA_VERSION)
        except EventLogError:
            newest = None
    mark = newest.seq if newest is not None else -1
    stop = job.head
    split = _split_point(job, snapshots, mark) if parallel is not False and not full_determinism else 0
    child = _fold_start(job, split, stop, mark) if split else None
    replay_problems, p, checked, lengths = _replay(job, snapshots, progress, stop=split or stop, mark=mark)
    first: _Folded | None = None
    if child is not None:
        result = child()
        if progress is not None:
            progress(stop)  # the child's half is done too
        if p is None:
            pass  # the first half failed: its problem is reported; the second half adds nothing
        elif result is None:
            # The child could not do its half: fold it here (same checks, just slower).
            more, p, n, lengths2 = _replay(job, snapshots, progress, p=p, stop=stop, mark=mark)
            replay_problems += more
            checked += n
            lengths = lengths2 or lengths
        else:
            replay_problems += [Problem(*item) for item in result["problems"]]
            checked += int(result["checked"])
            if "state" in result:
                first = _Folded(result["state"], result["tails"], None)
            else:
                p = None
    if first is None and p is not None:
        first = _folded(p, lengths if mark >= 0 else {})
    storage_problems, checked_hash, records = storage()
    replay_storage = [p for p in replay_problems if p.kind == "storage"]
    replay_problems = [p for p in replay_problems if p.kind != "storage"]
    if not storage_problems:
        storage_problems = replay_storage
    # else: the replay's read met the same damage eventlog.verify reported: say it once.
    snapshot_problems = [p for p in problems + storage_problems if p.kind == "snapshot"]
    # A torn tail is the unfinished last write of a crashed writer: reported, but the
    # acknowledged history before it is whole, so the head hash is still known.
    log_problems = [p for p in storage_problems if p.kind not in ("snapshot", "torn_tail")]
    checks["storage"] = not storage_problems and not snapshot_problems
    problems = storage_problems + problems + replay_problems
    if any(p.kind in ("snapshot_state", "replay") for p in replay_problems) or snapshot_problems:
        checks["snapshots"] = False
    elif first is not None and (checked or not snapshots):
        checks["snapshots"] = True if checked else None  # None: the job has no snapshot to check
    else:
        checks["snapshots"] = None  # the replay stopped (damage) before reaching them
    if determinism and first is not None and not log_problems:
        problem = _determinism(job, first, newest, full_determinism)
        checks["determinism"] = problem is None
        if problem is not None:
            problems.append(problem)
    intact_seq = job.head
    bad_seqs = [p.seq for p in log_problems if p.seq is not None]
    if log_problems:
        intact_seq = min([records if records is not None else job.head] + [s - 1 for s in bad_seqs])
        intact_seq = max(0, min(intact_seq, job.head))
    intact_hash: str | None
    if not log_problems:
        intact_hash = checked_hash if checked_hash is not None else job.log.head_hash.hex()
    elif checked_hash is not None and records == intact_seq:
        intact_hash = checked_hash
    else:
        try:
            intact_hash = job.log.link_at(intact_seq).hex()
        except (EventLogError, KeyError, DamagedLogError):
            intact_hash = None
    head_hash = intact_hash if not log_problems else None
    if expect_head is not None:
        from .source import expect_head_matches

        shown = head_hash or job.log.head_hash.hex()
        held = head_hash is not None and expect_head_matches(expect_head, head_hash)
        checks["head"] = held
        if not held:
            if head_hash is None:
                why = (f"the head hash cannot be checked: the chain is intact only up to version {intact_seq}")
            else:
                why = (f"head hash is {shown}, expected {expect_head.strip().lower()}: the history differs "
                       "from the one whose head was written down")
            problems.append(Problem("head", None, None, job.head, why))
    erasures: tuple[Any, ...] = ()
    if not log_problems:
        checks["audit"], erasures = _audit(job, audit_key, problems)
    ok = not problems
    return VerifyResult(ok, job.head, head_hash, records if records is not None else job.head, checked,
                        problems, checks, intact_seq, intact_hash, erasures)


def _audit(job: Job, audit_key: Any, problems: list[Problem]) -> tuple[bool, tuple[Any, ...]]:
    """The audit check (issue 14): Merkle tree, kept checkpoints, personal values; the erasures listed."""
    from eventlog.audit_check import check_audit

    try:
        report = check_audit(job.log, verifier=audit_key, where=job.path)
    except EventLogError as exc:
        problems.append(Problem("audit", None, None, None, f"the audit checks could not run: {exc}"))
        return False, ()
    problems.extend(Problem(p.kind, os.path.basename(p.file) if p.file else None, p.offset, p.seq, p.message)
                    for p in report.problems)
    return report.ok, tuple(report.erasures)
